"""Evaluate a dense retrieval setup end to end: exact search, metrics, latency, one Result."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from keff.errors import DataError, KeffError
from keff.eval.latency import measure_batch_throughput, measure_latency
from keff.eval.metric_names import DEFAULT_METRICS, parse_metrics
from keff.eval.metrics import evaluate_run, judged_queries, run_from_topk
from keff.eval.report import Result, run_metadata
from keff.index import ExactIndex


def _rows_match(vectors: np.ndarray, ids: Sequence[str], what: str) -> None:
    shape = np.shape(vectors)
    if len(shape) != 2:
        raise KeffError(f"{what} vectors must be 2-D (n, d); got shape {shape}")
    if shape[0] != len(ids):
        raise KeffError(f"{shape[0]} {what} vectors but {len(ids)} {what} ids: rows and ids must line up")


def evaluate_retrieval(
    query_vecs: np.ndarray,
    doc_vecs: np.ndarray,
    query_ids: Sequence[str],
    doc_ids: Sequence[str],
    qrels: Mapping[str, Mapping[str, int]],
    *,
    system: str,
    dataset: str,
    k: int = 100,
    metrics: Sequence[str] = DEFAULT_METRICS,
    backend: str = "numpy",
    latency_queries: int = 200,
    meta: dict | None = None,
    seed: int = 0,
) -> Result:
    """Search every query against every document exactly and score the ranking.

    Parameters
    ----------
    query_vecs : ndarray, shape (nq, d)
        Row ``i`` encodes ``query_ids[i]``.
    doc_vecs : ndarray, shape (n, d)
        Row ``j`` encodes ``doc_ids[j]``.
    query_ids, doc_ids : sequence of str
        Unique ids aligned with the rows.
    qrels : Qrels
        query id -> doc id -> relevance. Every query with a relevant document must have a row
        in ``query_vecs`` (else :class:`DataError`); extra query rows are searched but not scored.
    system, dataset : str
        Names recorded in the result.
    k : int
        Ranking depth; must cover every metric cutoff.
    metrics : sequence of str
        keff metric names.
    backend : {"numpy", "faiss"}
        :class:`keff.index.ExactIndex` backend.
    latency_queries : int
        Timed single-query searches (0 skips all latency measurements).
    meta : dict, optional
        Provenance merged over :func:`run_metadata` (encoder fingerprints, data hashes, ...).
    seed : int
        Seed recorded in the metadata and used to draw latency queries.

    Returns
    -------
    Result
        Metrics, per-query values and ``meta`` with ``"search"`` (k, backend, sizes) and, unless
        ``latency_queries == 0``, ``"latency"``: ``{"single": measure_latency(...),
        "batch": measure_batch_throughput(...)}``.
    """
    _rows_match(query_vecs, query_ids, "query")
    _rows_match(doc_vecs, doc_ids, "document")
    if np.shape(query_vecs)[1] != np.shape(doc_vecs)[1]:
        raise KeffError(
            f"query vectors are {np.shape(query_vecs)[1]}-d but document vectors are {np.shape(doc_vecs)[1]}-d"
        )
    judged = judged_queries(qrels)
    known = set(query_ids)
    absent = [q for q in judged if q not in known]
    if absent:
        raise DataError(
            f"{len(absent)} judged queries have no query vector (e.g. {', '.join(map(repr, absent[:5]))}); "
            "pass the vectors of every query in qrels",
            item_id=absent[0],
        )
    deepest = max(m.k for m in parse_metrics(metrics))
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise KeffError(f"k must be a positive integer; got {k!r}")
    if k < deepest:
        raise KeffError(f"k={k} is shallower than the deepest metric cutoff ({deepest})")
    if isinstance(latency_queries, bool) or not isinstance(latency_queries, int) or latency_queries < 0:
        raise KeffError(f"latency_queries must be an integer >= 0; got {latency_queries!r}")

    index = ExactIndex(doc_vecs, backend=backend)
    scores, indices = index.search(query_vecs, k)
    aggregate, per_query = evaluate_run(run_from_topk(query_ids, doc_ids, scores, indices), judged, metrics)

    info = run_metadata(seed=seed)
    info.update(meta or {})
    info["search"] = {
        "k": min(k, index.n),
        "backend": backend,
        "n_queries": len(query_ids),
        "n_judged_queries": len(judged),
        "n_docs": index.n,
        "dim": index.dim,
    }
    if latency_queries:
        q = np.ascontiguousarray(query_vecs, dtype=np.float32)
        info["latency"] = {
            "single": measure_latency(lambda x: index.search(x, k), q, n=latency_queries, seed=seed),
            "batch": measure_batch_throughput(lambda x: index.search(x, k), q),
        }
    return Result(system=system, dataset=dataset, metrics=aggregate, per_query=per_query, meta=info)

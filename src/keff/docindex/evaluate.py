"""Queries with judgements against an index: evaluate its search, fit its transforms.

- :func:`evaluate_index` scores the index's own search (its encoders, backend and attached
  transforms, exactly as :meth:`~keff.docindex.Index.search` runs) on a retrieval task and
  returns the :class:`keff.eval.Result` that ``keff eval`` writes for a bare encoder.
- :func:`fit_fusion_weights` tunes one convex weight per encoder on a task's queries (nDCG@10,
  :func:`keff.fusion.score.tune_convex_weights`).
- :func:`fit_query_map` fits a projection map (:mod:`keff.projection`) from a task's queries to
  their relevant documents' vectors in the index.

The task must be about the index's documents: every document its judgements name must be in
the index (else :class:`~keff.errors.DataError`). Fit on training queries only (``--split
train``): nothing here looks at any query but the task's.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np

from keff.docindex.index import Index
from keff.docindex.transforms import FusionWeights
from keff.errors import DataError, KeffError
from keff.eval import Result, evaluate_run, judged_queries, measure_latency, run_metadata
from keff.eval.fast_metrics import gains_from_topk, topk_metrics
from keff.eval.metric_names import parse_metrics
from keff.fusion.score import tune_convex_weights
from keff.index.numpy_backend import topk_rows
from keff.maps.base import Map
from keff.projection import METHODS, fit_projection, make_projection
from keff.tasks import RetrievalTask

#: Score given to padding columns of the candidate matrices (below any convex mix of cosines).
_PAD = -10.0


def check_task_documents(index: Index, task: RetrievalTask) -> dict[str, int]:
    """How the task's documents compare with the index's; refuses judgements the index cannot meet.

    Returns
    -------
    dict
        ``{"index": live documents, "task": task documents, "task_not_in_index": n,
        "index_not_in_task": n}``: when either of the last two is not 0, scores are not
        comparable with an evaluation of the task's own corpus.

    Raises
    ------
    DataError
        A document named by the task's judgements is not in the index.
    """
    live = index.documents.row_of
    missing = sorted({d for q in task.query_ids for d in task.qrels.get(q, {}) if d not in live})
    if missing:
        raise DataError(
            f"{len(missing)} documents judged in {task.name} are not in the index {index.root} (first "
            f"{missing[0]!r}): evaluate or fit on judgements of the documents the index holds (build it from the "
            "same corpus)"
        )
    task_ids = set(task.doc_ids)
    return {
        "index": index.n_docs,
        "task": len(task_ids),
        "task_not_in_index": sum(1 for d in task_ids if d not in live),
        "index_not_in_task": sum(1 for d in live if d not in task_ids),
    }


def default_system(index: Index) -> str:
    """A system name for results: the encoders' names, then the transforms' names in brackets."""
    names = "+".join(str(spec.get("name")) for spec in index.manifest.encoders.values())
    transforms = [t.name for t in index.transforms]
    return f"{names} [{', '.join(transforms)}]" if transforms else names


def evaluate_index(
    index: Index,
    task: RetrievalTask,
    *,
    k: int = 100,
    system: str | None = None,
    metrics: tuple[str, ...] | None = None,
    seed: int = 0,
    latency_queries: int = 200,
) -> Result:
    """Score the index's search (with its transforms) on ``task``'s queries and judgements.

    Parameters
    ----------
    index : Index
    task : RetrievalTask
        Its judged documents must all be in the index (see :func:`check_task_documents`).
    k : int
        Ranking depth; must cover every metric cutoff.
    system : str, optional
        Name in the result (default :func:`default_system`).
    metrics : tuple of str, optional
        Default: the task's.
    seed : int
        Recorded, and the seed of the latency draw.
    latency_queries : int
        Timed single-query searches (of already-encoded queries); 0 skips them.

    Returns
    -------
    Result
        As ``keff eval`` writes it; ``meta`` adds ``index`` (path, generation, backend,
        transforms, weighting) and ``documents`` (:func:`check_task_documents`).
    """
    documents = check_task_documents(index, task)
    metrics = tuple(metrics or task.metrics)
    deepest = max(m.k for m in parse_metrics(metrics))
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < deepest:
        raise KeffError(f"k must be an integer >= the deepest metric cutoff ({deepest}); got {k!r}")
    judged = judged_queries(task.qrels)
    t0 = time.perf_counter()
    queries, weights = index.prepare_queries(task.query_texts)
    t1 = time.perf_counter()
    scores, rows = index.search_vectors(queries, k, weights=weights)
    t2 = time.perf_counter()
    ids = index.documents.ids
    run = {
        qid: {ids[r]: float(s) for s, r in zip(srow, rrow) if np.isfinite(s)}
        for qid, srow, rrow in zip(task.query_ids, scores, rows)
    }
    aggregate, per_query = evaluate_run(run, judged, metrics)
    meta = run_metadata(
        seed=seed,
        encoders=dict(_identity(index, key) for key in queries),
        data_hashes=task.data_hashes,
        n_queries=len(task.query_ids),
        n_docs=index.n_docs,
        encode_seconds={"queries": round(t1 - t0, 3)},
        index={
            "path": str(index.root),
            "generation": index.manifest.generation,
            "backend": index.manifest.backend,
            "encoders": list(queries),
            "transforms": [{"name": t.name, "kind": t.kind, "summary": t.summary} for t in index.transforms],
            "weighting": index.transforms.weighting,
        },
        documents=documents,
    )
    meta["search"] = {
        "k": int(scores.shape[1]),
        "backend": index.manifest.backend["kind"],
        "n_queries": len(task.query_ids),
        "n_judged_queries": len(judged),
        "n_docs": index.n_docs,
        "seconds": round(t2 - t1, 3),
    }
    if task.note:
        meta["sample"] = task.note
    if latency_queries:
        meta["latency"] = {"single": _latency(index, queries, weights, k, latency_queries, seed)}
    return Result(system=system or default_system(index), dataset=task.name, metrics=aggregate,
                  per_query=per_query, meta=meta)  # fmt: skip


def _identity(index: Index, key: str) -> tuple[str, str]:
    """(name, fingerprint) of an encoder searched: the manifest's, or an upgrade's new encoder."""
    spec = index.manifest.encoders.get(key)
    if spec is not None:
        return str(spec["name"]), str(spec["fingerprint"])
    enc = index.encoder(key)
    return enc.name, enc.fingerprint


def _latency(index: Index, queries: dict, weights: np.ndarray | None, k: int, n: int, seed: int) -> dict:
    """Single-query search latency (encoded queries drawn at random; encoding not included)."""

    def one(row: np.ndarray) -> object:
        i = int(row[0, 0])
        w = None if weights is None else (weights if weights.ndim == 1 else weights[:, i : i + 1])
        return index.search_vectors({key: q[i : i + 1] for key, q in queries.items()}, k, weights=w)

    n_queries = next(iter(queries.values())).shape[0]
    return measure_latency(one, np.arange(n_queries, dtype=np.float32)[:, None], n=n, seed=seed)


# -- fitting ---------------------------------------------------------------------------------------
def _provenance(task: RetrievalTask, index: Index, **extra: Any) -> dict[str, Any]:
    from keff import __version__

    return {
        "task": task.name,
        "data_hashes": dict(task.data_hashes),
        "n_queries": len(task.query_ids),
        "index": str(index.root),
        "index_generation": index.manifest.generation,
        "command": list(sys.argv),
        "keff_version": __version__,
        "fitted": datetime.now(UTC).isoformat(timespec="seconds"),
        **extra,
    }


def _candidates(index: Index, queries: dict[str, np.ndarray], depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Per query, the union of every encoder's top-``depth`` rows: (n, C) rows padded with the
    first, and the (n, C) mask of real (unpadded) columns."""
    found = np.concatenate([index.search_vectors({key: q}, depth)[1] for key, q in queries.items()], axis=1)
    uniq = [np.unique(row) for row in found]
    width = max(u.size for u in uniq)
    cand = np.stack([np.concatenate([u, np.full(width - u.size, u[0])]) for u in uniq])
    real = np.arange(width)[None, :] < np.array([u.size for u in uniq])[:, None]
    return cand, real


def fit_fusion_weights(index: Index, task: RetrievalTask, *, step: float = 0.1, depth: int = 100) -> FusionWeights:
    """One convex weight per index encoder, maximising nDCG@10 of the task's queries.

    Each encoder's query vectors go through the query maps already attached (as search runs
    them); each query is scored against the union of every encoder's top-``depth`` documents
    (how the approximate backends fuse, and exact for any document that could reach a fused
    top 10 in practice); :func:`keff.fusion.score.tune_convex_weights` picks the weights on a
    grid of spacing ``step``. Only the task's queries and judgements are read: pass the
    training split.

    A query map fitted on these same queries (``keff index fit-map`` records its task) makes its
    encoder look better on them than it will on new queries, so the weights favour it; such maps
    are listed in ``info["maps_fitted_on_these_queries"]``: fit the weights on other queries, or
    before attaching the map.

    Raises
    ------
    KeffError
        An index of fewer than two encoders.
    DataError
        Judgements naming documents the index lacks.
    """
    keys = index.encoder_keys
    if len(keys) < 2:
        raise KeffError(f"fusion weights combine several encoders; the index {index.root} has one ({keys[0]})")
    check_task_documents(index, task)
    judged = judged_queries({q: task.qrels[q] for q in task.query_ids if q in task.qrels})
    qids = [q for q in task.query_ids if q in judged]
    texts = [t for q, t in zip(task.query_ids, task.query_texts) if q in judged]
    queries = index.transforms.apply_maps(index.encode_queries(texts, keys))
    cand, real = _candidates(index, queries, depth)
    scores = []
    for key in keys:
        V, Q = index.vectors[key], queries[key]
        s = np.empty(cand.shape, dtype=np.float32)
        for start in range(0, len(cand), 64):  # (64, C, d) gathered at a time
            s[start : start + 64] = np.einsum("ncd,nd->nc", V[cand[start : start + 64]], Q[start : start + 64])
        scores.append(np.where(real, s, _PAD).astype(np.float32))
    live = np.flatnonzero(index.documents.alive)
    live_ids = [index.documents.ids[r] for r in live]
    width = cand.shape[1]
    gains, ideal, n_rel = gains_from_topk(np.searchsorted(live, cand), qids, live_ids, judged, max(width, 10))
    gains = np.where(real, gains[:, :width], 0.0)
    top = min(10, width)

    def objective(mixed: np.ndarray) -> float:
        _, pos = topk_rows(mixed, top)
        g = np.zeros((len(qids), 10))
        g[:, :top] = np.take_along_axis(gains, pos, axis=1)
        return float(topk_metrics(g, ideal, n_rel, ("ndcg@10",))["ndcg@10"].mean())

    weights, table = tune_convex_weights(scores, objective, step=step)
    encoders = [{"key": key, "name": str(index.manifest.encoders[key]["name"]),
                 "fingerprint": str(index.manifest.encoders[key]["fingerprint"])} for key in keys]  # fmt: skip
    info = _provenance(
        task,
        index,
        objective="ndcg@10",
        train_objective=table["best_objective"],
        n_queries=len(qids),
        step=step,
        depth=depth,
        search=table["method"],
        evaluated=table["evaluated"],
        query_maps=[t.name for t in index.transforms if t.kind == "query-map"],
        maps_fitted_on_these_queries=[
            t.name
            for t in index.transforms
            if t.kind == "query-map"
            and t.provenance.get("task") == task.name
            and t.provenance.get("data_hashes") == dict(task.data_hashes)
        ],
    )
    return FusionWeights(encoders, weights, info)


def fit_query_map(
    index: Index,
    task: RetrievalTask,
    *,
    method: str = "lowrank",
    encoder: str | None = None,
    seed: int = 0,
) -> tuple[Map, dict[str, Any]]:
    """A projection map from the task's queries to their relevant documents, in one encoder's space.

    The pairs are (query vector, vector of each document judged relevant to it), both from the
    index (the query after the maps already attached to that encoder, so the new map composes
    with them); a query's pairs share one group (for maps trained against other answers).

    Parameters
    ----------
    method : str
        A projection method of :data:`keff.projection.METHODS` (not ``identity``).
    encoder : str, optional
        Index encoder key (default: the primary encoder).
    seed : int
        Seed of maps that draw random numbers.

    Returns
    -------
    map : Map
        Fitted.
    provenance : dict
        For :meth:`keff.maps.Map.save`: ``encoder`` (name, fingerprint) and the training data.
    """
    if method not in METHODS or METHODS[method] is None:
        known = ", ".join(m for m, spec in METHODS.items() if spec is not None)
        raise KeffError(f"unknown or unfittable map method {method!r}: choose from {known}")
    key = encoder or index.encoder_keys[0]
    if key not in index.manifest.encoders:
        raise KeffError(f"the index has no encoder {key!r} (it has {', '.join(index.encoder_keys)})")
    check_task_documents(index, task)
    judged = judged_queries({q: task.qrels[q] for q in task.query_ids if q in task.qrels})
    rows = {q: i for i, q in enumerate(task.query_ids)}
    pairs = [(rows[q], index.documents.row_of[d]) for q, rels in judged.items() for d, r in rels.items() if r > 0]
    if len(pairs) < 2:
        raise DataError(f"{task.name} has {len(pairs)} (query, relevant document) pairs: too few to fit a map")
    queries = index.transforms.apply_maps(index.encode_queries(task.query_texts, [key]))[key]
    qi, di = (np.array(x) for x in zip(*pairs))
    m = make_projection(method, seed=seed)
    fit_projection(m, queries[qi], index.vectors[key][di], qi)
    spec = index.manifest.encoders[key]
    provenance = _provenance(
        task,
        index,
        encoder={"name": str(spec["name"]), "fingerprint": str(spec["fingerprint"]), "dim": int(spec["dim"])},
        index_encoder=key,
        method=method,
        seed=seed,
        n_pairs=len(pairs),
        after_maps=[t.name for t in index.transforms if t.kind == "query-map" and t.keys == [key]],
    )
    return m, provenance

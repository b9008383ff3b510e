"""Retrieval metrics over runs and qrels, computed by ir_measures' pytrec_eval provider.

A *run* maps query id -> doc id -> score; *qrels* map query id -> doc id -> graded relevance.
Every metric follows pytrec_eval's (trec_eval's) definitions; a document counts as relevant when
its relevance is >= 1. Within a query, trec_eval ranks by score descending and breaks exact ties
by doc id in *descending* string order; every metric here, including ``mrr@k``, uses that order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from keff.errors import DataError, KeffError
from keff.eval.metric_names import DEFAULT_METRICS, QA_METRICS, parse_metrics

Run = dict[str, dict[str, float]]
"""query id -> doc id -> score (higher is better)."""

Qrels = dict[str, dict[str, int]]
"""query id -> doc id -> relevance (0 = judged non-relevant)."""

__all__ = [
    "DEFAULT_METRICS",
    "QA_METRICS",
    "Qrels",
    "Run",
    "check_ids",
    "checked_relevances",
    "evaluate_run",
    "judged_queries",
    "run_from_topk",
]


def check_ids(ids: Sequence[str], what: str) -> list[str]:
    """Return ``ids`` as a list of unique strings, or raise :class:`DataError` naming the culprit."""
    out = list(ids)
    seen: set[str] = set()
    for i, item in enumerate(out):
        if not isinstance(item, str):
            raise DataError(f"{what}[{i}] is {type(item).__name__}, expected str", item_id=str(item))
        if item in seen:
            raise DataError(f"duplicate {what[:-1] if what.endswith('s') else what}", item_id=item)
        seen.add(item)
    return out


def run_from_topk(
    query_ids: Sequence[str],
    doc_ids: Sequence[str],
    scores: np.ndarray,
    indices: np.ndarray,
) -> Run:
    """Turn an index's top-k output into a :data:`Run`.

    Parameters
    ----------
    query_ids : sequence of str, length nq
        Id of each row of ``scores`` / ``indices`` (unique).
    doc_ids : sequence of str, length n
        Id of each indexed item (unique); ``indices`` point into it.
    scores : ndarray, shape (nq, k)
        Finite scores, higher is better.
    indices : ndarray of int, shape (nq, k)
        Item numbers in ``[0, n)``, distinct within a row.

    Returns
    -------
    Run
        ``run[query_ids[i]][doc_ids[indices[i, j]]] = float(scores[i, j])``.
    """
    qids = check_ids(query_ids, "query_ids")
    dids = check_ids(doc_ids, "doc_ids")
    scores = np.asarray(scores)
    indices = np.asarray(indices)
    if scores.ndim != 2 or scores.shape != indices.shape:
        raise KeffError(f"scores and indices must be 2-D of one shape; got {scores.shape} and {indices.shape}")
    if scores.shape[0] != len(qids):
        raise KeffError(f"{len(qids)} query ids for {scores.shape[0]} rows of scores")
    if not np.issubdtype(indices.dtype, np.integer):
        raise KeffError(f"indices must be integers; got dtype {indices.dtype}")
    if indices.size and (indices.min() < 0 or indices.max() >= len(dids)):
        bad = int(np.argwhere((indices < 0) | (indices >= len(dids)))[0, 0])
        raise DataError(f"indices out of range [0, {len(dids)}) in row {bad}", item_id=qids[bad])
    if scores.size and not np.isfinite(scores).all():
        bad = int(np.argwhere(~np.isfinite(scores))[0, 0])
        raise DataError(f"non-finite score in row {bad}", item_id=qids[bad])
    run: Run = {}
    for qid, row_idx, row_scores in zip(qids, indices.tolist(), scores.tolist()):
        ranked = {dids[j]: s for j, s in zip(row_idx, row_scores)}
        if len(ranked) != len(row_idx):
            raise DataError("the same item appears twice in one result row", item_id=qid)
        run[qid] = ranked
    return run


def checked_relevances(qid: str, rels: Mapping[str, int]) -> dict[str, int]:
    """One query's judgements as ``{doc id: int}``; refuses non-integer or negative relevance.

    Raises
    ------
    DataError
        Naming the query (as the id) and the document at fault.
    """
    clean: dict[str, int] = {}
    for did, rel in rels.items():
        if isinstance(rel, bool) or not isinstance(rel, (int, np.integer)) or rel < 0:
            raise DataError(f"relevance of document {did!r} must be an integer >= 0; got {rel!r}", item_id=qid)
        clean[did] = int(rel)
    return clean


def judged_queries(qrels: Mapping[str, Mapping[str, int]]) -> Qrels:
    """Validate ``qrels`` and keep the queries with at least one relevant (rel > 0) document.

    Raises
    ------
    DataError
        On a non-integer or negative relevance (naming the query and document).
    KeffError
        If no query has a relevant document.
    """
    kept: Qrels = {}
    for qid, rels in qrels.items():
        clean = checked_relevances(qid, rels)
        if any(r > 0 for r in clean.values()):
            kept[qid] = clean
    if not kept:
        raise KeffError("qrels hold no query with a relevant document (relevance > 0)")
    return kept


def _checked_run(run: Mapping[str, Mapping[str, float]], keep: Mapping[str, object]) -> Run:
    """The part of ``run`` about queries in ``keep``, as plain floats; refuses non-finite scores."""
    out: Run = {}
    for qid, docs in run.items():
        if qid not in keep:
            continue
        row = {did: float(s) for did, s in docs.items()}
        if not all(math.isfinite(s) for s in row.values()):
            raise DataError("run holds a non-finite score", item_id=qid)
        out[qid] = row
    return out


def _truncate(run: Run, k: int) -> Run:
    """Keep each query's top ``k`` documents in trec_eval order (score desc, then doc id desc)."""
    return {qid: dict(sorted(docs.items(), key=lambda x: (x[1], x[0]), reverse=True)[:k]) for qid, docs in run.items()}


def _pytrec_values(run: Run, qrels: Qrels, measures: Mapping[str, str]) -> dict[str, dict[str, float]]:
    """Per-query values from ir_measures' pytrec_eval provider.

    ``measures`` maps a keff metric name to the ir_measures measure computing it (``"nDCG@10"``);
    the result maps the keff name to query id -> value.
    """
    import ir_measures

    provider = ir_measures.providers.registry["pytrec_eval"]
    by_measure = {ir_measures.parse_measure(spec): name for name, spec in measures.items()}
    out: dict[str, dict[str, float]] = {name: {} for name in measures}
    for metric in provider.evaluator(list(by_measure), qrels).iter_calc(run):
        out[by_measure[metric.measure]][metric.query_id] = float(metric.value)
    return out


def evaluate_run(
    run: Mapping[str, Mapping[str, float]],
    qrels: Mapping[str, Mapping[str, int]],
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Score a run against qrels.

    Parameters
    ----------
    run : Run
        query id -> doc id -> score. Queries absent from ``qrels`` are ignored.
    qrels : Qrels
        query id -> doc id -> integer relevance >= 0.
    metrics : sequence of str
        keff metric names (``ndcg@k``, ``mrr@k``, ``recall@k``, ``map@k``, ``hit@k``).

    Returns
    -------
    aggregate : dict of str to float
        Mean of each metric over every query in ``qrels`` with at least one relevant document.
    per_query : dict of str to dict of str to float
        metric -> query id -> value, for exactly those queries. A judged query that is missing
        from ``run`` (or has no results) scores 0.

    Notes
    -----
    ``ndcg@k``, ``recall@k``, ``map@k`` and ``hit@k`` are pytrec_eval's ``ndcg_cut_k``,
    ``recall_k``, ``map_cut_k`` and ``success_k``. pytrec_eval has no cutoff for reciprocal
    rank, so ``mrr@k`` is pytrec_eval's ``recip_rank`` on the run truncated to each query's top
    ``k`` in trec_eval's order (score descending, ties by doc id descending).
    """
    names = parse_metrics(metrics)
    judged = judged_queries(qrels)
    checked = _checked_run(run, judged)
    per_query: dict[str, dict[str, float]] = {}
    plain = {m.name: m.ir_measures_name for m in names if m.family != "mrr"}
    if plain:
        per_query.update(_pytrec_values(checked, judged, plain))
    for m in names:
        if m.family == "mrr":
            per_query.update(_pytrec_values(_truncate(checked, m.k), judged, {m.name: "RR"}))
    ordered: dict[str, dict[str, float]] = {}
    aggregate: dict[str, float] = {}
    for m in names:
        values = per_query[m.name]
        row = {qid: values.get(qid, 0.0) for qid in judged}
        ordered[m.name] = row
        aggregate[m.name] = math.fsum(row.values()) / len(row)
    return aggregate, ordered

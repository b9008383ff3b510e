"""Retrieval metrics over runs and qrels, computed by pytrec_eval (trec_eval) in one call.

A *run* maps query id -> doc id -> score; *qrels* map query id -> doc id -> graded relevance.
Every metric follows pytrec_eval's (trec_eval's) definitions; a document counts as relevant when
its relevance is >= 1. Within a query, trec_eval ranks by score descending and breaks exact ties
by doc id in *descending* string order; every metric here, including ``mrr@k``, uses that order.
The values are those of ir_measures' pytrec_eval provider for the measures of
:attr:`~keff.eval.metric_names.MetricName.ir_measures_name` (``mrr@k``: ``RR`` on the run cut
to each query's top ``k``); the tests check it on random runs with ties.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from operator import itemgetter

import numpy as np

from keff.errors import DataError, KeffError
from keff.eval.metric_names import DEFAULT_METRICS, QA_METRICS, MetricName, parse_metrics

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
    "trec_measures",
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
        if type(rel) is int and rel >= 0:  # the common case first
            clean[did] = rel
            continue
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
        if clean and max(clean.values()) > 0:
            kept[qid] = clean
    if not kept:
        raise KeffError("qrels hold no query with a relevant document (relevance > 0)")
    return kept


def _float_scores(qid: str, docs: Mapping[str, float]) -> dict[str, float]:
    """One query's scores converted by ``float()``; refuses a non-finite one."""
    row = {did: float(s) for did, s in docs.items()}
    if not all(math.isfinite(s) for s in row.values()):
        raise DataError("run holds a non-finite score", item_id=qid)
    return row


def _checked_scores(qid: str, docs: Mapping[str, float]) -> dict[str, float]:
    """One query's scores, checked finite: ``docs`` itself when it is a dict of Python numbers
    (which pytrec_eval reads as ``float()`` does), else a converted copy."""
    if type(docs) is dict:
        try:
            total = sum(docs.values())
            if type(total) in (float, int) and math.isfinite(total):
                return docs  # a finite sum of floats and ints: no nan or inf among them
        except (TypeError, ValueError, OverflowError):
            pass
    return _float_scores(qid, docs)


def _checked_run(run: Mapping[str, Mapping[str, float]], keep: Mapping[str, object]) -> Run:
    """The part of ``run`` about queries in ``keep``, scores as Python numbers (anything else
    converted by ``float()``); refuses non-finite scores."""
    return {qid: _checked_scores(qid, docs) for qid, docs in run.items() if qid in keep}


#: keff family -> trec_eval measure (``mrr`` is ``recip_rank`` with keff's cutoff applied after).
_TREC_MEASURES = {"ndcg": "ndcg_cut", "recall": "recall", "map": "map_cut", "hit": "success", "mrr": "recip_rank"}


def _trec_measure(m: MetricName) -> str:
    """The trec_eval measure computing ``m`` (``ndcg_cut.10``; ``recip_rank`` for every ``mrr@k``)."""
    measure = _TREC_MEASURES[m.family]
    return measure if m.family == "mrr" else f"{measure}.{m.k}"


def _trec_key(m: MetricName) -> str:
    """The key of ``m``'s value in pytrec_eval's output (``ndcg_cut_10``, ``recip_rank``)."""
    return _trec_measure(m).replace(".", "_")


def trec_measures(metrics: Sequence[str] = DEFAULT_METRICS) -> list[str]:
    """The pytrec_eval measures :func:`evaluate_run` computes ``metrics`` from, e.g.
    ``["ndcg_cut.10", "recip_rank", "recall.1", ...]`` (each once; ``recip_rank`` serves every
    ``mrr@k``)."""
    return list(dict.fromkeys(_trec_measure(m) for m in parse_metrics(metrics)))


def _trec_values(run: Run, qrels: Qrels, names: Sequence[MetricName]) -> dict[str, dict[str, float]]:
    """query id -> trec_eval measure key -> value, from one pytrec_eval evaluation of ``run``
    (relevance level 1, every retrieved document counted: ir_measures' defaults)."""
    import pytrec_eval

    measures = {_trec_measure(m) for m in names}
    try:
        return pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    except TypeError:  # a score pytrec_eval cannot read (an exotic number type): convert them all
        converted = {qid: _float_scores(qid, docs) for qid, docs in run.items()}
        return pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(converted)


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
    rank, so ``mrr@k`` is pytrec_eval's ``recip_rank`` when the first relevant document is
    within the top ``k`` (in trec_eval's order: score descending, ties by doc id descending),
    else 0: the value of ``recip_rank`` on the run truncated to each query's top ``k``. Every
    metric comes from a single pytrec_eval evaluation of the run.
    """
    names = parse_metrics(metrics)
    judged = judged_queries(qrels)
    values = _trec_values(_checked_run(run, judged), judged, names)
    missing = dict.fromkeys(map(_trec_key, names), 0.0)  # a judged query without results scores 0
    rows = [values.get(qid, missing) for qid in judged]
    per_query: dict[str, dict[str, float]] = {}
    aggregate: dict[str, float] = {}
    for m in names:
        column = list(map(itemgetter(_trec_key(m)), rows))
        if m.family == "mrr":
            # recip_rank is 1 / (rank of the first relevant document), the same double trec_eval
            # computes on the run cut at k when that rank is <= k, i.e. when it is >= 1 / k.
            floor = 1.0 / m.k
            column = [v if v >= floor else 0.0 for v in column]
        per_query[m.name] = dict(zip(judged, column))
        aggregate[m.name] = math.fsum(column) / len(column)
    return aggregate, per_query

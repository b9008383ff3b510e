"""Vectorised numpy metrics over a batch of top-K rankings (no dicts, no pytrec_eval).

Values equal ir_measures' pytrec_eval provider per query (tested on thousands of random runs)
when the ranking is the one pytrec_eval would use, i.e. scores within a query are distinct.
Use this path inside training loops and sweeps; use :func:`keff.eval.evaluate_run` for reported
numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from keff.errors import DataError, KeffError
from keff.eval.metric_names import DEFAULT_METRICS, parse_metrics
from keff.eval.metrics import check_ids, checked_relevances


def _discounts(k: int) -> np.ndarray:
    """``1 / log2(rank + 1)`` for ranks 1..k, shape (k,)."""
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` where ``den > 0``, else 0 (pytrec_eval's value for a query with no relevant doc)."""
    out = np.zeros_like(num, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def topk_metrics(
    gains: np.ndarray,
    ideal_gains: np.ndarray,
    n_relevant: np.ndarray,
    metrics: Sequence[str] = DEFAULT_METRICS,
) -> dict[str, np.ndarray]:
    """Per-query metric values for a batch of rankings.

    Parameters
    ----------
    gains : ndarray, shape (nq, K)
        ``gains[i, j]`` = relevance of the item ranked ``j + 1`` for query ``i`` (0 if unjudged).
        An item counts as relevant when its gain is > 0.
    ideal_gains : ndarray, shape (nq, K2)
        Each query's judged relevances sorted descending, zero padded (only used by ``ndcg@k``;
        ``K2 >= k`` is required for it).
    n_relevant : ndarray of int, shape (nq,)
        Number of judged documents with relevance > 0, retrieved or not.
    metrics : sequence of str
        keff metric names; every cutoff ``k`` must be <= K.

    Returns
    -------
    dict of str to ndarray of float64, shape (nq,)
        Definitions as in pytrec_eval: nDCG@k with linear gain and ``1 / log2(rank + 1)``
        discount over the ideal ranking of the judged documents cut at ``k``; R@k = relevant
        retrieved in the top ``k`` / ``n_relevant``; AP@k = sum of precision at each relevant
        rank <= ``k``, divided by ``n_relevant``; RR@k = 1 / rank of the first relevant item
        within ``k``; Success@k = 1 if any relevant item is in the top ``k``. A query with
        ``n_relevant == 0`` scores 0 everywhere.
    """
    names = parse_metrics(metrics)
    g = np.asarray(gains, dtype=np.float64)
    ideal = np.asarray(ideal_gains, dtype=np.float64)
    n_rel = np.asarray(n_relevant)
    if g.ndim != 2:
        raise KeffError(f"gains must be 2-D (nq, K); got shape {g.shape}")
    nq, depth = g.shape
    if ideal.ndim != 2 or ideal.shape[0] != nq:
        raise KeffError(f"ideal_gains must have shape ({nq}, K); got {ideal.shape}")
    if n_rel.shape != (nq,):
        raise KeffError(f"n_relevant must have shape ({nq},); got {n_rel.shape}")
    for m in names:
        if m.k > depth:
            raise KeffError(f"{m.name} needs rankings of depth {m.k}, but gains have only {depth} columns")
        if m.family == "ndcg" and m.k > ideal.shape[1]:
            raise KeffError(f"{m.name} needs {m.k} ideal gains per query; ideal_gains have {ideal.shape[1]}")
    n_rel = n_rel.astype(np.float64)
    rel = g > 0
    ranks = np.arange(1, depth + 1, dtype=np.float64)
    hits = np.cumsum(rel, axis=1)  # relevant items in the top r, r = 1..K
    first = np.where(rel.any(axis=1), rel.argmax(axis=1) + 1, depth + 1)  # rank of first relevant
    out: dict[str, np.ndarray] = {}
    for m in names:
        k = m.k
        if m.family == "ndcg":
            disc = _discounts(k)
            out[m.name] = _safe_divide(g[:, :k] @ disc, ideal[:, :k] @ disc)
        elif m.family == "recall":
            out[m.name] = _safe_divide(hits[:, k - 1].astype(np.float64), n_rel)
        elif m.family == "map":
            precision = np.where(rel[:, :k], hits[:, :k] / ranks[:k], 0.0)
            out[m.name] = _safe_divide(precision.sum(axis=1), n_rel)
        elif m.family == "mrr":
            out[m.name] = np.where(first <= k, 1.0 / first, 0.0)
        else:  # hit
            out[m.name] = (first <= k).astype(np.float64)
    return out


def gains_from_topk(
    indices: np.ndarray,
    query_ids: Sequence[str],
    doc_ids: Sequence[str],
    qrels: Mapping[str, Mapping[str, int]],
    K: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs of :func:`topk_metrics` from an index's top-k output and qrels.

    Parameters
    ----------
    indices : ndarray of int, shape (nq, k)
        Ranked item numbers into ``doc_ids``, best first (e.g. from
        :meth:`keff.index.ExactIndex.search`).
    query_ids : sequence of str, length nq
        Id of each row of ``indices``.
    doc_ids : sequence of str, length n
        Id of each indexed item.
    qrels : Qrels
        query id -> doc id -> relevance. Judged documents missing from ``doc_ids`` still count
        in ``n_relevant`` and the ideal ranking (they can never be retrieved), as in pytrec_eval.
    K : int
        Depth of the returned arrays: the first ``min(k, K)`` ranks of ``indices``, zero padded.

    Returns
    -------
    gains : ndarray of float64, shape (nq, K)
    ideal_gains : ndarray of float64, shape (nq, K)
    n_relevant : ndarray of int64, shape (nq,)
    """
    qids = check_ids(query_ids, "query_ids")
    dids = check_ids(doc_ids, "doc_ids")
    idx = np.asarray(indices)
    if idx.ndim != 2 or idx.shape[0] != len(qids):
        raise KeffError(f"indices must have shape ({len(qids)}, k); got {idx.shape}")
    if not np.issubdtype(idx.dtype, np.integer):
        raise KeffError(f"indices must be integers; got dtype {idx.dtype}")
    if isinstance(K, bool) or not isinstance(K, (int, np.integer)) or K < 1:
        raise KeffError(f"K must be a positive integer; got {K!r}")
    n, nq = len(dids), len(qids)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        bad = int(np.argwhere((idx < 0) | (idx >= n))[0, 0])
        raise DataError(f"indices out of range [0, {n}) in row {bad}", item_id=qids[bad])
    position = {d: i for i, d in enumerate(dids)}
    ideal = np.zeros((nq, K), dtype=np.float64)
    n_relevant = np.zeros(nq, dtype=np.int64)
    keys: list[int] = []
    values: list[int] = []
    for row, qid in enumerate(qids):
        rels = checked_relevances(qid, qrels.get(qid, {}))
        positive = sorted((r for r in rels.values() if r > 0), reverse=True)
        n_relevant[row] = len(positive)
        ideal[row, : min(K, len(positive))] = positive[:K]
        for did, r in rels.items():
            if r > 0 and did in position:
                keys.append(row * n + position[did])
                values.append(r)
    # Look up every (row, item) pair of the ranking among the judged pairs in one sorted search.
    depth = min(idx.shape[1], K)
    gains = np.zeros((nq, K), dtype=np.float64)
    if keys and depth:
        order = np.argsort(np.asarray(keys, dtype=np.int64))
        judged_keys = np.asarray(keys, dtype=np.int64)[order]
        judged_vals = np.asarray(values, dtype=np.float64)[order]
        wanted = np.arange(nq, dtype=np.int64)[:, None] * n + idx[:, :depth].astype(np.int64)
        pos = np.searchsorted(judged_keys, wanted).clip(max=len(judged_keys) - 1)
        gains[:, :depth] = np.where(judged_keys[pos] == wanted, judged_vals[pos], 0.0)
    return gains, ideal, n_relevant

"""Scoring next-vector predictions by retrieval, the way a reader would use them.

For each window the prediction (cosine) ranks

- the **pool**: every unit of the held-out documents, with that window's context units removed
  (a prediction that copies an input must not score by finding the input), and
- its **own document**: the units of the target's document, context units removed.

Per window: cosine to the target, hit@1/5/10 and reciprocal rank in the pool, reciprocal rank
within the document, and the margin over the previous unit: ``cos(prediction, target) -
cos(previous unit, target)`` (how much closer than simply copying the last input).
"""

from __future__ import annotations

import numpy as np

from keff.arrays import l2_normalize
from keff.errors import KeffError
from keff.predict.windows import Windows

#: Per-window metrics :func:`score_predictions` returns.
METRICS = ("cosine", "hit@1", "hit@5", "hit@10", "mrr", "doc_mrr", "margin_prev")


def score_predictions(
    predictions: np.ndarray, windows: Windows, units: np.ndarray, unit_doc: np.ndarray, pool_docs: np.ndarray
) -> dict[str, np.ndarray]:
    """Per-window metrics (see the module docstring).

    Parameters
    ----------
    predictions : ndarray (n, d)
    windows : Windows
        The n windows predicted (their targets must be pool units).
    units : ndarray (m, d)
        Every unit vector (the rows ``windows`` index).
    unit_doc : ndarray of int (m,)
        Document of each unit.
    pool_docs : array-like of int
        The held-out documents whose units form the pool.
    """
    P = l2_normalize(np.asarray(predictions, dtype=np.float32))
    if P.shape != windows.targets.shape:
        raise KeffError(f"predictions have shape {P.shape}, the windows' targets {windows.targets.shape}")
    pool_rows = np.flatnonzero(np.isin(unit_doc, np.asarray(pool_docs)))
    if not np.isin(windows.target_rows, pool_rows).all():
        raise KeffError("every target must be a unit of the pool's documents")
    U = l2_normalize(np.asarray(units, dtype=np.float32))
    pool = U[pool_rows]
    col = np.full(len(U), -1)
    col[pool_rows] = np.arange(len(pool_rows))
    pool_doc = unit_doc[pool_rows]
    out = {m: np.zeros(len(P)) for m in METRICS}
    T = U[windows.target_rows]
    out["cosine"] = np.sum(P * T, axis=1)
    out["margin_prev"] = out["cosine"] - np.sum(U[windows.context_rows[:, -1]] * T, axis=1)
    for lo in range(0, len(P), 512):
        sl = slice(lo, lo + 512)
        s = P[sl] @ pool.T
        rows = np.arange(s.shape[0])[:, None]
        s[rows, col[windows.context_rows[sl]]] = -np.inf  # context units are not candidates
        target = s[np.arange(s.shape[0]), col[windows.target_rows[sl]]]
        rank = (s > target[:, None]).sum(axis=1) + 1
        for k in (1, 5, 10):
            out[f"hit@{k}"][sl] = rank <= k
        out["mrr"][sl] = 1.0 / rank
        own = pool_doc[None, :] == windows.doc[sl][:, None]
        doc_rank = (np.where(own, s, -np.inf) > target[:, None]).sum(axis=1) + 1
        out["doc_mrr"][sl] = 1.0 / doc_rank
    return out

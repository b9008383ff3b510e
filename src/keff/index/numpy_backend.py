"""Exact inner-product top-k with numpy: batched matrix products, deterministic tie-breaking."""

from __future__ import annotations

import numpy as np


def topk_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` columns of every row of a score matrix, ties broken by lower column first.

    Parameters
    ----------
    scores : ndarray of float32, shape (b, n)
        Scores of ``n`` items for ``b`` queries.
    k : int
        Number of items to keep, ``1 <= k <= n``.

    Returns
    -------
    top_scores : ndarray of float32, shape (b, k)
        Scores in descending order.
    top_indices : ndarray of int64, shape (b, k)
        Column indices; among equal scores the lower index comes first, including at the
        k-th boundary (which of several tied items makes the cut).
    """
    b, n = scores.shape
    if k < n:
        # k-th largest score per row: the threshold of the cut.
        part = np.argpartition(-scores, k - 1, axis=1)[:, k - 1]
        kth = scores[np.arange(b), part][:, None]
        above = scores > kth
        tied = scores == kth
        need = k - above.sum(axis=1, keepdims=True)
        keep = above | (tied & (np.cumsum(tied, axis=1) <= need))
        # Exactly k columns per row; np.nonzero walks each row in ascending column order.
        cand = np.nonzero(keep)[1].reshape(b, k)
    else:
        cand = np.broadcast_to(np.arange(n), (b, n))
    cand_scores = np.take_along_axis(scores, cand, axis=1)
    # Stable sort on candidates already in ascending index order: ties keep lower index first.
    order = np.argsort(-cand_scores, axis=1, kind="stable")
    top_indices = np.take_along_axis(cand, order, axis=1).astype(np.int64, copy=False)
    top_scores = np.take_along_axis(cand_scores, order, axis=1)
    return top_scores, top_indices


class NumpyBackend:
    """Brute-force inner product search over ``vectors`` in query batches.

    Parameters
    ----------
    vectors : ndarray of float32, shape (n, d)
        Validated, finite item vectors (kept by reference, not copied).
    batch_size : int
        Queries per matrix product; memory is about ``batch_size * n * 4`` bytes per batch.
    """

    name = "numpy"

    def __init__(self, vectors: np.ndarray, batch_size: int) -> None:
        self._vectors = vectors
        self._batch_size = batch_size

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items per query; see :meth:`keff.index.ExactIndex.search`."""
        nq = queries.shape[0]
        scores = np.empty((nq, k), dtype=np.float32)
        indices = np.empty((nq, k), dtype=np.int64)
        for start in range(0, nq, self._batch_size):
            stop = min(start + self._batch_size, nq)
            sims = queries[start:stop] @ self._vectors.T
            scores[start:stop], indices[start:stop] = topk_rows(sims, k)
        return scores, indices

"""Exact inner-product top-k with numpy: batched matrix products, deterministic tie-breaking."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from keff.threads import search_threads

#: Rows at least this many times wider than ``k`` (and at least :data:`PREFILTER_MIN_COLS`
#: wide) are first cut down by a threshold read off a sample of their columns.
PREFILTER_RATIO = 256
PREFILTER_MIN_COLS = 4096
#: Columns of the sample, one in this many of the row (at least ``4 k``).
SAMPLE_SHARE = 32


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
    if k >= n:
        return _ordered(scores, np.broadcast_to(np.arange(n), (b, n)))
    if n >= PREFILTER_MIN_COLS and n >= PREFILTER_RATIO * k:
        found = _prefiltered(scores, k)
        if found is not None:
            return found
    return _partitioned(scores, k)


def _prefiltered(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Top-k of wide rows through a lower bound of each row's k-th score: the k-th largest of a
    sample of its columns can only be at or below the row's own k-th largest, so every
    column of the top k (ties at the cut included) scores at least that much. One comparison
    pass finds those columns (a few times k per row for rows in no particular order); the exact
    selection then runs on them alone, with the same tie rule. None when the bound keeps more
    than a quarter of the scores (heavily tied rows): the caller partitions the whole rows."""
    b, n = scores.shape
    sample = scores[:, _sample_columns(n, max(4 * k, n // SAMPLE_SHARE))]
    bound = np.partition(sample, sample.shape[1] - k, axis=1)[:, sample.shape[1] - k]
    above = scores >= bound[:, None]
    # flat positions, row-major: ascending columns within each row (3x faster than np.nonzero's
    # two index arrays)
    flat = np.flatnonzero(above)
    if flat.size > scores.size // 4:
        return None
    counts = np.count_nonzero(above, axis=1)
    rows = np.repeat(np.arange(b), counts)
    cols = flat - rows * n
    slot = np.arange(flat.size) - np.repeat(np.cumsum(counts) - counts, counts)
    # padding sorts after every real candidate: -inf scores at later positions, column n
    cand_scores = np.full((b, int(counts.max())), -np.inf, dtype=scores.dtype)
    cand_cols = np.full(cand_scores.shape, n, dtype=np.int64)
    cand_scores[rows, slot] = scores.reshape(-1)[flat] if scores.flags.c_contiguous else scores[rows, cols]
    cand_cols[rows, slot] = cols
    top_scores, pos = (
        _partitioned(cand_scores, k)
        if cand_scores.shape[1] > k
        else _ordered(cand_scores, np.broadcast_to(np.arange(k), (b, k)))
    )
    return top_scores, np.take_along_axis(cand_cols, pos, axis=1)


@lru_cache(maxsize=16)
def _sample_columns(n: int, m: int) -> np.ndarray:
    """``m`` of ``n`` columns drawn once (seeded by ``n``), sorted: a fixed random sample, so no
    structure of the rows (a stride of removed items, a sorted corpus) can bias the bound."""
    return np.sort(np.random.default_rng(n).choice(n, size=m, replace=False))


def _partitioned(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of every row (``k`` < the row width) by one partition of the whole rows."""
    n = scores.shape[1]
    # the k largest per row, unordered: one partition, no negated copy of the scores
    cand = np.argpartition(scores, n - k, axis=1)[:, n - k :]
    kth = np.take_along_axis(scores, cand, axis=1).min(axis=1)
    # Rows where more than k columns reach the k-th score: a tie crosses the cut and the
    # partition may have kept any of the tied columns, not the lowest. Only those rows pay for
    # the full-width tie bookkeeping.
    crossed = np.flatnonzero(np.count_nonzero(scores >= kth[:, None], axis=1) > k)
    if crossed.size:
        cand[crossed] = _lowest_tied(scores[crossed], kth[crossed], k)
    return _ordered(scores, np.sort(cand, axis=1))


def _lowest_tied(scores: np.ndarray, kth: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` columns of each row above ``kth``, filled up with the lowest columns equal to
    it, in ascending column order."""
    above = scores > kth[:, None]
    tied = scores == kth[:, None]
    need = k - above.sum(axis=1, keepdims=True)
    keep = above | (tied & (np.cumsum(tied, axis=1) <= need))
    # exactly k columns per row; np.nonzero walks each row in ascending column order
    return np.nonzero(keep)[1].reshape(scores.shape[0], k)


def _ordered(scores: np.ndarray, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Candidates (in ascending column order per row) sorted by descending score; the stable
    sort keeps equal scores in ascending column order."""
    cand_scores = np.take_along_axis(scores, cand, axis=1)
    order = np.argsort(-cand_scores, axis=1, kind="stable")
    top_indices = np.take_along_axis(cand, order, axis=1).astype(np.int64, copy=False)
    return np.take_along_axis(cand_scores, order, axis=1), top_indices


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
        with search_threads(nq):  # a single-query product: one BLAS thread (keff.threads)
            for start in range(0, nq, self._batch_size):
                stop = min(start + self._batch_size, nq)
                sims = queries[start:stop] @ self._vectors.T
                scores[start:stop], indices[start:stop] = topk_rows(sims, k)
        return scores, indices

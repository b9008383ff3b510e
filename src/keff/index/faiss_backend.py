"""Exact inner-product search with FAISS ``IndexFlatIP`` (the ``faiss`` extra, imported lazily)."""

from __future__ import annotations

import numpy as np

from keff.errors import require
from keff.threads import search_threads


class FaissBackend:
    """FAISS flat inner-product index over ``vectors``.

    Parameters
    ----------
    vectors : ndarray of float32, shape (n, d)
        Validated, finite item vectors (copied into the FAISS index).
    batch_size : int
        Queries per FAISS call.

    Notes
    -----
    FAISS's own heap does not promise an order among equal scores. Each result row is re-sorted
    by (score descending, index ascending), so equal scores inside the top ``k`` are ordered like
    the numpy backend; which of several items tied exactly at the k-th score makes the cut is
    FAISS's choice. Scores may differ from numpy's in the last float32 bits (different BLAS
    summation order).
    """

    name = "faiss"

    def __init__(self, vectors: np.ndarray, batch_size: int) -> None:
        faiss = require("faiss", "faiss")
        self._index = faiss.IndexFlatIP(vectors.shape[1])
        self._index.add(vectors)
        self._batch_size = batch_size

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items per query; see :meth:`keff.index.ExactIndex.search`."""
        nq = queries.shape[0]
        scores = np.empty((nq, k), dtype=np.float32)
        indices = np.empty((nq, k), dtype=np.int64)
        for start in range(0, nq, self._batch_size):
            stop = min(start + self._batch_size, nq)
            with search_threads(stop - start, openmp=True):
                s, i = self._index.search(queries[start:stop], k)
            order = np.lexsort((i, -s), axis=-1)
            scores[start:stop] = np.take_along_axis(s, order, axis=1)
            indices[start:stop] = np.take_along_axis(i, order, axis=1)
        return scores, indices

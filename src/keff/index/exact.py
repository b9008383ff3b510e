"""Exact (brute-force) inner-product search behind one small interface."""

from __future__ import annotations

import numpy as np

from keff.arrays import as_matrix
from keff.errors import KeffError
from keff.index._validate import check_k
from keff.index.faiss_backend import FaissBackend
from keff.index.numpy_backend import NumpyBackend

BACKENDS = {"numpy": NumpyBackend, "faiss": FaissBackend}
#: Scores one query block holds (queries x rows). With top-k's temporaries (the int64 partition
#: indices, a comparison mask) a block takes about 16 bytes per score: about 0.5 GB at this
#: bound, whatever the number of rows (1,024 queries x 1M rows at once would need about 16 GB).
EXACT_BATCH_SCORES = 1 << 25


def exact_batch_size(n_rows: int) -> int:
    """Queries per matrix product over ``n_rows`` rows (1 to 1,024), so a block holds at most
    :data:`EXACT_BATCH_SCORES` scores."""
    return max(1, min(1024, EXACT_BATCH_SCORES // max(int(n_rows), 1)))


class ExactIndex:
    """Exact top-k search by inner product (cosine similarity for L2-normalised vectors).

    Parameters
    ----------
    vectors : ndarray, shape (n, d)
        Item vectors, one row per item; converted to float32; must be finite and non-empty.
    backend : {"numpy", "faiss"}
        ``"numpy"``: batched ``queries @ vectors.T`` then a partial sort, no extra dependency.
        ``"faiss"``: FAISS ``IndexFlatIP`` (needs ``pip install 'keff[faiss]'``).
    batch_size : int, optional
        Queries scored per matrix product (bounds memory at about ``batch_size * n * 16`` bytes
        with top-k's temporaries); default :func:`exact_batch_size` of ``n``, blocks of at most
        :data:`EXACT_BATCH_SCORES` scores.

    Attributes
    ----------
    n : int
        Number of indexed items.
    dim : int
        Vector dimension.
    backend : str
        Backend name.

    Examples
    --------
    >>> import numpy as np
    >>> index = ExactIndex(np.eye(3, dtype=np.float32))
    >>> scores, ids = index.search(np.array([[0.0, 1.0, 0.5]], dtype=np.float32), k=2)
    >>> ids.tolist(), scores.tolist()
    ([[1, 2]], [[1.0, 0.5]])
    """

    def __init__(self, vectors: np.ndarray, *, backend: str = "numpy", batch_size: int | None = None) -> None:
        if backend not in BACKENDS:
            raise KeffError(f"unknown index backend {backend!r}; choose one of {sorted(BACKENDS)}")
        if batch_size is None:
            batch_size = exact_batch_size(len(vectors))
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise KeffError(f"batch_size must be a positive integer; got {batch_size!r}")
        vecs = as_matrix(vectors, "vectors", floating=True)
        if vecs.shape[0] == 0:
            raise KeffError("cannot build an index over 0 vectors")
        if vecs.shape[1] == 0:
            raise KeffError("vectors have dimension 0")
        self.n: int = int(vecs.shape[0])
        self.dim: int = int(vecs.shape[1])
        self.backend: str = backend
        self._impl = BACKENDS[backend](vecs, int(batch_size))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Return the ``k`` items with the largest inner product for every query.

        Parameters
        ----------
        queries : ndarray, shape (nq, d)
            Query vectors, one per row. A 1-D array is refused (use ``q[None, :]``) so that a
            single query and a batch are never confused.
        k : int
            Results per query; capped at :attr:`n`.

        Returns
        -------
        scores : ndarray of float32, shape (nq, min(k, n))
            Inner products, descending along each row.
        indices : ndarray of int64, shape (nq, min(k, n))
            Row numbers into ``vectors``; equal scores are ordered by lower index first.

        Raises
        ------
        KeffError
            On a 1-D or non-finite query array, a dimension mismatch, or a non-positive ``k``.
        """
        q = as_matrix(queries, "queries", floating=True)
        if q.shape[1] != self.dim:
            raise KeffError(f"queries have dimension {q.shape[1]} but the index holds {self.dim}-d vectors")
        k = min(check_k(k), self.n)
        if q.shape[0] == 0:
            return np.empty((0, k), dtype=np.float32), np.empty((0, k), dtype=np.int64)
        return self._impl.search(q, k)

    def __repr__(self) -> str:
        return f"ExactIndex(n={self.n}, dim={self.dim}, backend={self.backend!r})"

"""Seeded spherical k-means (cosine) with k-means++ initialisation, and choosing K.

Small and dependency-free (numpy only): the cluster step of :class:`~keff.maps.ClusterRouted`.
Rows are items; every row is L2-normalised first, so the inner product is the cosine and the
centroids are unit vectors (the normalised mean of their members).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from keff.arrays import as_matrix, l2_normalize
from keff.errors import KeffError

#: The named rules accepted by :func:`resolve_n_clusters`.
K_RULES = ("effective_rank", "sqrt")


@dataclass(frozen=True)
class KMeansResult:
    """The outcome of :func:`spherical_kmeans`.

    Attributes
    ----------
    centroids : ndarray, shape (K, d), float32
        Unit-norm centroids (a cluster left without members keeps its last centroid).
    labels : ndarray, shape (n,), int64
        Cluster of every row, in ``[0, K)``.
    n_iter : int
        Assignment/update rounds run.
    converged : bool
        True if the labels stopped changing or the largest centroid move fell below ``tol``.
    objective : float
        Mean cosine of every row to its centroid (higher is tighter).
    """

    centroids: np.ndarray
    labels: np.ndarray
    n_iter: int
    converged: bool
    objective: float


def effective_rank(Y: Any) -> int:
    """``floor((sum s_i)^2 / sum s_i^2)`` over the singular values ``s_i`` of ``Y`` as given.

    ``Y`` is NOT centred: for L2-normalised embeddings the mean direction is one of the
    spectrum's components, exactly as in the matrix the rule was first applied to.

    Parameters
    ----------
    Y : array, shape (n, d)

    Returns
    -------
    int
        In ``[1, min(n, d)]``; raises :class:`KeffError` for an all-zero matrix.
    """
    s = np.linalg.svd(as_matrix(Y, "Y").astype(np.float64), compute_uv=False)
    energy = float((s**2).sum())
    if energy == 0.0:
        raise KeffError("the effective rank of an all-zero matrix is undefined")
    # A tiny relative slack so that exact integer ratios are not floored one below by rounding.
    return max(1, math.floor(float(s.sum()) ** 2 / energy * (1 + 1e-9)))


def resolve_n_clusters(n_clusters: Any, Y: Any) -> int:
    """The number of clusters K for the rows of ``Y``, clamped to ``[1, n // 2]``.

    Parameters
    ----------
    n_clusters : int or {"effective_rank", "sqrt"}
        An integer >= 1; ``"effective_rank"``: :func:`effective_rank` of ``Y`` (uncentred);
        ``"sqrt"``: ``floor(sqrt(n))``.
    Y : array, shape (n, d)

    Returns
    -------
    int
    """
    Y = as_matrix(Y, "Y")
    n = Y.shape[0]
    if isinstance(n_clusters, str):
        if n_clusters not in K_RULES:
            raise KeffError(f"n_clusters must be an integer or one of {K_RULES}; got {n_clusters!r}")
        k = effective_rank(Y) if n_clusters == "effective_rank" else math.isqrt(n)
    elif isinstance(n_clusters, (int, np.integer)) and not isinstance(n_clusters, bool) and n_clusters >= 1:
        k = int(n_clusters)
    else:
        raise KeffError(f"n_clusters must be an integer >= 1 or one of {K_RULES}; got {n_clusters!r}")
    return max(1, min(k, n // 2))


def kmeans_plus_plus(Y: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding on unit rows: indices of ``k`` distinct rows.

    The first row is uniform; each next one is drawn with probability proportional to its
    squared distance ``2 - 2 cos`` to the nearest chosen row. When every remaining row
    coincides with a chosen one (fewer distinct rows than ``k``) the draw is uniform over the
    rows not yet chosen.

    Parameters
    ----------
    Y : ndarray, shape (n, d), float32, unit rows
    k : int, ``1 <= k <= n``
    rng : numpy Generator

    Returns
    -------
    ndarray, shape (k,), int64
    """
    n = Y.shape[0]
    chosen = np.empty(k, dtype=np.int64)
    chosen[0] = rng.integers(n)
    d2 = np.maximum(2.0 - 2.0 * (Y @ Y[chosen[0]]).astype(np.float64), 0.0)
    d2[chosen[0]] = 0.0
    for j in range(1, k):
        total = d2.sum()
        if total > 0.0:
            pick = int(rng.choice(n, p=d2 / total))
        else:
            free = np.setdiff1d(np.arange(n), chosen[:j])
            pick = int(free[rng.integers(free.size)])
        chosen[j] = pick
        np.minimum(d2, np.maximum(2.0 - 2.0 * (Y @ Y[pick]).astype(np.float64), 0.0), out=d2)
        d2[chosen[: j + 1]] = 0.0
    return chosen


def _update(Y: np.ndarray, labels: np.ndarray, old: np.ndarray) -> np.ndarray:
    """Normalised member sums; an empty cluster keeps its old centroid."""
    k = old.shape[0]
    onehot = np.zeros((k, labels.size), dtype=np.float32)
    onehot[labels, np.arange(labels.size)] = 1.0
    sums = (onehot @ Y).astype(np.float64)  # member sums, one matrix product
    norms = np.linalg.norm(sums, axis=1)
    new = old.astype(np.float64, copy=True)
    ok = norms > 0
    new[ok] = sums[ok] / norms[ok, None]
    return new.astype(np.float32)


def _reseed_empty(labels: np.ndarray, best: np.ndarray, k: int) -> np.ndarray:
    """Give every empty cluster the worst-fitting row of the largest clusters (deterministic)."""
    counts = np.bincount(labels, minlength=k)
    empty = np.flatnonzero(counts == 0)
    if empty.size == 0:
        return labels
    labels = labels.copy()
    order = np.argsort(best, kind="stable")  # worst-fitting rows first
    taken = 0
    for c in empty:
        while taken < order.size:
            row = order[taken]
            taken += 1
            if counts[labels[row]] > 1:  # never empty another cluster
                counts[labels[row]] -= 1
                labels[row] = c
                counts[c] = 1
                break
    return labels


def spherical_kmeans(Y: Any, n_clusters: int, *, seed: int = 0, max_iter: int = 100, tol: float = 1e-6) -> KMeansResult:
    """Cluster rows by cosine: k-means++ seeding, then Lloyd rounds on the unit sphere.

    Each round assigns every row to its most similar centroid (ties: lowest index), moves a
    worst-fitting row into any empty cluster, and sets each centroid to the normalised sum of
    its members. It stops when no label changes, when the largest centroid move
    ``||c_new - c_old||`` is below ``tol``, or after ``max_iter`` rounds.

    Parameters
    ----------
    Y : array, shape (n, d)
        Rows to cluster; normalised to unit length first (a zero row is an error).
    n_clusters : int
        K, ``1 <= K <= n``.
    seed : int
        Seeds the k-means++ draw; the same seed and data give the same result.
    max_iter : int
    tol : float

    Returns
    -------
    KMeansResult
    """
    Y = l2_normalize(as_matrix(Y, "Y"), zero_rows="error", name="Y")
    n = Y.shape[0]
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, (int, np.integer)) or not 1 <= n_clusters <= n:
        raise KeffError(f"n_clusters must be an integer in [1, {n}] (the number of rows); got {n_clusters!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise KeffError(f"max_iter must be an integer >= 1; got {max_iter!r}")
    if not isinstance(tol, (int, float)) or not tol >= 0:
        raise KeffError(f"tol must be a number >= 0; got {tol!r}")
    k = int(n_clusters)
    centroids = Y[kmeans_plus_plus(Y, k, np.random.default_rng(seed))]
    labels = np.full(n, -1, dtype=np.int64)
    converged, n_iter = False, 0
    while n_iter < max_iter:
        n_iter += 1
        sims = Y @ centroids.T
        new_labels = _reseed_empty(sims.argmax(axis=1), sims.max(axis=1), k)
        changed = not np.array_equal(new_labels, labels)
        labels = new_labels
        new_centroids = _update(Y, labels, centroids)
        shift = float(np.linalg.norm(new_centroids - centroids, axis=1).max())
        centroids = new_centroids
        if not changed or shift < tol:
            converged = True
            break
    objective = float(np.einsum("ij,ij->i", Y, centroids[labels]).mean())
    return KMeansResult(centroids, labels, n_iter, converged, objective)

"""Routing weights for :class:`~keff.maps.ClusterRouted`: softmaxes, top-k, segment sums.

Every function works on a whole batch at once (rows are queries) and returns float32; none
loops over queries in Python.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keff.errors import KeffError
from keff.estimator import is_finite_number
from keff.index.numpy_backend import topk_rows
from keff.sef import shown


def softmax_rows(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable (the row maximum is subtracted first).

    Parameters
    ----------
    logits : ndarray, shape (n, m)
        Finite values or ``-inf`` (weight 0); every row needs at least one finite entry.

    Returns
    -------
    ndarray, shape (n, m), float32
        Non-negative rows summing to one.
    """
    z = np.array(logits, dtype=np.float32)  # a fresh copy: the input is never modified
    if z.ndim != 2:
        raise KeffError(f"logits must be 2-D (n, m); got shape {z.shape}")
    top = z.max(axis=1, keepdims=True)
    if z.size and not np.isfinite(top).all():
        bad = int(np.flatnonzero(~np.isfinite(top[:, 0]))[0])
        raise KeffError(f"logits row {bad} has no finite entry (or holds NaN/+inf): its softmax is undefined")
    z -= top
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def top_k_renormalise(weights: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep the ``k`` largest weights of every row and rescale them to sum to one.

    Parameters
    ----------
    weights : ndarray, shape (n, m)
        Non-negative; every row needs a positive entry among its top ``k``.
    k : int
        Kept per row; capped at ``m``.

    Returns
    -------
    ids : ndarray, shape (n, min(k, m)), int64
        Columns in descending weight order (ties: lower column first).
    kept : ndarray, shape (n, min(k, m)), float32
        Their weights, each row summing to one.
    """
    w = np.asarray(weights, dtype=np.float32)
    if w.ndim != 2 or w.shape[1] == 0:
        raise KeffError(f"weights must be 2-D (n, m) with m >= 1; got shape {w.shape}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise KeffError(f"k must be an integer >= 1; got {k!r}")
    kept, ids = topk_rows(w, min(int(k), w.shape[1]))
    total = kept.sum(axis=1, keepdims=True)
    if w.shape[0] and not (total > 0).all():
        bad = int(np.flatnonzero(~(total[:, 0] > 0))[0])
        raise KeffError(f"row {bad} has no positive weight among its top {ids.shape[1]}: cannot renormalise")
    return ids, kept / total


def segment_sum(values: np.ndarray, labels: np.ndarray, n_segments: int) -> np.ndarray:
    """Sum each row's values per label: ``out[i, s] = sum_j values[i, j] [labels[i, j] == s]``.

    One ``np.bincount`` over flattened ``row * n_segments + label`` indices.

    Parameters
    ----------
    values : ndarray, shape (n, m)
    labels : ndarray of int, shape (n, m)
        Segment of every value, in ``[0, n_segments)``.
    n_segments : int

    Returns
    -------
    ndarray, shape (n, n_segments), float32
    """
    v = np.asarray(values)
    lab = np.asarray(labels)
    if v.ndim != 2 or lab.shape != v.shape:
        raise KeffError(f"values and labels must be 2-D arrays of one shape; got {v.shape} and {lab.shape}")
    if lab.dtype.kind not in "iu":
        raise KeffError(f"labels must be integers; got dtype {lab.dtype}")
    if isinstance(n_segments, bool) or not isinstance(n_segments, (int, np.integer)) or n_segments < 1:
        raise KeffError(f"n_segments must be an integer >= 1; got {n_segments!r}")
    if lab.size and (lab.min() < 0 or lab.max() >= n_segments):
        raise KeffError(f"labels must lie in [0, {n_segments}); got values in [{lab.min()}, {lab.max()}]")
    n = v.shape[0]
    flat = (np.arange(n, dtype=np.int64)[:, None] * n_segments + lab).ravel()
    sums = np.bincount(flat, weights=v.ravel().astype(np.float64), minlength=n * int(n_segments))
    return sums.reshape(n, int(n_segments)).astype(np.float32)


def routing_entropy(weights: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of every row of a routing distribution, ``0 log 0 = 0``.

    Parameters
    ----------
    weights : ndarray, shape (n, m)
        Non-negative rows summing to one.

    Returns
    -------
    ndarray, shape (n,), float32
        In ``[0, log m]``.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2:
        raise KeffError(f"weights must be 2-D (n, m); got shape {w.shape}")
    if (w < 0).any():
        raise KeffError("routing weights must be non-negative")
    logs = np.log(w, out=np.zeros_like(w), where=w > 0)
    return (-(w * logs).sum(axis=1)).astype(np.float32)


def check_temperature(temperature: Any) -> float:
    """Validate a softmax temperature: a finite number > 0."""
    if not (is_finite_number(temperature) and temperature > 0):
        raise KeffError(f"temperature must be a finite number > 0; got {shown(temperature)}")
    return float(temperature)


def centroid_routing(X_unit: np.ndarray, centroids: np.ndarray, temperature: float) -> np.ndarray:
    """Full softmax of ``cos(query, centroid) / temperature`` over all clusters.

    Parameters
    ----------
    X_unit : ndarray, shape (n, d), float32
        Unit-norm queries.
    centroids : ndarray, shape (K, d), float32
        Unit-norm centroids.
    temperature : float

    Returns
    -------
    ndarray, shape (n, K), float32
    """
    logits = X_unit @ centroids.T  # one matrix product for every similarity
    logits *= np.float32(1.0 / temperature)
    return softmax_rows(logits)


def question_routing(
    sims: np.ndarray,
    neighbours: np.ndarray,
    labels: np.ndarray,
    n_clusters: int,
    temperature: float,
    *,
    log_prior: np.ndarray | None = None,
    final_softmax: bool = False,
) -> np.ndarray:
    """Cluster mass from each query's nearest training questions.

    ``w_ij = softmax_j(s_ij / T + log p_j)`` over a query's neighbours ``j``, summed per
    cluster of the neighbour's pair; with ``final_softmax`` the masses ``m_k`` become
    ``softmax_k(log m_k / T)`` (clusters without mass get 0).

    Parameters
    ----------
    sims : ndarray, shape (n, m)
        Cosine of each query to its ``m`` nearest training questions.
    neighbours : ndarray of int, shape (n, m)
        Training-question row numbers.
    labels : ndarray of int, shape (n_train,)
        Cluster of every training pair.
    n_clusters : int
    temperature : float
    log_prior : ndarray, shape (n_train,), optional
        ``log p_j`` importance of every training question (None: uniform).
    final_softmax : bool

    Returns
    -------
    ndarray, shape (n, n_clusters), float32
        Rows summing to one.
    """
    logits = sims * np.float32(1.0 / temperature)
    if log_prior is not None:
        logits += log_prior[neighbours]
    mass = segment_sum(softmax_rows(logits), labels[neighbours], n_clusters)
    if not final_softmax:
        return mass
    with np.errstate(divide="ignore"):
        log_mass = np.log(mass)
    return softmax_rows(log_mass * np.float32(1.0 / temperature))

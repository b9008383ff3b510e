"""Vector-level fusion of specialist query vectors that already share one frame.

``Z`` holds S specialists' vectors for a batch of n queries, shape (S, n, d), rows L2-normalised
and aligned into one common frame (averaging vectors from different frames is meaningless: align
first). Variances ``var`` are per query, shape (S, n), or per query and dimension, shape
(S, n, d), all finite and > 0. Every fuser is vectorised over the batch (a loop runs over S at
most) and returns float32 (n, d) rows with unit L2 norm.

Kalman fusion, ``x = sum_i z_i / s_i / sum_i 1 / s_i``, runs in one pass on relative precisions
``s_min / s_i`` (the log-space "subtract the largest precision" trick without the logs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from keff.arrays import l2_normalize
from keff.errors import KeffError

#: Allowed deviation of a weight row's sum from 1.
WEIGHT_SUM_TOL = 1e-4


# -- validation -------------------------------------------------------------------------------
def check_stack(Z: Any, name: str = "Z") -> np.ndarray:
    """``Z`` as a finite float32 (S, n, d) array with S, n, d >= 1."""
    arr = np.asarray(Z)
    if arr.ndim != 3 or 0 in arr.shape:
        raise KeffError(f"{name} must be a non-empty 3-D array (S, n, d); got shape {arr.shape}")
    if arr.dtype.kind not in "fiu":
        raise KeffError(f"{name} must be numeric; got dtype {arr.dtype}")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        s, q = np.argwhere(~np.isfinite(arr))[0][:2]
        raise KeffError(f"{name} holds NaN or infinite values (specialist {s}, query row {q})")
    return arr


def check_var(var: Any, shape: tuple[int, int, int], *, scalar_only: bool = False) -> np.ndarray:
    """Variances of shape (S, n) or (S, n, d) matching ``shape`` = Z's shape, finite and > 0.

    Floating input keeps its dtype (a float64 variance of 1e-300 stays > 0); integers become
    float64.
    """
    arr = np.asarray(var)
    allowed = [shape[:2]] if scalar_only else [shape[:2], shape]
    if arr.shape not in allowed or arr.dtype.kind not in "fiu":
        want = " or ".join(str(a) for a in allowed)
        raise KeffError(f"var must be a numeric array of shape {want} to match Z {shape}; got {arr.shape}")
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float64)
    # Two reductions, no temporaries; NaN fails both.
    if not (arr.min() > 0 and arr.max() < np.inf):
        idx = tuple(int(i) for i in np.argwhere(~(np.isfinite(arr) & (arr > 0)))[0])
        raise KeffError(f"var must be finite and > 0; specialist {idx[0]}, query row {idx[1]} has {float(arr[idx])}")
    return arr


def check_weights(weights: Any, shape: tuple[int, int], name: str = "weights") -> np.ndarray:
    """Validate convex weights of shape ``shape`` = (S, n): finite, >= 0, each column sums to 1.

    Returns
    -------
    ndarray, shape (S, n), float32
    """
    arr = np.asarray(weights)
    if arr.shape != tuple(shape) or arr.dtype.kind not in "fiu":
        raise KeffError(f"{name} must be a numeric array of shape {tuple(shape)} (S, n); got {arr.shape}")
    arr = arr.astype(np.float32, copy=False)
    if not (np.isfinite(arr).all() and (arr >= 0).all()):
        raise KeffError(f"{name} must be finite and >= 0")
    off = np.abs(arr.sum(axis=0, dtype=np.float64) - 1.0) > WEIGHT_SUM_TOL
    if off.any():
        q = int(np.argmax(off))
        raise KeffError(f"{name} must sum to 1 over specialists; query row {q} sums to {arr[:, q].sum():.6g}")
    return arr


# -- shared kernels ---------------------------------------------------------------------------
def relative_precision(var: np.ndarray) -> np.ndarray:
    """Precision of each specialist relative to the most precise one, ``s_min / s_i``.

    Parameters
    ----------
    var : ndarray, shape (S, n) or (S, n, d), floating
        Validated variances; ``inf`` marks an excluded specialist (relative precision 0).

    Returns
    -------
    ndarray, same shape and dtype, values in [0, 1] with a 1 in every column
        Proportional to ``1 / var`` along S; no overflow is possible, and ratios below the
        dtype's smallest number underflow to 0, which is the correct limit.
    """
    return var.min(axis=0, keepdims=True) / var


def combine(w: np.ndarray, X: np.ndarray) -> np.ndarray:
    """``out[q] = sum_i w[i, q] * X[i, q]`` for float32 w (S, n) and X (S, n, m): (n, m) float32.

    One batched (1, S) @ (S, m) product per query, no temporaries of shape (S, n, m).
    """
    return np.matmul(w.T[:, None, :], X.transpose(1, 0, 2))[:, 0, :]


def precision_fuse(Z: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Kalman (information-form) fusion of validated inputs; see :func:`kalman_fuse`."""
    r = relative_precision(var).astype(np.float32, copy=False)
    if r.ndim == 2:
        fused = combine(r, Z)  # scalar variance: sum_i r_i z_i has the fused direction
    else:
        fused = np.einsum("snd,snd->nd", r, Z)
        fused /= r.sum(axis=0)
    return l2_normalize(fused, zero_rows="error", name="fused vector of query", inplace=True)


# -- public API -------------------------------------------------------------------------------
def stack(vectors: Sequence[np.ndarray]) -> np.ndarray:
    """Stack per-specialist query vectors into one array.

    Parameters
    ----------
    vectors : sequence of S arrays, each shape (n, d)
        One array per specialist, all in the same frame, the same shape and finite.

    Returns
    -------
    ndarray, shape (S, n, d), float32
    """
    if len(vectors) == 0:
        raise KeffError("stack needs at least one specialist's vectors")
    first = np.asarray(vectors[0])
    for i, v in enumerate(vectors):
        arr = np.asarray(v)
        if arr.ndim != 2 or arr.shape != first.shape:
            raise KeffError(f"specialist {i} vectors have shape {arr.shape}; expected (n, d) = {first.shape}")
    return check_stack(np.stack([np.asarray(v, dtype=np.float32) for v in vectors]), "stacked vectors")


def mean_fuse(Z: Any) -> np.ndarray:
    """Unweighted mean of the specialists' vectors, L2-normalised.

    Parameters
    ----------
    Z : array, shape (S, n, d)

    Returns
    -------
    ndarray, shape (n, d), float32, unit rows
    """
    Z = check_stack(Z)
    return l2_normalize(Z.sum(axis=0), zero_rows="error", name="fused vector of query", inplace=True)


def precision_weights(var: Any) -> np.ndarray:
    """Kalman weights ``(1 / s_i) / sum_j (1 / s_j)``, computed stably.

    Parameters
    ----------
    var : array, shape (S, n) or (S, n, d)
        Finite variances > 0.

    Returns
    -------
    ndarray, same shape as ``var``, float32
        Non-negative, summing to 1 over the S axis.
    """
    arr = np.asarray(var)
    if arr.ndim not in (2, 3):
        raise KeffError(f"var must have shape (S, n) or (S, n, d); got {arr.shape}")
    shape = arr.shape if arr.ndim == 3 else (*arr.shape, 1)  # check_var wants Z's (S, n, d)
    r = relative_precision(check_var(arr, shape))
    return (r / r.sum(axis=0, keepdims=True)).astype(np.float32)


def kalman_fuse(Z: Any, var: Any) -> np.ndarray:
    """Precision-weighted (Kalman, information-form) fusion, L2-normalised.

    ``x = sum_i z_i / s_i / sum_i 1 / s_i`` per query (and per dimension when ``var`` is
    (S, n, d)). Equal variances give exactly :func:`mean_fuse`'s direction; the result does not
    depend on the order of the specialists; a specialist whose variance is far below the others'
    dominates (the limit is :func:`hard_route`). Variances may span hundreds of orders of
    magnitude: nothing overflows and the most confident specialist is never dropped.

    Parameters
    ----------
    Z : array, shape (S, n, d)
    var : array, shape (S, n) or (S, n, d)
        Finite variances > 0; they may span many orders of magnitude.

    Returns
    -------
    ndarray, shape (n, d), float32, unit rows
    """
    Z = check_stack(Z)
    return precision_fuse(Z, check_var(var, Z.shape))


def hard_route(Z: Any, var: Any) -> tuple[np.ndarray, np.ndarray]:
    """Use only the specialist with the lowest variance for each query.

    Parameters
    ----------
    Z : array, shape (S, n, d)
    var : array, shape (S, n)
        Scalar variance per specialist and query; ties go to the lowest specialist index.

    Returns
    -------
    fused : ndarray, shape (n, d), float32, unit rows
    chosen : ndarray, shape (n,), int64
        Index of the chosen specialist per query.
    """
    Z = check_stack(Z)
    var = check_var(var, Z.shape, scalar_only=True)
    chosen = np.argmin(var, axis=0)
    fused = Z[chosen, np.arange(Z.shape[1])]
    return l2_normalize(fused, zero_rows="error", name="fused vector of query", inplace=True), chosen.astype(np.int64)


def weighted_fuse(Z: Any, weights: Any) -> np.ndarray:
    """Convex combination of the specialists' vectors with given per-query weights, normalised.

    Parameters
    ----------
    Z : array, shape (S, n, d)
    weights : array, shape (S, n)
        Finite, >= 0, each column summing to 1 (e.g. :meth:`LearnedGate.weights` transposed).

    Returns
    -------
    ndarray, shape (n, d), float32, unit rows
    """
    Z = check_stack(Z)
    w = check_weights(weights, Z.shape[:2])
    return l2_normalize(combine(w, Z), zero_rows="error", name="fused vector of query", inplace=True)


def weighted_scores(score_mats: Any, weights: Any) -> np.ndarray:
    """Per-query convex combination of the specialists' score matrices.

    Parameters
    ----------
    score_mats : array, shape (S, n, N)
        Specialist i's cosine score of query q against document j at ``[i, q, j]``.
    weights : array, shape (S, n)
        Finite, >= 0, each column summing to 1.

    Returns
    -------
    ndarray, shape (n, N), float32
        ``sum_i weights[i, q] * score_mats[i, q, :]``.
    """
    scores = check_stack(score_mats, "score_mats")
    w = check_weights(weights, scores.shape[:2])
    return combine(w, scores)


def weighted_query_concat(queries: Sequence[np.ndarray], weights: Any) -> np.ndarray:
    """Per-specialist queries scaled by their weights and concatenated, so that one inner-product
    search over the concatenated document vectors ``[D_1 | ... | D_S]`` gives exactly
    :func:`weighted_scores` of the per-specialist cosines (frames and dimensions may differ).

    Parameters
    ----------
    queries : sequence of S arrays, shape (n, d_i)
        Each specialist's own query vectors.
    weights : array, shape (S, n)
        Finite, >= 0, each column summing to 1.

    Returns
    -------
    ndarray, shape (n, sum d_i), float32
    """
    if len(queries) == 0:
        raise KeffError("weighted_query_concat needs at least one specialist's queries")
    qs = [np.asarray(q, dtype=np.float32) for q in queries]
    n = qs[0].shape[0]
    for i, q in enumerate(qs):
        if q.ndim != 2 or q.shape[0] != n:
            raise KeffError(f"queries[{i}] has shape {q.shape}; expected ({n}, d)")
    w = check_weights(weights, (len(qs), n))
    return np.concatenate([q * wi[:, None] for q, wi in zip(qs, w)], axis=1)

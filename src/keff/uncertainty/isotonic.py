"""Isotonic regression by pool-adjacent-violators (PAVA), in numpy.

:func:`pava` solves ``min sum_i w_i (y_i - f_i)^2`` subject to ``f_1 <= f_2 <= ... <= f_n``
for values already in order; :func:`fit_isotonic` orders (x, y) pairs, pools tied x, and
returns the knots that :func:`predict_isotonic` interpolates (clamped at both ends).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keff.errors import KeffError
from keff.uncertainty.base import as_scores


def _weights(w: Any, n: int) -> np.ndarray:
    if w is None:
        return np.ones(n, dtype=np.float64)
    w = as_scores(w, "weights", n)
    if not (w > 0).all():
        raise KeffError(f"weights must be > 0; entry {int(np.flatnonzero(~(w > 0))[0])} is {w[~(w > 0)][0]!r}")
    return w


def pava(y: Any, w: Any = None, *, increasing: bool = True) -> np.ndarray:
    """Weighted least-squares monotone fit of ``y`` in its given order.

    Parameters
    ----------
    y : array_like, shape (n,)
        Finite values, in the order the constraint applies to.
    w : array_like, shape (n,), optional
        Positive weights (default all 1).
    increasing : bool, default True
        Fit a non-decreasing sequence; False fits a non-increasing one.

    Returns
    -------
    ndarray of float64, shape (n,)
        The fitted values: piecewise constant, each block equal to the weighted mean of ``y``
        over it.
    """
    y = as_scores(y, "y")
    w = _weights(w, y.shape[0])
    sign = 1.0 if increasing else -1.0
    # Blocks on a stack: weighted mean, total weight, length. A new block is merged into the
    # previous one while it would violate the order.
    means: list[float] = []
    weights: list[float] = []
    sizes: list[int] = []
    for value, weight in zip((sign * y).tolist(), w.tolist()):
        mean, total, size = value, weight, 1
        while means and means[-1] >= mean:
            prev_mean, prev_total = means.pop(), weights.pop()
            size += sizes.pop()
            mean = (prev_mean * prev_total + mean * total) / (prev_total + total)
            total += prev_total
        means.append(mean)
        weights.append(total)
        sizes.append(size)
    return sign * np.repeat(np.asarray(means, dtype=np.float64), sizes)


def fit_isotonic(x: Any, y: Any, w: Any = None, *, increasing: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Isotonic regression of ``y`` on ``x``; returns its knots.

    Rows with equal ``x`` are first pooled into one point (weighted mean of ``y``, summed
    weight), so the fit is a function of ``x``.

    Parameters
    ----------
    x : array_like, shape (n,)
        Finite predictor values (any order), n >= 1.
    y : array_like, shape (n,)
        Finite targets paired with ``x``.
    w : array_like, shape (n,), optional
        Positive weights (default all 1).
    increasing : bool, default True
        Non-decreasing in ``x`` (False: non-increasing).

    Returns
    -------
    knots_x : ndarray of float64, shape (m,)
        The distinct ``x`` values, strictly increasing.
    knots_y : ndarray of float64, shape (m,)
        The fitted value at each, monotone in ``knots_x``.
    """
    x = as_scores(x, "x")
    if x.shape[0] == 0:
        raise KeffError("isotonic regression needs at least one point")
    y = as_scores(y, "y", x.shape[0])
    w = _weights(w, x.shape[0])
    knots_x, group = np.unique(x, return_inverse=True)
    total = np.bincount(group, weights=w)
    pooled = np.bincount(group, weights=w * y) / total
    return knots_x, pava(pooled, total, increasing=increasing)


def predict_isotonic(knots_x: np.ndarray, knots_y: np.ndarray, x: Any) -> np.ndarray:
    """Linear interpolation between knots, clamped to the end values outside them; float64."""
    return np.interp(as_scores(x, "x"), knots_x, knots_y)

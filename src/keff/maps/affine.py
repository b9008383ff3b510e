"""Affine map by ridge least squares, with the ridge strength chosen by GCV.

``Y ~ X @ W + b`` with ``W = (Xc^T Xc + alpha I)^-1 Xc^T Yc`` on centred data and
``b = mu_y - mu_x @ W``. Everything goes through one thin SVD of ``Xc``, so every alpha of the
grid costs only a few small matrix products, and generalised cross-validation (GCV) picks among
them. :mod:`keff.maps.low_rank` reuses :func:`fit_ridge`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from keff.errors import KeffError
from keff.estimator import NON_NEGATIVE, is_finite_number
from keff.maps.base import Map, register_map
from keff.sef import shown

#: The default alpha grid: 1e-4, 1e-3, ..., 1e3.
DEFAULT_ALPHAS: tuple[float, ...] = tuple(10.0**e for e in range(-4, 4))


@dataclass(frozen=True)
class RidgeSolution:
    """A ridge fit on centred data.

    Attributes
    ----------
    alpha : float
        The ridge strength used.
    W : ndarray, shape (d_source, d_target), float64
        Coefficients: ``Xc @ W`` are the fitted (centred) values.
    fitted_core : ndarray, shape (k, d_target), float64
        ``Xc @ W == U @ fitted_core`` with ``U`` the (n, k) orthonormal left singular vectors
        of ``Xc``: the fitted values in a k-dim orthonormal basis, so their right singular
        vectors are those of this small matrix.
    gcv : dict of float to float
        GCV error per alpha tried (empty when alpha was given).
    """

    alpha: float
    W: np.ndarray
    fitted_core: np.ndarray
    gcv: dict[float, float]


def check_alpha(alpha: Any, alphas: Any) -> tuple[float | None, tuple[float, ...]]:
    """Validate ``alpha`` ("auto" or a float >= 0) and the GCV grid; returns ``(alpha, grid)``
    with ``alpha`` None for "auto"."""
    if isinstance(alphas, (str, bytes)) or not isinstance(alphas, Iterable):
        raise KeffError(f"alphas must be a sequence of numbers; got {shown(alphas)}")
    grid = tuple(alphas)
    if not all(is_finite_number(a) for a in grid):
        raise KeffError(f"alphas must be a sequence of finite numbers; got {shown(alphas)}")
    grid = tuple(float(a) for a in grid)
    if alpha == "auto":
        if not grid or not all(a > 0 for a in grid):
            raise KeffError(f"alphas must be a non-empty sequence of positive finite numbers; got {shown(alphas)}")
        return None, grid
    if not (is_finite_number(alpha) and alpha >= 0):
        raise KeffError(f"alpha must be 'auto' or a finite number >= 0; got {shown(alpha)}")
    return float(alpha), grid


def gcv_errors(s: np.ndarray, UtY: np.ndarray, outside: float, n: int, alphas: Sequence[float]) -> dict[float, float]:
    """GCV error ``n * RSS / (n - df)^2`` for each alpha, the intercept counted in ``df``.

    Parameters
    ----------
    s : ndarray, shape (k,)
        Non-zero singular values of the centred inputs.
    UtY : ndarray, shape (k, d_target)
        Centred targets projected on the left singular vectors.
    outside : float
        Squared norm of the part of the centred targets outside the span of those vectors.
    n : int
        Number of rows.
    alphas : sequence of float
        Ridge strengths (> 0).
    """
    row_energy = (UtY**2).sum(axis=1)
    errors = {}
    for alpha in alphas:
        shrink = alpha / (s**2 + alpha)  # 1 - hat-matrix eigenvalue
        rss = outside + float((shrink**2 * row_energy).sum())
        dof_left = n - 1.0 - float((1.0 - shrink).sum())
        errors[alpha] = n * rss / dof_left**2 if dof_left > 1e-9 * n else math.inf
    return errors


def fit_ridge(Xc: np.ndarray, Yc: np.ndarray, alpha: float | None, alphas: Sequence[float]) -> RidgeSolution:
    """Ridge regression of centred ``Yc`` (n, d_target) on centred ``Xc`` (n, d_source).

    ``alpha=None`` picks the alpha of ``alphas`` with the lowest GCV error (the smallest one on
    ties); a float is used as given (0 gives the minimum-norm least-squares solution).
    """
    Xc = np.asarray(Xc, dtype=np.float64)
    Yc = np.asarray(Yc, dtype=np.float64)
    n = Xc.shape[0]
    U, s, Vt = np.linalg.svd(Xc, full_matrices=False)
    keep = s > (s[0] * max(Xc.shape) * np.finfo(np.float64).eps if s.size else 0.0)
    U, s, Vt = U[:, keep], s[keep], Vt[keep]
    UtY = U.T @ Yc
    gcv: dict[float, float] = {}
    if alpha is None:
        outside = max(float((Yc**2).sum() - (UtY**2).sum()), 0.0)
        gcv = gcv_errors(s, UtY, outside, n, alphas)
        best = min(gcv.values())
        if not math.isfinite(best):
            raise KeffError(f"GCV is undefined for every alpha in {list(alphas)} with {n} rows: give alpha explicitly")
        alpha = min(a for a in alphas if gcv[a] == best)
    coef = s / (s**2 + alpha)
    W = Vt.T @ (coef[:, None] * UtY)
    fitted_core = (s * coef)[:, None] * UtY
    return RidgeSolution(alpha=float(alpha), W=W, fitted_core=fitted_core, gcv=gcv)


@register_map("affine")
class Affine(Map):
    """Affine map ``X @ W + b`` fitted by ridge least squares on centred data.

    Parameters
    ----------
    alpha : "auto" or float, default "auto"
        Ridge strength; "auto" picks the value of ``alphas`` with the lowest generalised
        cross-validation error. A number (>= 0) is used as given.
    alphas : sequence of float, default (1e-4, 1e-3, ..., 1e3)
        The grid searched when ``alpha="auto"``.

    Attributes
    ----------
    W_ : ndarray, shape (d_source, d_target), float32
    b_ : ndarray, shape (d_target,), float32
    alpha_ : float
        The ridge strength used.
    """

    _state = {"W_": ("source_dim_", "target_dim_"), "b_": ("target_dim_",)}
    _scalars = {"alpha_": NON_NEGATIVE}

    def __init__(self, alpha: float | str = "auto", alphas: Sequence[float] = DEFAULT_ALPHAS) -> None:
        self.alpha = alpha
        self.alphas = alphas

    def _check_params(self) -> None:
        check_alpha(self.alpha, self.alphas)

    def _fit(self, X: np.ndarray, Y: np.ndarray) -> None:
        alpha, grid = check_alpha(self.alpha, self.alphas)
        X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
        mu_x, mu_y = X64.mean(axis=0), Y64.mean(axis=0)
        sol = fit_ridge(X64 - mu_x, Y64 - mu_y, alpha, grid)
        self.W_ = sol.W.astype(np.float32)
        self.b_ = (mu_y - mu_x @ sol.W).astype(np.float32)
        self.alpha_ = sol.alpha

    def _transform(self, X: np.ndarray) -> np.ndarray:
        return X @ self.W_ + self.b_

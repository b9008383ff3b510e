"""Orthogonal Procrustes: the best rotation (or reflection), optional shift and uniform scale.

``Y ~ scale * X @ W + b`` with ``W = U @ Vt`` from the thin SVD ``Xc^T Yc = U S Vt``. With
equal dimensions ``W`` is orthogonal; otherwise it is semi-orthogonal (orthonormal rows when
``d_source < d_target``, orthonormal columns when ``d_source > d_target``), so the map never
distorts angles within the source span. When ``d_source > d_target`` the SVD answer maximises
``trace(W^T Xc^T Yc)`` (the classical Procrustes criterion); it equals the least-squares fit only
when ``||Xc @ W||`` does not depend on ``W`` (square ``W``, or isotropic source rows).
"""

from __future__ import annotations

import numpy as np

from keff.errors import KeffError
from keff.estimator import FINITE
from keff.maps.base import Map, register_map


def check_flag(name: str, value: object) -> bool:
    """Validate a boolean constructor argument."""
    if not isinstance(value, bool):
        raise KeffError(f"{name} must be True or False; got {value!r}")
    return value


@register_map("procrustes")
class Procrustes(Map):
    """Orthogonal Procrustes map ``scale_ * (X @ W_) + b_``.

    Parameters
    ----------
    center : bool, default True
        Subtract the means before fitting and learn ``b = mu_y - scale * mu_x @ W``; otherwise
        ``b = 0``.
    scale : bool, default False
        Learn a uniform scale ``trace(S) / ||Xc||_F^2``; otherwise 1.
    allow_reflection : bool, default True
        If False, fit a proper rotation (``det(W) = +1``); only defined when source and target
        dimensions are equal.

    Attributes
    ----------
    W_ : ndarray, shape (d_source, d_target), float32
        Orthogonal (equal dims) or semi-orthogonal.
    b_ : ndarray, shape (d_target,), float32
    scale_ : float
    """

    _state = {"W_": ("source_dim_", "target_dim_"), "b_": ("target_dim_",)}
    _scalars = {"scale_": FINITE}

    def __init__(self, center: bool = True, scale: bool = False, allow_reflection: bool = True) -> None:
        self.center = center
        self.scale = scale
        self.allow_reflection = allow_reflection

    def _check_params(self) -> None:
        for name in ("center", "scale", "allow_reflection"):
            check_flag(name, getattr(self, name))

    def _fit(self, X: np.ndarray, Y: np.ndarray) -> None:
        self._check_params()
        center, scale, allow_reflection = self.center, self.scale, self.allow_reflection
        d_s, d_t = X.shape[1], Y.shape[1]
        if not allow_reflection and d_s != d_t:
            raise KeffError(
                f"allow_reflection=False (rotation only) needs equal dimensions; got source {d_s}-d and "
                f"target {d_t}-d: use allow_reflection=True for a semi-orthogonal map"
            )
        X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
        mu_x = X64.mean(axis=0) if center else np.zeros(d_s)
        mu_y = Y64.mean(axis=0) if center else np.zeros(d_t)
        Xc, Yc = X64 - mu_x, Y64 - mu_y
        U, S, Vt = np.linalg.svd(Xc.T @ Yc, full_matrices=False)
        if not allow_reflection and np.linalg.det(U) * np.linalg.det(Vt) < 0:
            U[:, -1] *= -1.0  # flip the weakest direction: the best proper rotation
            S[-1] *= -1.0
        W = U @ Vt
        s = 1.0
        if scale:
            energy = float((Xc**2).sum())
            if energy == 0.0:
                raise KeffError("cannot fit a scale: every row of X is the same after centring")
            s = float(S.sum()) / energy
        self.W_ = W.astype(np.float32)
        self.b_ = (mu_y - s * (mu_x @ W)).astype(np.float32)
        self.scale_ = s

    def _transform(self, X: np.ndarray) -> np.ndarray:
        out = X @ self.W_
        if self.scale_ != 1.0:
            out *= np.float32(self.scale_)
        return out + self.b_

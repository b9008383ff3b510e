"""Low-rank affine map: a cheap base (identity, Procrustes or nothing) plus a rank-r correction.

``Y ~ X @ B + (X @ A) @ C + b`` with ``A`` (d_source, r) and ``C`` (r, d_target); the dense
``B + A @ C`` is never formed. The correction is fitted by reduced-rank ridge regression on the
residual ``Y - base(X)``: a full ridge fit ``W_r`` (alpha by GCV, as :class:`~keff.maps.Affine`),
then a projection of its fitted values ``Xc @ W_r`` onto their top-r right singular vectors
``V_r``: ``A = W_r @ V_r``, ``C = V_r^T``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from keff.errors import KeffError
from keff.estimator import NON_NEGATIVE, ArraySpec
from keff.maps.affine import DEFAULT_ALPHAS, check_alpha, fit_ridge
from keff.maps.base import Floor, Map, product_floor, register_map, resolve_base
from keff.maps.procrustes import Procrustes
from keff.sef import shown

BASES = ("auto", "identity", "none", "procrustes")


@register_map("lowrank")
class LowRankAffine(Map):
    """``X @ B + (X @ A_) @ C_ + b_``: a base map plus a reduced-rank ridge correction.

    Parameters
    ----------
    rank : int, default 64
        Rank r of the correction (>= 1); capped at ``min(d_source, d_target, n - 1)``.
    alpha : "auto" or float, default "auto"
        Ridge strength of the correction; "auto" picks it by GCV on the residual target.
    base : {"auto", "identity", "none", "procrustes"}, default "auto"
        ``B``: "identity" (equal dims only; costs 2 d r per row, no B stored), "none"
        (``B = 0``: pure reduced-rank regression), "procrustes" (a centred, scaled
        :class:`~keff.maps.Procrustes` fitted first; its scale is folded into ``B_`` and its
        shift into ``b_``), "auto" ("identity" when dims match, else "none").
    alphas : sequence of float, default (1e-4, ..., 1e3)
        The GCV grid for ``alpha="auto"``.

    Attributes
    ----------
    A_ : ndarray, shape (d_source, rank_), float32
    C_ : ndarray, shape (rank_, d_target), float32
        Orthonormal rows.
    b_ : ndarray, shape (d_target,), float32
    B_ : ndarray, shape (d_source, d_target), float32
        Only with ``base_ == "procrustes"``.
    base_ : str
        The resolved base mode.
    rank_ : int
        The effective rank.
    alpha_ : float
        The ridge strength used.
    """

    # r: the effective rank, bound by the stored factors
    _state = {"A_": ("source_dim_", "r"), "C_": ("r", "target_dim_"), "b_": ("target_dim_",)}
    _base_state = {"B_": ArraySpec(("source_dim_", "target_dim_"))}
    _scalars = {"alpha_": NON_NEGATIVE}

    def __init__(
        self,
        rank: int = 64,
        alpha: float | str = "auto",
        base: str = "auto",
        alphas: Sequence[float] = DEFAULT_ALPHAS,
    ) -> None:
        self.rank = rank
        self.alpha = alpha
        self.base = base
        self.alphas = alphas

    def _check_params(self) -> None:
        if isinstance(self.rank, bool) or not isinstance(self.rank, (int, np.integer)) or self.rank < 1:
            raise KeffError(f"rank must be an integer >= 1; got {shown(self.rank)}")
        check_alpha(self.alpha, self.alphas)
        if not isinstance(self.base, str) or self.base not in BASES:
            raise KeffError(f"base must be one of {', '.join(map(repr, BASES))}; got {shown(self.base)}")

    def _fit(self, X: np.ndarray, Y: np.ndarray) -> None:
        self._check_params()
        alpha, grid = check_alpha(self.alpha, self.alphas)
        n, d_s, d_t = X.shape[0], X.shape[1], Y.shape[1]
        base = resolve_base(self.base, BASES, d_s, d_t, unequal="none")
        rank = min(int(self.rank), d_s, d_t, n - 1)

        X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
        B = None
        base_bias = np.zeros(d_t)
        if base == "identity":
            R = Y64 - X64
        elif base == "none":
            R = Y64
        else:
            proc = Procrustes(center=True, scale=True).fit(X, Y)
            B = proc.W_.astype(np.float64) * proc.scale_
            base_bias = proc.b_.astype(np.float64)
            R = Y64 - X64 @ B - base_bias
        mu_x, mu_r = X64.mean(axis=0), R.mean(axis=0)
        sol = fit_ridge(X64 - mu_x, R - mu_r, alpha, grid)
        # Right singular vectors of the fitted values Xc @ W_r == U @ fitted_core (U orthonormal).
        _, _, Vt = np.linalg.svd(sol.fitted_core, full_matrices=True)
        C = Vt[:rank]
        A = sol.W @ C.T
        self.A_ = A.astype(np.float32)
        self.C_ = C.astype(np.float32)
        self.b_ = (base_bias + mu_r - (mu_x @ A) @ C).astype(np.float32)
        self.B_ = None if B is None else B.astype(np.float32)
        self.base_ = base
        self.rank_ = rank
        self.alpha_ = sol.alpha

    def _transform(self, X: np.ndarray) -> np.ndarray:
        out = (X @ self.A_) @ self.C_ + self.b_
        if self.base_ == "identity":
            out += X
        elif self.base_ == "procrustes":
            out += X @ self.B_
        return out

    def matmul_floor(self, rng: np.random.Generator) -> Floor:
        """``(x @ A) @ C``, plus ``x @ B`` with the Procrustes base: the products of
        :meth:`transform` (see :meth:`Map.matmul_floor`)."""
        self._check_fitted()
        chains = [(self.A_.shape, self.C_.shape)]
        if self.base_ == "procrustes":
            chains.append((self.B_.shape,))
        return product_floor(rng, *chains)

    def _state_specs(self) -> dict[str, ArraySpec]:
        """``A_``, ``C_``, ``b_``, and ``B_`` with the Procrustes base."""
        return {**self._state, **(self._base_state if self.base == "procrustes" else {})}

    def _after_restore(self) -> None:
        self.base_ = resolve_base(self.base, BASES, self.source_dim_, self.target_dim_, unequal="none")
        if self.base_ != "procrustes":
            self.B_ = None
        self.rank_ = int(self.A_.shape[1])

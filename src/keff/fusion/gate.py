"""A learned gate: soft per-query weights over specialists from cheap query features.

The gate is a multinomial logistic regression fitted on VALIDATION queries (never test queries)
to soft targets ``softmax(U / temperature)``, where ``U[q, i]`` is how well specialist i did on
query q (e.g. its nDCG@10). Rows where every specialist scored the same carry no information
about which to prefer and get weight 0 in the loss.
"""

from __future__ import annotations

import warnings
from typing import Any, Self

import numpy as np

from keff.arrays import as_matrix
from keff.errors import FormatError, KeffError
from keff.estimator import COUNT, FLAG, Estimator, ScalarSpec, is_finite_number
from keff.sef import shown


def _softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (n, S) logits, stable (the row max is subtracted)."""
    z = logits - logits.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def soft_target_loss(
    theta: np.ndarray, X: np.ndarray, targets: np.ndarray, row_w: np.ndarray, l2: float
) -> tuple[float, np.ndarray]:
    """Weighted cross-entropy to soft targets plus an L2 penalty on the coefficients, and its gradient.

    Parameters
    ----------
    theta : ndarray, shape (f * S + S,)
        Coefficients (f, S) raveled, then intercepts (S,).
    X : ndarray, shape (n, f)
        Standardised features.
    targets : ndarray, shape (n, S)
        Soft targets, rows summing to 1.
    row_w : ndarray, shape (n,)
        Row weights summing to 1 (0 for uninformative rows).
    l2 : float

    Returns
    -------
    loss : float
        ``-sum_q row_w[q] sum_i targets[q, i] log p[q, i] + l2 / 2 ||W||^2``.
    grad : ndarray, shape (f * S + S,)
    """
    f, n_spec = X.shape[1], targets.shape[1]
    W, b = theta[: f * n_spec].reshape(f, n_spec), theta[f * n_spec :]
    logits = X @ W + b
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -(row_w @ (targets * log_p).sum(axis=1)) + 0.5 * l2 * float((W * W).sum())
    G = row_w[:, None] * (np.exp(log_p) - targets)
    grad = np.concatenate([(X.T @ G + l2 * W).ravel(), G.sum(axis=0)])
    return float(loss), grad


class LearnedGate(Estimator):
    """Soft gate over S specialists, fitted on validation utilities.

    Parameters
    ----------
    l2 : float
        L2 penalty on the coefficients (not the intercepts), >= 0.
    temperature : float
        Temperature of the soft targets ``softmax(U / temperature)``, > 0; small values make the
        target close to "the best specialist".
    max_iter : int
        L-BFGS-B iteration limit; not converging within it is a warning.
    seed : int
        Kept for keff's uniform estimator interface; the objective is convex and the fit starts
        from zero coefficients, so it does not change the result.

    Attributes
    ----------
    mean_, std_ : ndarray, shape (f,)
        Feature standardisation (a constant feature gets std 1, so it only shifts the logits).
    coef_ : ndarray, shape (f, S)
    intercept_ : ndarray, shape (S,)
    n_features_in_, n_specialists_, n_iter_ : int
    converged_ : bool
    """

    _state = {
        "mean_": ("n_features_in_",),
        "std_": ("n_features_in_",),
        "coef_": ("n_features_in_", "n_specialists_"),
        "intercept_": ("n_specialists_",),
    }
    _scalars = {
        "n_specialists_": ScalarSpec(int, minimum=2),
        "n_iter_": COUNT,
        "converged_": FLAG,
    }

    def __init__(self, l2: float = 1e-2, temperature: float = 0.05, max_iter: int = 500, seed: int = 0) -> None:
        self.l2 = l2
        self.temperature = temperature
        self.max_iter = max_iter
        self.seed = seed

    def _check_params(self) -> None:
        if not (is_finite_number(self.l2) and self.l2 >= 0):
            raise KeffError(f"l2 must be a finite number >= 0; got {shown(self.l2)}")
        if not (is_finite_number(self.temperature) and self.temperature > 0):
            raise KeffError(f"temperature must be a finite number > 0; got {shown(self.temperature)}")
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, int) or self.max_iter < 1:
            raise KeffError(f"max_iter must be an integer >= 1; got {shown(self.max_iter)}")

    def _after_restore(self) -> None:
        if not (self.std_ > 0).all():
            raise FormatError("LearnedGate feature scales std_ must all be > 0")

    def fit(self, F: Any, U: Any) -> Self:
        """Fit on validation queries.

        Parameters
        ----------
        F : array, shape (n, f)
            Query features (standardised inside).
        U : array, shape (n, S)
            Utility of each specialist on each validation query, S >= 2.

        Returns
        -------
        self
        """
        from scipy.optimize import minimize

        self._check_params()
        F, U = as_matrix(F, "F").astype(np.float64), as_matrix(U, "U").astype(np.float64)
        if F.shape[0] != U.shape[0]:
            raise KeffError(f"F has {F.shape[0]} rows but U has {U.shape[0]}: one row per validation query")
        n_spec = U.shape[1]
        if n_spec < 2:
            raise KeffError(f"U must have one column per specialist and at least 2; got {n_spec}")
        informative = np.ptp(U, axis=1) > 0
        if not informative.any():
            raise KeffError("every row of U is constant: no validation query tells the specialists apart")
        mean = F.mean(axis=0)
        std = F.std(axis=0)
        std[std == 0] = 1.0
        X = (F - mean) / std
        targets = _softmax(U / self.temperature)
        row_w = informative / informative.sum()
        f = X.shape[1]

        result = minimize(
            soft_target_loss,
            np.zeros(f * n_spec + n_spec),
            args=(X, targets, row_w, float(self.l2)),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": self.max_iter},
        )
        if not result.success:
            warnings.warn(
                f"LearnedGate did not converge in {self.max_iter} iterations: {result.message}",
                RuntimeWarning,
                stacklevel=2,
            )
        self.mean_, self.std_ = mean.astype(np.float32), std.astype(np.float32)
        self.coef_ = result.x[: f * n_spec].reshape(f, n_spec).astype(np.float32)
        self.intercept_ = result.x[f * n_spec :].astype(np.float32)
        self.n_specialists_ = int(n_spec)
        self.n_iter_ = int(result.nit)
        self.converged_ = bool(result.success)
        self.n_features_in_ = int(f)
        return self

    def weights(self, F: Any) -> np.ndarray:
        """Soft weights over specialists.

        Parameters
        ----------
        F : array, shape (n, f)

        Returns
        -------
        ndarray, shape (n, S), float32
            Rows sum to 1. Transpose for :func:`keff.fusion.vector.weighted_fuse`.
        """
        self._check_fitted()
        F = as_matrix(F, "F")
        if F.shape[1] != self.n_features_in_:
            raise KeffError(f"LearnedGate was fitted on {self.n_features_in_} features; got {F.shape[1]}")
        logits = ((F - self.mean_) / self.std_) @ self.coef_ + self.intercept_
        return _softmax(logits.astype(np.float32, copy=False))

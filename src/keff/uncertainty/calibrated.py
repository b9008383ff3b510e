"""Calibrate another estimator's raw score against observed retrieval error (isotonic)."""

from __future__ import annotations

from typing import Any, Self

import numpy as np

from keff.errors import FormatError, KeffError
from keff.estimator import ArraySpec, split_prefixes
from keff.sef import shown
from keff.uncertainty.base import (
    VarianceEstimator,
    as_scores,
    check_positive,
    rebuild_uncertainty,
    register_uncertainty,
)
from keff.uncertainty.isotonic import fit_isotonic, predict_isotonic

_BASE = "base"


@register_uncertainty
class CalibratedVariance(VarianceEstimator):
    """``variance(q) = max(iso(base.raw_score(q)), eps)``, ``iso`` fitted on validation errors.

    A base estimator (e.g. :class:`~keff.uncertainty.centroid.CentroidDistance`) gives a raw
    score per query; on VALIDATION queries of this specialist, an isotonic regression (monotone
    in the raw score, non-decreasing by default) maps it to the observed error, e.g.
    ``1 - nDCG@10``. The variance is the expected error, floored at ``eps``.

    Parameters
    ----------
    base : dict, optional
        The base estimator's :meth:`~keff.estimator.Estimator.describe` output. Leave it None:
        :meth:`fit` / :meth:`fit_from` set it from the base estimator they are given, and
        :func:`~keff.uncertainty.base.rebuild_uncertainty` uses it to restore the base.
    eps : float, default 1e-3
        Smallest variance, > 0 (a specialist with zero validation error still gets finite weight).
    increasing : bool, default True
        Error is non-decreasing in the raw score (the raw scores of keff's estimators are
        distances, where that is the expected direction).

    Attributes
    ----------
    base_ : VarianceEstimator
        The fitted base estimator (saved with its arrays prefixed ``"base/"``).
    x_ : ndarray, shape (m,), float64
        Isotonic knots: distinct validation raw scores, increasing.
    y_ : ndarray, shape (m,), float64
        Expected error at each knot, monotone.
    n_features_in_ : int
    """

    # m: the number of isotonic knots
    _state = {"x_": ArraySpec(("m",), np.float64), "y_": ArraySpec(("m",), np.float64)}

    def __init__(self, base: dict | None = None, eps: float = 1e-3, increasing: bool = True) -> None:
        self.base = base
        self.eps = eps
        self.increasing = increasing

    def fit(self, V: Any, *, raw_scores: Any, errors: Any, base_estimator: VarianceEstimator | None = None) -> Self:
        """Fit the calibration on validation queries.

        Parameters
        ----------
        V : ndarray, shape (n_val, d)
            Validation query vectors (never test queries).
        raw_scores : array_like, shape (n_val,)
            ``base_estimator.raw_score(V)`` (passed in so a costly score is computed once).
        errors : array_like, shape (n_val,)
            Observed loss of this specialist per validation query, in [0, 1] (e.g. 1 - nDCG@10).
        base_estimator : VarianceEstimator, optional
            The fitted base that produced ``raw_scores``; defaults to the base already attached
            by an earlier fit (an error if there is none).

        Returns
        -------
        self
        """
        return super().fit(V, raw_scores=raw_scores, errors=errors, base_estimator=base_estimator)

    def fit_from(self, base_estimator: VarianceEstimator, Q_val: Any, errors_val: Any) -> Self:
        """Score ``Q_val`` (n_val, d) with the fitted ``base_estimator`` and fit on ``errors_val`` (n_val,)."""
        self._check_base(base_estimator)
        raw = base_estimator.raw_score(Q_val)
        return self.fit(Q_val, raw_scores=raw, errors=errors_val, base_estimator=base_estimator)

    @staticmethod
    def _check_base(base: Any) -> VarianceEstimator:
        if not isinstance(base, VarianceEstimator):
            raise KeffError(f"the base must be a keff VarianceEstimator; got {type(base).__name__}")
        base._check_fitted()
        return base

    def _check_params(self) -> None:
        check_positive("eps", self.eps)
        if not isinstance(self.increasing, bool):
            raise KeffError(f"increasing must be True or False; got {self.increasing!r}")

    def _fit(self, V: np.ndarray, *, raw_scores: Any, errors: Any, base_estimator: Any) -> None:
        self._check_params()
        if base_estimator is None:
            if not hasattr(self, "base_"):
                raise KeffError("CalibratedVariance needs a fitted base estimator: use fit_from(base, Q_val, errors)")
            base_estimator = self.base_
        base = self._check_base(base_estimator)
        if base.n_features_in_ != V.shape[1]:
            raise KeffError(f"the base was fitted on {base.n_features_in_}-d vectors but V is {V.shape[1]}-d")
        raw = as_scores(raw_scores, "raw_scores", V.shape[0])
        err = as_scores(errors, "errors", V.shape[0])
        outside = np.flatnonzero((err < 0) | (err > 1))
        if outside.size:
            i = int(outside[0])
            raise KeffError(f"errors must lie in [0, 1] (e.g. 1 - nDCG@10); entry {i} is {err[i]}")
        self.x_, self.y_ = fit_isotonic(raw, err, increasing=self.increasing)
        self.base_ = base
        self.base = base.describe()

    def _raw_score(self, Q: np.ndarray) -> np.ndarray:
        return self.base_.raw_score(Q)

    def _squash(self, raw: np.ndarray) -> np.ndarray:
        return np.maximum(predict_isotonic(self.x_, self.y_, raw), float(self.eps))

    def get_state(self) -> dict[str, np.ndarray]:
        """``x_``, ``y_`` and the base's arrays as ``"base/<name>"``."""
        state = super().get_state()
        state.update({f"{_BASE}/{k}": v for k, v in self.base_.get_state().items()})
        return state

    def _after_restore(self) -> None:
        if self.x_.size == 0 or not (np.diff(self.x_) > 0).all():
            raise FormatError("CalibratedVariance knots x_ must be a non-empty, strictly increasing sequence")

    @classmethod
    def from_description(cls, description: dict[str, Any], arrays: dict[str, np.ndarray]) -> CalibratedVariance:
        groups = split_prefixes(arrays)
        own, base_arrays = groups.pop("", {}), groups.pop(_BASE, {})
        if groups:
            raise FormatError(f"CalibratedVariance state holds arrays of no part: {shown(sorted(groups))}")
        est = super().from_description(description, own)
        if not isinstance(est.base, dict):
            raise FormatError("CalibratedVariance description has no 'base' estimator description")
        est.base_ = rebuild_uncertainty(est.base, base_arrays)
        if est.base_.n_features_in_ != est.n_features_in_:
            raise FormatError(
                f"CalibratedVariance is {est.n_features_in_}-d but its base is {est.base_.n_features_in_}-d"
            )
        return est

"""Variance from a query's cosine distance to the specialist's domain centroid."""

from __future__ import annotations

import numpy as np

from keff.arrays import l2_normalize
from keff.errors import KeffError
from keff.estimator import FINITE, ScalarSpec
from keff.uncertainty._robust import MIN_SCALE, exp_squash, robust_location_scale
from keff.uncertainty.base import VarianceEstimator, check_positive, register_uncertainty


@register_uncertainty
class CentroidDistance(VarianceEstimator):
    """``variance(q) = floor + exp(sharpness * (d(q) - median_) / scale_)``, ``d = 1 - cos(q, centroid_)``.

    Fitted on the specialist's reference vectors (its documents or training queries): the
    centroid is their normalised mean, and ``median_`` / ``scale_`` are the median and robust
    standard deviation (IQR / 1.349) of ``d`` over them. A reference-typical query gets variance
    about ``floor + 1``; each robust standard deviation further out multiplies it by
    ``exp(sharpness)`` (about 20x at the default), so out-of-domain queries are down-weighted by
    orders of magnitude. The exponent is clipped to +-50 (see :mod:`keff.uncertainty._robust`).

    Parameters
    ----------
    sharpness : float, default 3.0
        Log-variance per robust standard deviation of distance, > 0.
    floor : float, default 1e-6
        Added to every variance, >= 0: caps the weight of queries very close to the centroid.

    Attributes
    ----------
    centroid_ : ndarray, shape (d,), float32
        Unit-norm mean direction of the reference rows.
    median_ : float
        Median reference distance.
    scale_ : float
        Robust standard deviation of the reference distances (> 0).
    n_features_in_ : int
    """

    _state = {"centroid_": ("n_features_in_",)}
    _scalars = {"median_": FINITE, "scale_": ScalarSpec(float, above=MIN_SCALE)}
    _min_rows = 2

    def __init__(self, sharpness: float = 3.0, floor: float = 1e-6) -> None:
        self.sharpness = sharpness
        self.floor = floor

    def _check_params(self) -> None:
        check_positive("sharpness", self.sharpness)
        check_positive("floor", self.floor, allow_zero=True)

    def _fit(self, V: np.ndarray) -> None:
        self._check_params()
        V = l2_normalize(V, zero_rows="error", name="V")
        mean = V.astype(np.float64).mean(axis=0)
        norm = float(np.linalg.norm(mean))
        if not norm > 1e-8:
            raise KeffError(
                f"the {V.shape[0]} reference rows cancel out (norm of their mean {norm:.3g}): "
                "no domain centroid; are they from one domain and one frame?"
            )
        self.centroid_ = (mean / norm).astype(np.float32)
        self.median_, self.scale_ = robust_location_scale(self._distance(V), "centroid distance")

    def _distance(self, U: np.ndarray) -> np.ndarray:
        """``1 - cos`` of unit rows ``U`` (n, d) to the centroid, float64 (n,)."""
        return 1.0 - U.astype(np.float64) @ self.centroid_.astype(np.float64)

    def _raw_score(self, Q: np.ndarray) -> np.ndarray:
        return self._distance(l2_normalize(Q, zero_rows="error", name="Q"))

    def _squash(self, raw: np.ndarray) -> np.ndarray:
        return float(self.floor) + exp_squash(raw, self.median_, self.scale_, float(self.sharpness))

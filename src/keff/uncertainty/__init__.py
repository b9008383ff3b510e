"""Per-query variance (sigma^2) estimators for Kalman fusion, their calibration and diagnostics.

Fit on a specialist's train/validation vectors only; ``variance(Q)`` gives float64 (n_q,) > 0.
"""

from keff.uncertainty.base import (
    UNCERTAINTY_TYPES,
    VarianceEstimator,
    rebuild_uncertainty,
    register_uncertainty,
)
from keff.uncertainty.calibrated import CalibratedVariance
from keff.uncertainty.centroid import CentroidDistance
from keff.uncertainty.constant import ConstantVariance
from keff.uncertainty.diagnostics import error_correlation, variance_spread
from keff.uncertainty.isotonic import fit_isotonic, pava, predict_isotonic
from keff.uncertainty.knn import KnnDensity

__all__ = [
    "UNCERTAINTY_TYPES",
    "CalibratedVariance",
    "CentroidDistance",
    "ConstantVariance",
    "KnnDensity",
    "VarianceEstimator",
    "error_correlation",
    "fit_isotonic",
    "pava",
    "predict_isotonic",
    "rebuild_uncertainty",
    "register_uncertainty",
    "variance_spread",
]

"""The same variance for every query: the baseline under which Kalman fusion is mean fusion."""

from __future__ import annotations

import numpy as np

from keff.uncertainty.base import VarianceEstimator, check_positive, register_uncertainty


@register_uncertainty
class ConstantVariance(VarianceEstimator):
    """``variance(q) = value`` for every query.

    Parameters
    ----------
    value : float, default 1.0
        The variance, finite and > 0.

    Notes
    -----
    :meth:`raw_score` is 0 for every query: there is no statistic behind a constant.
    """

    def __init__(self, value: float = 1.0) -> None:
        self.value = value

    def _check_params(self) -> None:
        check_positive("value", self.value)

    def _fit(self, V: np.ndarray) -> None:
        self._check_params()

    def _raw_score(self, Q: np.ndarray) -> np.ndarray:
        return np.zeros(Q.shape[0], dtype=np.float64)

    def _squash(self, raw: np.ndarray) -> np.ndarray:
        return np.full(raw.shape[0], float(self.value), dtype=np.float64)

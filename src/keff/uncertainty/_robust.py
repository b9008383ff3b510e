"""Robust reference statistics and the exponential squash shared by the distance estimators.

A distance statistic ``d`` is turned into a variance by a robust z-score against the reference
distribution, ``z = (d - median) / scale``, and ``exp(sharpness * z)``: one robust standard
deviation further out multiplies the variance by ``exp(sharpness)``. The dynamic range is wide
on purpose (an estimator that can only span 1x-2.6x makes Kalman fusion equal mean fusion).
"""

from __future__ import annotations

import numpy as np

from keff.errors import KeffError

#: IQR of a normal distribution in units of its standard deviation: IQR / 1.349 estimates sigma.
IQR_TO_SIGMA = 1.3489795003921634
#: The exponent ``sharpness * z`` is clipped to [-EXP_LIMIT, EXP_LIMIT] so that variances and
#: their inverses stay finite in float64 (a span of exp(2 * 50) ~ 1e43 is kept).
EXP_LIMIT = 50.0
#: A robust scale at or below this is treated as "no spread" (an error, not a silent default).
MIN_SCALE = 1e-12


def robust_location_scale(values: np.ndarray, what: str) -> tuple[float, float]:
    """Median and robust standard deviation (IQR / 1.349) of a reference statistic.

    Parameters
    ----------
    values : ndarray, shape (n,)
        The statistic over the reference rows (float64).
    what : str
        What the statistic is, for the error message.

    Returns
    -------
    median : float
    scale : float
        ``(p75 - p25) / 1.349``, > 0.

    Raises
    ------
    KeffError
        When the middle half of the values is (numerically) constant, e.g. identical reference
        rows: a z-score against it is undefined.
    """
    p25, median, p75 = np.percentile(values, [25.0, 50.0, 75.0])
    scale = float(p75 - p25) / IQR_TO_SIGMA
    if not scale > MIN_SCALE:
        raise KeffError(
            f"the {what} over the {values.shape[0]} reference rows has no spread (IQR {p75 - p25:.3g}): "
            "the reference vectors are (nearly) identical; fit on more varied reference vectors"
        )
    return float(median), scale


def exp_squash(raw: np.ndarray, median: float, scale: float, sharpness: float) -> np.ndarray:
    """``exp(clip(sharpness * (raw - median) / scale, -EXP_LIMIT, EXP_LIMIT))``, float64 (n,)."""
    z = sharpness * (np.asarray(raw, dtype=np.float64) - median) / scale
    return np.exp(np.clip(z, -EXP_LIMIT, EXP_LIMIT))

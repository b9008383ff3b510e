"""Is a variance estimator useful? Its dynamic range, and whether it tracks retrieval error.

A sigma^2 that spans only a few-fold range makes Kalman fusion indistinguishable from mean
fusion; one that does not rank queries by error (Spearman rho near 0) weights them at random.
Report both for every estimator on validation (or test, for reporting only) queries.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from keff.errors import KeffError
from keff.uncertainty.base import as_scores


def _positive_variances(var: Any) -> np.ndarray:
    v = as_scores(var, "var")
    if v.shape[0] == 0:
        raise KeffError("var is empty")
    if not (v > 0).all():
        raise KeffError(f"variances must be > 0; entry {int(np.flatnonzero(~(v > 0))[0])} is {v[~(v > 0)][0]!r}")
    return v


def variance_spread(var: Any) -> dict[str, float]:
    """Summary of a variance vector's dynamic range.

    Parameters
    ----------
    var : array_like, shape (n,)
        Per-query variances, finite and > 0.

    Returns
    -------
    dict
        ``min``, ``p5``, ``median``, ``p95``, ``max`` (floats), ``ratio_p95_p5`` (= p95 / p5)
        and ``ratio_max_min`` (= max / min); a ratio of 1 means every query is weighted alike.
    """
    v = _positive_variances(var)
    lo, p5, median, p95, hi = (float(q) for q in np.percentile(v, [0.0, 5.0, 50.0, 95.0, 100.0]))
    return {
        "min": lo,
        "p5": p5,
        "median": median,
        "p95": p95,
        "max": hi,
        "ratio_p95_p5": p95 / p5,
        "ratio_max_min": hi / lo,
    }


def error_correlation(var: Any, errors: Any) -> dict[str, float | int]:
    """Spearman rank correlation between variances and observed per-query errors.

    Parameters
    ----------
    var : array_like, shape (n,)
        Per-query variances, finite and > 0, n >= 3.
    errors : array_like, shape (n,)
        Observed loss per query (e.g. 1 - nDCG@10), paired with ``var``.

    Returns
    -------
    dict
        ``rho`` (Spearman's rho; > 0 when higher variance goes with higher error), ``p``
        (two-sided p-value, :func:`scipy.stats.spearmanr`) and ``n``. When either input is
        constant the correlation is undefined and ``rho`` and ``p`` are NaN.
    """
    v = _positive_variances(var)
    e = as_scores(errors, "errors", v.shape[0])
    if v.shape[0] < 3:
        raise KeffError(f"a rank correlation needs at least 3 queries; got {v.shape[0]}")
    if np.ptp(v) == 0 or np.ptp(e) == 0:
        return {"rho": float("nan"), "p": float("nan"), "n": int(v.shape[0])}
    from scipy.stats import spearmanr

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = spearmanr(v, e)
    return {"rho": float(result.statistic), "p": float(result.pvalue), "n": int(v.shape[0])}

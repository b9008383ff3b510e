"""Skip routing: do not encode a query with specialists that will not matter.

A cheap router compares the query with each specialist's domain centroid; specialists below a
similarity threshold are skipped (their encoder never runs) and fusion treats them as having
infinite variance. The threshold is tuned on VALIDATION queries to save the most encoder calls
while the retrieval objective stays within a tolerance of using every specialist.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from keff.arrays import as_matrix
from keff.errors import KeffError
from keff.fusion.score import call_objective
from keff.fusion.vector import check_stack, check_var, precision_fuse
from keff.progress import progress_bar

#: Number of evenly spaced quantiles of the validation similarities tried by default.
DEFAULT_QUANTILES = 21


def _check_min_keep(min_keep: int, n_specialists: int) -> int:
    if isinstance(min_keep, bool) or not isinstance(min_keep, (int, np.integer)) or not 1 <= min_keep <= n_specialists:
        raise KeffError(f"min_keep must be an integer in [1, {n_specialists}]; got {min_keep!r}")
    return int(min_keep)


def _check_mask(mask: Any, shape: tuple[int, int] | None = None) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.dtype != np.bool_ or arr.ndim != 2 or (shape is not None and arr.shape != shape):
        want = "(n, S)" if shape is None else f"(n, S) = {shape}"
        raise KeffError(f"mask must be a boolean array of shape {want}; got {arr.dtype} {arr.shape}")
    return arr


def select_specialists(sims: Any, threshold: float, *, min_keep: int = 1) -> np.ndarray:
    """Which specialists to run for each query.

    Parameters
    ----------
    sims : array, shape (n, S)
        Cosine of each query to each specialist's domain centroid.
    threshold : float
        Keep specialists with ``sims >= threshold`` (``-inf`` keeps all).
    min_keep : int
        Always keep this many of the most similar specialists per query (ties: lowest index).

    Returns
    -------
    ndarray, shape (n, S), bool
    """
    sims = as_matrix(sims, "sims")
    min_keep = _check_min_keep(min_keep, sims.shape[1])
    if not isinstance(threshold, (int, float, np.number)) or math.isnan(threshold):
        raise KeffError(f"threshold must be a number (or -inf); got {threshold!r}")
    mask = sims >= threshold
    top = np.argsort(-sims, axis=1, kind="stable")[:, :min_keep]
    mask[np.arange(sims.shape[0])[:, None], top] = True
    return mask


def masked_kalman_fuse(Z: Any, var: Any, mask: Any) -> np.ndarray:
    """Kalman fusion over the selected specialists only.

    Parameters
    ----------
    Z : array, shape (S, n, d)
        Unselected entries are ignored (they may hold anything finite, e.g. zeros).
    var : array, shape (S, n) or (S, n, d)
        Variances, finite and > 0 where selected (unselected entries are ignored).
    mask : array, shape (n, S), bool
        As returned by :func:`select_specialists`; every row keeps at least one specialist.

    Returns
    -------
    ndarray, shape (n, d), float32, unit rows
        :func:`keff.fusion.vector.kalman_fuse` with unselected specialists at infinite variance.
    """
    Z = check_stack(Z)
    mask = _check_mask(mask, (Z.shape[1], Z.shape[0]))
    empty = ~mask.any(axis=1)
    if empty.any():
        raise KeffError(f"mask selects no specialist for query row {int(np.argmax(empty))}")
    var = np.asarray(var)
    keep = mask.T if var.ndim == 2 else mask.T[:, :, None]
    var = check_var(np.where(keep, var, 1.0), Z.shape)  # validate the selected entries only
    return precision_fuse(Z, np.where(keep, var, np.inf))


def compute_saved(mask: Any) -> float:
    """Share of specialist encodings skipped, ``1 - mask.mean()``, for a (n, S) bool mask."""
    arr = _check_mask(mask)
    if arr.size == 0:
        raise KeffError("mask is empty")
    return float(1.0 - arr.mean())


def tune_threshold(
    sims_val: Any,
    objective_for_mask: Callable[[np.ndarray], float],
    *,
    candidates: Sequence[float] | None = None,
    tolerance: float = 0.005,
    min_keep: int = 1,
) -> tuple[float, dict]:
    """Pick the threshold that skips the most encodings without costing more than ``tolerance``.

    Parameters
    ----------
    sims_val : array, shape (n_val, S)
        Router similarities of the VALIDATION queries.
    objective_for_mask : callable
        ``objective_for_mask(mask (n_val, S) bool) -> float``, higher is better (e.g. mean
        nDCG@10 of masked Kalman fusion).
    candidates : sequence of float, optional
        Thresholds to try; by default 21 evenly spaced quantiles of ``sims_val``.
    tolerance : float
        Largest allowed drop below the no-skipping objective (same units as the objective).
    min_keep : int
        Passed to :func:`select_specialists`.

    Returns
    -------
    threshold : float
        ``-inf`` when no candidate saves anything within tolerance. Among equal savings the
        lower threshold wins.
    table : dict
        ``{"baseline_objective": v, "tolerance": t, "evaluated": [{"threshold": t,
        "objective": v, "saved": s}, ...]}`` (first row: ``-inf``, no skipping).
    """
    sims = as_matrix(sims_val, "sims_val")
    if not (isinstance(tolerance, (int, float)) and math.isfinite(tolerance) and tolerance >= 0):
        raise KeffError(f"tolerance must be a finite number >= 0; got {tolerance!r}")
    if candidates is None:
        candidates = np.quantile(sims, np.linspace(0.0, 1.0, DEFAULT_QUANTILES))
    if any(math.isnan(float(t)) for t in candidates):
        raise KeffError("candidates must not hold NaN")
    tries = sorted({float(t) for t in candidates} - {-math.inf})
    evaluated = []
    with progress_bar("tuning skip threshold", total=len(tries) + 1) as bar:
        for t in (-math.inf, *tries):
            mask = select_specialists(sims, t, min_keep=min_keep)
            value = call_objective(objective_for_mask, mask, f"threshold {t}")
            evaluated.append({"threshold": t, "objective": value, "saved": compute_saved(mask)})
            bar.advance()
    baseline = evaluated[0]["objective"]
    ok = [row for row in evaluated if row["objective"] >= baseline - tolerance]
    best = max(ok, key=lambda row: row["saved"])  # rows ascend by threshold: max keeps the lowest
    return best["threshold"], {"baseline_objective": baseline, "tolerance": float(tolerance), "evaluated": evaluated}

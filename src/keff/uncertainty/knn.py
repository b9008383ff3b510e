"""Variance from local density: the mean cosine distance to the k nearest reference rows."""

from __future__ import annotations

import numpy as np

from keff.arrays import l2_normalize
from keff.errors import FormatError, KeffError
from keff.estimator import FINITE, ScalarSpec
from keff.index import ExactIndex
from keff.uncertainty._robust import MIN_SCALE, exp_squash, robust_location_scale
from keff.uncertainty.base import VarianceEstimator, check_positive, register_uncertainty


def knn_distance(index: ExactIndex, Q: np.ndarray, k: int) -> np.ndarray:
    """Mean cosine distance ``1 - cos`` from each unit row of ``Q`` (n, d) to its ``k`` nearest
    rows of ``index``; float64 (n,)."""
    sims, _ = index.search(Q, k)
    return 1.0 - sims.astype(np.float64).mean(axis=1)


def leave_one_out_knn_distance(index: ExactIndex, R: np.ndarray, k: int) -> np.ndarray:
    """:func:`knn_distance` of every indexed row ``R`` (m, d) to the ``k`` nearest OTHER rows.

    Each row's own entry is dropped from its ``k + 1`` nearest neighbours; when exact
    duplicates push it out of that list (ties go to the lower row number), the farthest of
    the ``k + 1`` is dropped instead, so a duplicate still counts at distance 0.
    """
    sims, ids = index.search(R, k + 1)
    keep = ids != np.arange(R.shape[0])[:, None]
    no_self = keep.all(axis=1)
    keep[no_self, -1] = False
    return 1.0 - sims[keep].reshape(R.shape[0], k).astype(np.float64).mean(axis=1)


@register_uncertainty
class KnnDensity(VarianceEstimator):
    """``variance(q) = exp(sharpness * (knn(q) - median_) / scale_)``.

    ``knn(q)`` is the mean cosine distance from ``q`` to its ``k`` nearest reference rows.
    ``median_`` and ``scale_`` (IQR / 1.349) describe the same statistic over the reference
    rows themselves, each measured leave-one-out (against the k nearest *other* rows), so a
    query as typical as a reference row gets variance about 1 and one robust standard deviation
    sparser multiplies it by ``exp(sharpness)``. The exponent is clipped to +-50.

    Parameters
    ----------
    k : int, default 10
        Neighbours averaged; the reference needs at least ``k + 1`` rows.
    max_reference : int, default 5000
        At most this many reference rows are kept (a seeded uniform subsample without
        replacement), bounding memory and query cost at ``max_reference * d``.
    sharpness : float, default 3.0
        Log-variance per robust standard deviation, > 0.
    seed : int, default 0
        Seed of the subsample.

    Attributes
    ----------
    reference_ : ndarray, shape (m, d), float32
        The kept reference rows, unit-normalised, in their original order.
    median_ : float
    scale_ : float
    n_features_in_ : int

    Notes
    -----
    A query that is itself one of the reference rows is its own nearest neighbour (distance 0):
    score held-out queries, not the reference.
    """

    # m: the number of kept reference rows (at least k + 1, checked on load)
    _state = {"reference_": ("m", "n_features_in_")}
    _scalars = {"median_": FINITE, "scale_": ScalarSpec(float, above=MIN_SCALE)}
    _min_rows = 2

    def __init__(self, k: int = 10, max_reference: int = 5000, sharpness: float = 3.0, seed: int = 0) -> None:
        self.k = k
        self.max_reference = max_reference
        self.sharpness = sharpness
        self.seed = seed

    def _check_params(self) -> None:
        check_positive("k", self.k, integer=True)
        check_positive("max_reference", self.max_reference, integer=True)
        check_positive("sharpness", self.sharpness)
        check_positive("seed", self.seed, allow_zero=True, integer=True)

    def _fit(self, V: np.ndarray) -> None:
        self._check_params()
        k, max_reference = int(self.k), int(self.max_reference)
        n = V.shape[0]
        if n > max_reference:
            keep = np.sort(np.random.default_rng(self.seed).choice(n, size=max_reference, replace=False))
            V = V[keep]
        if V.shape[0] < k + 1:
            raise KeffError(
                f"KnnDensity(k={k}) needs at least k + 1 = {k + 1} reference rows (each row's k nearest OTHER "
                f"rows); got {V.shape[0]}" + (f" (max_reference={max_reference})" if n > max_reference else "")
            )
        R = l2_normalize(V, zero_rows="error", name="V")
        self.reference_ = R
        loo = leave_one_out_knn_distance(ExactIndex(R), R, k)
        self.median_, self.scale_ = robust_location_scale(loo, f"mean distance to the {k} nearest neighbours")

    def _after_restore(self) -> None:
        m, k = self.reference_.shape[0], int(self.k)
        if m < k + 1:
            raise FormatError(f"KnnDensity(k={k}) needs at least {k + 1} reference rows; got {m}")

    def _raw_score(self, Q: np.ndarray) -> np.ndarray:
        return knn_distance(ExactIndex(self.reference_), l2_normalize(Q, zero_rows="error", name="Q"), int(self.k))

    def _squash(self, raw: np.ndarray) -> np.ndarray:
        return exp_squash(raw, self.median_, self.scale_, float(self.sharpness))

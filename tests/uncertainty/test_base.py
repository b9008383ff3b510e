"""The variance-estimator contract across every estimator: save/rebuild, unfitted use, input checks."""

from __future__ import annotations

import numpy as np
import pytest

from keff.errors import FormatError, KeffError, NotFittedError
from keff.sef import load_sef, save_sef
from keff.uncertainty import (
    UNCERTAINTY_TYPES,
    CalibratedVariance,
    CentroidDistance,
    ConstantVariance,
    KnnDensity,
    VarianceEstimator,
    rebuild_uncertainty,
)

from .conftest import D, unit


def fitted(name: str, rng: np.random.Generator) -> VarianceEstimator:
    V = unit(np.eye(D)[0] + 0.5 * rng.standard_normal((120, D)))
    Q_val, err = unit(rng.standard_normal((40, D))), rng.uniform(0, 1, 40)
    if name == "constant":
        return ConstantVariance(0.5).fit(V)
    if name == "centroid":
        return CentroidDistance(sharpness=2.0, floor=1e-4).fit(V)
    if name == "knn":
        return KnnDensity(k=4, max_reference=80, seed=3).fit(V)
    if name == "calibrated-knn":
        return CalibratedVariance(eps=0.01).fit_from(KnnDensity(k=4).fit(V), Q_val, err)
    if name == "calibrated-twice":  # a calibration of a calibration: nesting two levels deep
        inner = CalibratedVariance().fit_from(CentroidDistance().fit(V), Q_val, err)
        return CalibratedVariance(increasing=False).fit_from(inner, Q_val, 1.0 - err)
    raise AssertionError(name)


NAMES = ["constant", "centroid", "knn", "calibrated-knn", "calibrated-twice"]


@pytest.mark.parametrize("name", NAMES)
def test_rebuild_gives_identical_variances(name, rng, tmp_path):
    est = fitted(name, rng)
    Q = unit(rng.standard_normal((30, D)))
    var = est.variance(Q)
    assert var.dtype == np.float64 and var.shape == (30,) and np.all(var > 0) and np.all(np.isfinite(var))
    again = rebuild_uncertainty(est.describe(), est.get_state())
    assert type(again) is type(est) and again.describe() == est.describe()
    assert np.array_equal(again.variance(Q), var) and np.array_equal(again.raw_score(Q), est.raw_score(Q))
    # Through a SEF file too: the description must be plain JSON, the state plain arrays.
    path = save_sef(tmp_path / "u.sef", est.get_state(), {"kind": "uncertainty", **est.describe()})
    arrays, meta = load_sef(path, kind="uncertainty")
    assert np.array_equal(rebuild_uncertainty(meta, arrays).variance(Q), var)


def test_calibrated_state_holds_the_base_arrays_prefixed(rng):
    est = fitted("calibrated-twice", rng)
    assert set(est.get_state()) == {"x_", "y_", "base/x_", "base/y_", "base/base/centroid_"}
    broken = {k: v for k, v in est.get_state().items() if k != "base/base/centroid_"}
    with pytest.raises(FormatError, match="lacks arrays"):
        rebuild_uncertainty(est.describe(), broken)
    no_base = {**est.describe(), "params": {**est.describe()["params"], "base": None}}
    with pytest.raises(FormatError, match="no 'base'"):
        rebuild_uncertainty(no_base, est.get_state())


def test_rebuild_rejects_unknown_types_and_missing_values(rng):
    est = fitted("centroid", rng)
    with pytest.raises(FormatError, match="unknown uncertainty type 'Oracle'"):
        rebuild_uncertainty({**est.describe(), "type": "Oracle"}, est.get_state())
    with pytest.raises(FormatError, match="lacks fitted values"):
        rebuild_uncertainty({**est.describe(), "fitted": {}}, est.get_state())


def test_registry_lists_every_estimator():
    assert set(UNCERTAINTY_TYPES) >= {"ConstantVariance", "CentroidDistance", "KnnDensity", "CalibratedVariance"}


@pytest.mark.parametrize("cls", [ConstantVariance, CentroidDistance, KnnDensity, CalibratedVariance])
def test_unfitted_estimators_refuse(cls):
    Q = np.ones((2, D), dtype=np.float32)
    for call in (lambda e: e.variance(Q), lambda e: e.raw_score(Q), lambda e: e.describe(), lambda e: e.get_state()):
        with pytest.raises(NotFittedError, match=f"{cls.__name__} is not fitted"):
            call(cls())


@pytest.mark.parametrize("name", NAMES)
def test_query_checks(name, rng):
    est = fitted(name, rng)
    with pytest.raises(KeffError, match=f"fitted on {D}-d vectors; got 8-d"):
        est.variance(np.ones((3, 8), dtype=np.float32))
    bad = unit(rng.standard_normal((4, D)))
    bad[2, 5] = np.nan
    with pytest.raises(KeffError, match="row 2 holds NaN"):
        est.variance(bad)
    with pytest.raises(KeffError, match="1-D"):
        est.variance(bad[0])
    assert est.variance(np.empty((0, D), dtype=np.float32)).shape == (0,)


def test_fit_checks(rng):
    V = unit(rng.standard_normal((20, D)))
    V[7, 0] = np.inf
    for est in (ConstantVariance(), CentroidDistance(), KnnDensity(k=3)):
        with pytest.raises(KeffError, match="row 7 holds NaN or inf"):
            est.fit(V)
        with pytest.raises(KeffError, match="floating-point"):
            est.fit(np.ones((5, 3), dtype=np.int64))
    est = CentroidDistance().fit(unit(rng.standard_normal((20, D)) + 2.0))
    with pytest.raises(KeffError, match="Q row 1 has zero norm"):
        est.variance(np.vstack([np.ones((1, D)), np.zeros((1, D))]).astype(np.float32))

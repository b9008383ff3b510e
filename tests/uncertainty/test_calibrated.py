"""keff.uncertainty.calibrated: raw score -> expected validation error, monotone by construction."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keff.errors import KeffError
from keff.uncertainty import CalibratedVariance, CentroidDistance, ConstantVariance

from .conftest import unit


@pytest.fixture
def planted(axes, cluster, rng):
    """A centroid base and validation queries whose error rises with their centroid distance."""
    a, b = axes
    base = CentroidDistance().fit(cluster(a, 300, 0.5))
    t = rng.uniform(0.0, np.pi / 2, 400)
    Q = unit(np.cos(t)[:, None] * a + np.sin(t)[:, None] * b + 0.05 * rng.standard_normal((400, a.shape[0])))
    errors = np.clip(t / (np.pi / 2) + rng.normal(0.0, 0.15, 400), 0.0, 1.0)
    return base, Q, errors


def test_learns_that_a_higher_raw_score_means_a_higher_error(planted, axes):
    base, Q, errors = planted
    cal = CalibratedVariance().fit_from(base, Q, errors)
    assert cal.base == base.describe() and cal.base_ is base
    assert np.all(np.diff(cal.x_) > 0) and np.all(np.diff(cal.y_) >= 0)
    a, b = axes
    near, far = cal.variance(a[None, :])[0], cal.variance(b[None, :])[0]
    assert near < 0.2 and far > 0.8
    var = cal.variance(Q)
    assert np.all(var >= cal.eps) and np.all(np.isfinite(var))
    assert np.corrcoef(var, errors)[0, 1] > 0.8
    assert np.array_equal(cal.raw_score(Q), base.raw_score(Q))


def test_eps_floors_zero_error():
    V = unit(np.random.default_rng(0).standard_normal((30, 4)))
    base = CentroidDistance().fit(V)
    cal = CalibratedVariance(eps=0.01).fit_from(base, V, np.zeros(30))
    assert np.all(cal.variance(V) == 0.01)


@settings(max_examples=30, deadline=None, database=None)
@given(st.integers(0, 2**32 - 1), st.booleans())
def test_fitted_calibration_is_monotone_in_the_raw_score(seed, increasing):
    """Monotone by test: on any data, variance ordered by raw score never reverses direction."""
    rng = np.random.default_rng(seed)
    V, Q = unit(rng.standard_normal((40, 6))), unit(rng.standard_normal((60, 6)))
    base = CentroidDistance().fit(V)
    cal = CalibratedVariance(increasing=increasing).fit_from(base, Q, rng.uniform(0, 1, 60))
    probe = unit(rng.standard_normal((300, 6)))
    order = np.argsort(base.raw_score(probe), kind="stable")
    steps = np.diff(cal.variance(probe)[order])
    assert np.all(steps >= -1e-12) if increasing else np.all(steps <= 1e-12)


def test_fit_with_precomputed_scores_and_refit_on_the_attached_base(planted):
    base, Q, errors = planted
    raw = base.raw_score(Q)
    cal = CalibratedVariance().fit(Q, raw_scores=raw, errors=errors, base_estimator=base)
    again = CalibratedVariance().fit_from(base, Q, errors)
    assert np.array_equal(cal.variance(Q), again.variance(Q))
    cal.fit(Q[:200], raw_scores=raw[:200], errors=errors[:200])  # reuses the attached base
    assert cal.base_ is base and len(cal.x_) <= 200


def test_constant_base_calibrates_to_the_mean_error(rng):
    V = unit(rng.standard_normal((20, 4)))
    cal = CalibratedVariance().fit_from(ConstantVariance().fit(V), V, np.linspace(0.0, 1.0, 20))
    assert np.allclose(cal.variance(V), 0.5)


def test_bad_calibration_inputs(planted):
    base, Q, errors = planted
    with pytest.raises(KeffError, match="needs a fitted base"):
        CalibratedVariance().fit(Q, raw_scores=base.raw_score(Q), errors=errors)
    with pytest.raises(KeffError, match=r"errors must lie in \[0, 1\]"):
        CalibratedVariance().fit_from(base, Q, errors * 2.0 + 0.1)
    with pytest.raises(KeffError, match="paired"):
        CalibratedVariance().fit_from(base, Q, errors[:-1])
    with pytest.raises(KeffError, match="VarianceEstimator"):
        CalibratedVariance().fit_from("centroid", Q, errors)
    with pytest.raises(KeffError, match="not fitted"):
        CalibratedVariance().fit_from(CentroidDistance(), Q, errors)
    with pytest.raises(KeffError, match="base was fitted on 16-d"):
        CalibratedVariance().fit(Q[:, :8], raw_scores=errors, errors=errors, base_estimator=base)
    with pytest.raises(KeffError, match="eps must be"):
        CalibratedVariance(eps=0.0).fit_from(base, Q, errors)

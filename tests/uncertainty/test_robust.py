"""keff.uncertainty._robust: robust z-scores and the clipped exponential."""

from __future__ import annotations

import numpy as np
import pytest

from keff.errors import KeffError
from keff.uncertainty._robust import EXP_LIMIT, IQR_TO_SIGMA, exp_squash, robust_location_scale


def test_location_and_scale_of_a_normal_sample(rng):
    x = rng.normal(3.0, 2.0, 200_000)
    median, scale = robust_location_scale(x, "x")
    assert median == pytest.approx(3.0, abs=0.02) and scale == pytest.approx(2.0, rel=0.02)
    assert robust_location_scale(np.arange(5.0), "x") == (2.0, pytest.approx(2.0 / IQR_TO_SIGMA))


def test_no_spread_is_an_error():
    with pytest.raises(KeffError, match="no spread"):
        robust_location_scale(np.array([0.3, 0.3, 0.3, 0.3, 0.9]), "centroid distance")


def test_squash_is_exp_of_the_scaled_z_and_clipped():
    out = exp_squash(np.array([1.0, 2.0, 0.0]), median=1.0, scale=0.5, sharpness=3.0)
    assert out.tolist() == pytest.approx([1.0, np.exp(6.0), np.exp(-6.0)])
    far = exp_squash(np.array([1e9, -1e9]), median=0.0, scale=1e-12, sharpness=3.0)
    assert far.tolist() == pytest.approx([np.exp(EXP_LIMIT), np.exp(-EXP_LIMIT)])
    assert np.isfinite(1.0 / far).all()

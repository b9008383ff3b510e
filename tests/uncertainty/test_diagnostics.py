"""keff.uncertainty.diagnostics: dynamic range and error correlation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from keff.errors import KeffError
from keff.uncertainty import error_correlation, variance_spread


def test_spread_of_a_known_vector():
    s = variance_spread(np.arange(1.0, 102.0))  # 1..101
    assert s == {
        "min": 1.0,
        "p5": 6.0,
        "median": 51.0,
        "p95": 96.0,
        "max": 101.0,
        "ratio_p95_p5": 16.0,
        "ratio_max_min": 101.0,
    }


@pytest.mark.parametrize("bad,match", [([1.0, 0.0], "> 0"), ([1.0, np.inf], "finite"), ([], "empty")])
def test_spread_rejects_bad_variances(bad, match):
    with pytest.raises(KeffError, match=match):
        variance_spread(bad)


def test_error_correlation(rng):
    var = rng.uniform(0.1, 10.0, 50)
    up = error_correlation(var, np.log(var) / 10 + 0.5)
    assert up["rho"] == pytest.approx(1.0) and up["p"] < 1e-10 and up["n"] == 50
    assert error_correlation(var, -np.log(var) / 10 + 0.5)["rho"] == pytest.approx(-1.0)
    noise = error_correlation(var, rng.uniform(0, 1, 50))
    assert abs(noise["rho"]) < 0.5 and noise["p"] > 1e-3


def test_error_correlation_is_undefined_for_a_constant_input():
    out = error_correlation(np.ones(10), np.linspace(0, 1, 10))
    assert math.isnan(out["rho"]) and math.isnan(out["p"]) and out["n"] == 10


def test_error_correlation_rejects_bad_input():
    with pytest.raises(KeffError, match="at least 3"):
        error_correlation([1.0, 2.0], [0.1, 0.2])
    with pytest.raises(KeffError, match="paired"):
        error_correlation([1.0, 2.0, 3.0], [0.1, 0.2])

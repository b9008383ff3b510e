"""keff.uncertainty.constant: the flat baseline."""

from __future__ import annotations

import numpy as np
import pytest

from keff.errors import KeffError
from keff.uncertainty import ConstantVariance, variance_spread


def test_every_query_gets_the_value(rng):
    est = ConstantVariance(0.25).fit(rng.standard_normal((5, 4)).astype(np.float32))
    Q = rng.standard_normal((7, 4)).astype(np.float32)
    assert est.variance(Q).tolist() == [0.25] * 7
    assert est.raw_score(Q).tolist() == [0.0] * 7
    assert variance_spread(est.variance(Q))["ratio_p95_p5"] == 1.0


@pytest.mark.parametrize("value", [0.0, -1.0, float("inf"), "1"])
def test_value_must_be_positive_and_finite(value, rng):
    with pytest.raises(KeffError, match="value must be"):
        ConstantVariance(value).fit(rng.standard_normal((3, 2)).astype(np.float32))

"""keff.estimator: the shared fit/describe/rebuild contract."""

from __future__ import annotations

import numpy as np
import pytest

from keff.errors import FormatError, NotFittedError
from keff.estimator import NON_NEGATIVE, Estimator, prefixed, rebuild


class Centre(Estimator):
    _state = {"mean_": ("n_features_in_",)}
    _scalars = {"spread_": NON_NEGATIVE}

    def __init__(self, shrink: float = 0.0) -> None:
        self.shrink = shrink

    def fit(self, X):
        self.mean_ = (1 - self.shrink) * X.mean(axis=0)
        self.spread_ = float(X.std())
        self.n_features_in_ = X.shape[1]
        return self


def test_describe_and_rebuild_round_trip():
    est = Centre(shrink=0.5).fit(np.arange(12, dtype=np.float32).reshape(4, 3))
    again = rebuild({"Centre": Centre}, est.describe(), est.get_state(), what="toy")
    assert again.get_params() == {"shrink": 0.5}
    assert np.array_equal(again.mean_, est.mean_) and again.spread_ == est.spread_ and again.n_features_in_ == 3
    assert repr(again) == "Centre(shrink=0.5)"


def test_unfitted_and_broken_descriptions():
    with pytest.raises(NotFittedError, match="Centre is not fitted"):
        Centre().describe()
    est = Centre().fit(np.ones((2, 2)))
    with pytest.raises(FormatError, match="unknown toy type 'Other'"):
        rebuild({"Centre": Centre}, {**est.describe(), "type": "Other"}, est.get_state(), what="toy")
    with pytest.raises(FormatError, match="lacks arrays"):
        rebuild({"Centre": Centre}, est.describe(), {}, what="toy")
    with pytest.raises(FormatError, match="lacks fitted values"):
        rebuild({"Centre": Centre}, {**est.describe(), "fitted": {}}, est.get_state(), what="toy")


def test_prefixed():
    arrays = {"a/x": np.zeros(1), "a/y": np.ones(1), "b/x": np.ones(2)}
    assert set(prefixed(arrays, "a")) == {"x", "y"}

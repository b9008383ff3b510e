"""The fusion registries: every name dispatches to its function, and bad calls are clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from keff.errors import KeffError
from keff.fusion import (
    FUSERS,
    SCORE_FUSERS,
    WEIGHTINGS,
    convex_scores,
    fuse,
    fusion_weights,
    hard_route,
    kalman_fuse,
    mean_fuse,
    precision_weights,
    rrf_scores,
    score_fuse,
    weighted_fuse,
    weighted_scores,
)


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((3, 5, 8)).astype(np.float32)
    Z /= np.linalg.norm(Z, axis=2, keepdims=True)
    var = rng.uniform(0.1, 2.0, (3, 5))
    w = rng.uniform(0.0, 1.0, (3, 5))
    return Z, var, w / w.sum(axis=0)


def test_vector_fusers_dispatch(batch):
    Z, var, w = batch
    assert set(FUSERS) == {"mean", "kalman", "route", "weighted"}
    np.testing.assert_array_equal(fuse(Z, method="mean"), mean_fuse(Z))
    np.testing.assert_array_equal(fuse(Z, var), kalman_fuse(Z, var))
    np.testing.assert_array_equal(fuse(Z, var, method="route"), hard_route(Z, var)[0])
    np.testing.assert_array_equal(fuse(Z, method="weighted", weights=w), weighted_fuse(Z, w))


def test_weightings_dispatch(batch):
    _, var, _ = batch
    assert set(WEIGHTINGS) == {"mean", "kalman", "route"}
    np.testing.assert_allclose(fusion_weights(var, "mean"), np.full((3, 5), 1 / 3))
    np.testing.assert_array_equal(fusion_weights(var), precision_weights(var))
    route = fusion_weights(var, "route")
    assert route.sum(axis=0).tolist() == [1.0] * 5
    assert (route.argmax(axis=0) == var.argmin(axis=0)).all()


def test_score_fusers_dispatch(batch):
    Z, _, w = batch
    rng = np.random.default_rng(1)
    S = rng.standard_normal((3, 5, 20)).astype(np.float32)
    assert set(SCORE_FUSERS) == {"weighted", "convex", "rrf"}
    np.testing.assert_array_equal(score_fuse(S, weights=w), weighted_scores(S, w))
    np.testing.assert_array_equal(score_fuse(S, method="convex", weights=[0.2, 0.3, 0.5]),
                                  convex_scores(list(S), [0.2, 0.3, 0.5]))  # fmt: skip
    rankings = [np.argsort(-s, axis=1, kind="stable") for s in S]
    np.testing.assert_array_equal(score_fuse(S, method="rrf", k=10), rrf_scores(rankings, 20, 10))


def test_unknown_methods_and_missing_inputs_are_clear(batch):
    Z, var, _ = batch
    with pytest.raises(KeffError, match="unknown fusion method 'vote' \\(choose from mean, kalman, route, weighted\\)"):
        fuse(Z, var, method="vote")
    with pytest.raises(KeffError, match="fusion method 'kalman' needs var"):
        fuse(Z)
    with pytest.raises(KeffError, match="unknown weighting method"):
        fusion_weights(var, "vote")
    with pytest.raises(KeffError, match="fusion method 'convex' needs one weight per specialist"):
        score_fuse(Z, method="convex")

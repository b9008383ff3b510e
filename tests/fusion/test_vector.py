"""keff.fusion.vector: mean, Kalman, hard-route and weighted fusion of aligned specialist vectors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keff.errors import KeffError
from keff.fusion.vector import (
    hard_route,
    kalman_fuse,
    mean_fuse,
    precision_weights,
    stack,
    weighted_fuse,
    weighted_query_concat,
    weighted_scores,
)


def unit_stack(rng: np.random.Generator, S: int, n: int, d: int) -> np.ndarray:
    Z = rng.standard_normal((S, n, d)).astype(np.float32)
    return Z / np.linalg.norm(Z, axis=2, keepdims=True)


def test_stack_validates_and_stacks():
    a, b = np.ones((2, 3)), np.zeros((2, 3), dtype=np.float64)
    Z = stack([a, b])
    assert Z.shape == (2, 2, 3) and Z.dtype == np.float32 and Z[0, 1, 2] == 1
    with pytest.raises(KeffError, match=r"specialist 1 vectors have shape \(2, 4\)"):
        stack([a, np.ones((2, 4))])
    with pytest.raises(KeffError, match="NaN or infinite values \\(specialist 1, query row 0\\)"):
        stack([a, np.full((2, 3), np.nan)])
    with pytest.raises(KeffError, match="at least one"):
        stack([])


def test_mean_fuse_is_normalised_mean():
    Z = np.array([[[1, 0, 0]], [[0, 1, 0]]], dtype=np.float32)
    out = mean_fuse(Z)
    assert out.dtype == np.float32 and out.shape == (1, 3)
    np.testing.assert_allclose(out, [[2**-0.5, 2**-0.5, 0]], atol=1e-7)


def test_opposite_vectors_are_a_clear_error():
    Z = np.array([[[1, 0]], [[-1, 0]]], dtype=np.float32)
    with pytest.raises(KeffError, match="query row 0 has zero norm"):
        mean_fuse(Z)


def test_kalman_hand_example():
    Z = np.array([[[1, 0]], [[0, 1]]], dtype=np.float32)
    var = np.array([[1.0], [3.0]])  # precisions 1 and 1/3 -> x ~ (3, 1)
    np.testing.assert_allclose(kalman_fuse(Z, var), [[3 / 10**0.5, 1 / 10**0.5]], atol=1e-6)


def test_kalman_equals_mean_for_equal_variances():
    rng = np.random.default_rng(0)
    Z = unit_stack(rng, 4, 50, 16)
    var = np.broadcast_to(rng.uniform(0.1, 5, size=(1, 50)), (4, 50))  # equal across specialists
    np.testing.assert_allclose(kalman_fuse(Z, var), mean_fuse(Z), atol=1e-6)
    np.testing.assert_allclose(kalman_fuse(Z, np.full((4, 50, 16), 2.0)), mean_fuse(Z), atol=1e-6)


def test_kalman_collapses_to_hard_route_for_one_confident_specialist():
    rng = np.random.default_rng(1)
    Z = unit_stack(rng, 3, 40, 8)
    var = np.ones((3, 40))
    best = rng.integers(0, 3, size=40)
    var[best, np.arange(40)] = 1e-12
    routed, chosen = hard_route(Z, var)
    assert np.array_equal(chosen, best)
    np.testing.assert_allclose(kalman_fuse(Z, var), routed, atol=1e-6)
    np.testing.assert_allclose(routed, Z[best, np.arange(40)], atol=1e-6)


def test_kalman_is_stable_across_hundreds_of_orders_of_magnitude():
    Z = np.array([[[1, 0]], [[0, 1]], [[0.6, 0.8]]], dtype=np.float32)
    var = np.array([[1e-310], [1e300], [1e-309]])  # 1 / var overflows float64 for the first and third
    out = kalman_fuse(Z, var)
    expected = np.array([1 + 0.06, 0.08]) / np.linalg.norm([1.06, 0.08])  # precisions 10 : 0 : 1
    np.testing.assert_allclose(out[0], expected, atol=1e-6)
    w = precision_weights(var)
    np.testing.assert_allclose(w[:, 0], [10 / 11, 0, 1 / 11], atol=1e-6)


def test_hard_route_ties_go_to_lowest_index():
    Z = np.array([[[1, 0]], [[0, 1]], [[0.6, 0.8]]], dtype=np.float32)
    _, chosen = hard_route(Z, np.array([[2.0], [1.0], [1.0]]))
    assert chosen.tolist() == [1]
    with pytest.raises(KeffError, match=r"shape \(3, 1\)"):
        hard_route(Z, np.ones((3, 1, 2)))


def test_per_dimension_variance_weights_each_dimension():
    Z = np.array([[[1, 0, 0]], [[0, 1, 0]]], dtype=np.float32)
    var = np.array([[[1.0, 1.0, 1.0]], [[1.0, 1.0, 1.0]]])
    var[1, 0, 0] = 1e-9  # specialist 1 is certain about dimension 0 (where it says 0)
    out = kalman_fuse(Z, var)
    # dim 0: ~0 (specialist 1 dominates); dim 1: (0 + 1) / 2; dim 2: 0
    np.testing.assert_allclose(out, [[0, 1, 0]], atol=1e-6)
    w = precision_weights(var)
    assert w.shape == (2, 1, 3)
    np.testing.assert_allclose(w.sum(axis=0), 1, atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    S=st.integers(2, 5),
    per_dim=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
    log_spread=st.floats(0, 30),
)
def test_kalman_is_invariant_to_specialist_order(S, per_dim, seed, log_spread):
    rng = np.random.default_rng(seed)
    n, d = 7, 6
    Z = unit_stack(rng, S, n, d)
    shape = (S, n, d) if per_dim else (S, n)
    var = np.exp(rng.uniform(-log_spread, log_spread, size=shape))
    perm = rng.permutation(S)
    np.testing.assert_allclose(kalman_fuse(Z[perm], var[perm]), kalman_fuse(Z, var), atol=1e-6)
    np.testing.assert_allclose(precision_weights(var[perm]), precision_weights(var)[perm], atol=1e-6)


def test_precision_weights_sum_to_one_and_follow_inverse_variance():
    var = np.array([[1.0, 4.0], [3.0, 4.0]])
    w = precision_weights(var)
    assert w.dtype == np.float32
    np.testing.assert_allclose(w, [[0.75, 0.5], [0.25, 0.5]], atol=1e-7)


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan, np.inf])
def test_bad_variances_name_the_entry(bad):
    Z = np.ones((2, 3, 4), dtype=np.float32)
    var = np.ones((2, 3))
    var[1, 2] = bad
    with pytest.raises(KeffError, match="specialist 1, query row 2"):
        kalman_fuse(Z, var)


def test_weighted_fuse_and_scores():
    Z = np.array([[[1, 0], [1, 0]], [[0, 1], [0, 1]]], dtype=np.float32)  # S=2, n=2
    w = np.array([[1.0, 0.5], [0.0, 0.5]])
    np.testing.assert_allclose(weighted_fuse(Z, w), [[1, 0], [2**-0.5, 2**-0.5]], atol=1e-7)
    scores = np.arange(12, dtype=np.float32).reshape(2, 2, 3)
    out = weighted_scores(scores, w)
    assert out.shape == (2, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, [scores[0, 0], 0.5 * scores[0, 1] + 0.5 * scores[1, 1]])
    with pytest.raises(KeffError, match="query row 1 sums to 0.9"):
        weighted_fuse(Z, np.array([[1.0, 0.4], [0.0, 0.5]]))
    with pytest.raises(KeffError, match=">= 0"):
        weighted_fuse(Z, np.array([[1.5, 0.5], [-0.5, 0.5]]))


def test_weighted_fuse_with_precision_weights_is_kalman():
    rng = np.random.default_rng(3)
    Z = unit_stack(rng, 3, 20, 5)
    var = np.exp(rng.normal(size=(3, 20)))
    np.testing.assert_allclose(weighted_fuse(Z, precision_weights(var)), kalman_fuse(Z, var), atol=1e-6)


def test_weighted_query_concat_searches_like_weighted_scores():
    rng = np.random.default_rng(3)
    dims = [8, 24, 5]  # specialists of different dimension, each in its own frame
    queries = [unit_stack(rng, 1, 40, d)[0] for d in dims]
    docs = [unit_stack(rng, 1, 300, d)[0] for d in dims]
    w = precision_weights(rng.uniform(0.1, 5.0, (3, 40)))
    expected = weighted_scores(np.stack([q @ d.T for q, d in zip(queries, docs)]), w)
    got = weighted_query_concat(queries, w) @ np.concatenate(docs, axis=1).T
    np.testing.assert_allclose(got, expected, atol=1e-5)
    with pytest.raises(KeffError, match=r"queries\[1\]"):
        weighted_query_concat([queries[0], queries[1][:5]], w)

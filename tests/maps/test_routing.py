"""keff.maps.routing: softmax, top-k renormalisation, segment sums, entropy, routing weights."""

from __future__ import annotations

import numpy as np
import pytest

from keff.errors import KeffError
from keff.maps.routing import (
    centroid_routing,
    check_temperature,
    question_routing,
    routing_entropy,
    segment_sum,
    softmax_rows,
    top_k_renormalise,
)


def test_softmax_rows_matches_the_formula_and_is_stable(rng):
    logits = rng.standard_normal((20, 7)).astype(np.float32) * 5
    before = logits.copy()
    p = softmax_rows(logits)
    ref = np.exp(logits - logits.max(1, keepdims=True))
    assert np.allclose(p, ref / ref.sum(1, keepdims=True), atol=1e-6)
    assert p.dtype == np.float32 and np.array_equal(logits, before)  # input untouched
    # Huge logits do not overflow; -inf entries get exactly zero weight.
    big = softmax_rows(np.array([[1000.0, 999.0, -np.inf]]))
    assert np.isfinite(big).all() and big[0, 2] == 0.0 and big[0, 0] == pytest.approx(1 / (1 + np.exp(-1)), rel=1e-5)


def test_softmax_rows_refuses_rows_without_a_finite_entry():
    with pytest.raises(KeffError, match="row 1 has no finite entry"):
        softmax_rows(np.array([[0.0, 1.0], [-np.inf, -np.inf]]))
    with pytest.raises(KeffError, match="2-D"):
        softmax_rows(np.zeros(3))


def test_top_k_renormalise_keeps_the_largest_and_sums_to_one(rng):
    w = softmax_rows(rng.standard_normal((50, 9)))
    ids, kept = top_k_renormalise(w, 3)
    assert ids.shape == kept.shape == (50, 3) and ids.dtype == np.int64
    assert np.allclose(kept.sum(1), 1.0, atol=1e-6)
    ref_ids = np.argsort(-w, axis=1, kind="stable")[:, :3]
    assert np.array_equal(ids, ref_ids)
    top = np.take_along_axis(w, ref_ids, 1)
    assert np.allclose(kept, top / top.sum(1, keepdims=True), atol=1e-6)


def test_top_k_renormalise_ties_cap_and_errors():
    ids, kept = top_k_renormalise(np.array([[0.25, 0.25, 0.25, 0.25]]), 2)
    assert ids.tolist() == [[0, 1]] and np.allclose(kept, 0.5)
    ids, kept = top_k_renormalise(np.array([[0.2, 0.8]]), 5)  # capped at m
    assert ids.tolist() == [[1, 0]] and np.allclose(kept, [[0.8, 0.2]])
    with pytest.raises(KeffError, match="row 1 has no positive weight"):
        top_k_renormalise(np.array([[1.0, 0.0], [0.0, 0.0]]), 1)
    with pytest.raises(KeffError, match="k must be"):
        top_k_renormalise(np.ones((2, 2)), 0)


def test_segment_sum_equals_a_loop_reference(rng):
    values = rng.random((30, 12)).astype(np.float32)
    labels = rng.integers(0, 5, size=(30, 12))
    out = segment_sum(values, labels, 6)
    ref = np.zeros((30, 6))
    for i in range(30):
        for j in range(12):
            ref[i, labels[i, j]] += values[i, j]
    assert out.shape == (30, 6) and out.dtype == np.float32
    assert np.allclose(out, ref, atol=1e-5) and np.all(out[:, 5] == 0)


def test_segment_sum_errors():
    with pytest.raises(KeffError, match=r"labels must lie in \[0, 3\)"):
        segment_sum(np.ones((2, 2)), np.array([[0, 3], [1, 1]]), 3)
    with pytest.raises(KeffError, match="one shape"):
        segment_sum(np.ones((2, 2)), np.zeros((2, 3), int), 3)
    with pytest.raises(KeffError, match="integers"):
        segment_sum(np.ones((2, 2)), np.zeros((2, 2)), 3)


def test_routing_entropy_bounds():
    h = routing_entropy(np.array([[0.25] * 4, [1.0, 0, 0, 0], [0.5, 0.5, 0, 0]]))
    assert np.allclose(h, [np.log(4), 0.0, np.log(2)], atol=1e-6)
    with pytest.raises(KeffError, match="non-negative"):
        routing_entropy(np.array([[1.5, -0.5]]))


def test_centroid_routing_is_a_softmax_of_cosines(rng):
    X = rng.standard_normal((10, 6)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    C = X[:3].copy()
    p = centroid_routing(X, C, 0.5)
    assert np.allclose(p, softmax_rows(X @ C.T / 0.5), atol=1e-6)
    assert np.array_equal(p[:3].argmax(1), [0, 1, 2])


@pytest.mark.parametrize("final", [False, True])
def test_question_routing_equals_a_dense_reference(rng, final):
    n, m, K, T = 8, 15, 4, 0.2
    sims = rng.uniform(-1, 1, (n, m)).astype(np.float32)
    labels = rng.integers(0, K, m)
    labels[:K] = np.arange(K)  # every cluster has a question
    prior = rng.uniform(0.1, 1.0, m).astype(np.float32)
    nb = np.broadcast_to(np.arange(m), (n, m))
    out = question_routing(sims, nb, labels, K, T, log_prior=np.log(prior), final_softmax=final)
    w = prior * np.exp(sims / T)
    w /= w.sum(1, keepdims=True)
    mass = np.stack([w[:, labels == k].sum(1) for k in range(K)], axis=1)
    if final:
        mass = np.exp(np.log(mass) / T)
        mass /= mass.sum(1, keepdims=True)
    assert np.allclose(out, mass, atol=1e-5) and np.allclose(out.sum(1), 1.0, atol=1e-5)


def test_final_softmax_gives_clusters_without_mass_zero_weight():
    out = question_routing(np.array([[0.9, 0.8]]), np.array([[0, 1]]), np.array([0, 0, 1]), 3, 0.1, final_softmax=True)
    assert out[0, 0] == pytest.approx(1.0) and out[0, 1] == 0.0 and out[0, 2] == 0.0


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "0.1", True])
def test_check_temperature(bad):
    with pytest.raises(KeffError, match="temperature"):
        check_temperature(bad)

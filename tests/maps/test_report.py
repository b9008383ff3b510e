"""keff.maps.report: perfect maps score 1, unrelated spaces score chance, metrics match brute force."""

from __future__ import annotations

import json

import numpy as np
import pytest

from keff.errors import KeffError
from keff.maps import Procrustes, alignment_report, per_text_cosine
from keff.maps import report as report_module


def identity_map(d: int, rng) -> Procrustes:
    Z = rng.standard_normal((4 * d, d))
    m = Procrustes(center=False).fit(Z, Z)
    assert np.allclose(m.W_, np.eye(d), atol=1e-5)
    return m


def test_perfect_map_scores_one(rng, orthonormal):
    Q = orthonormal(16, 16)
    X = rng.standard_normal((300, 16)).astype(np.float32)
    Y = X @ Q + 1.0
    r = alignment_report(Procrustes().fit(X, Y), X, Y, k=10)
    assert r.n == 300 and r.k == 10
    assert r.cosine_after == pytest.approx(1.0, abs=1e-5) and r.cosine_after_p10 == pytest.approx(1.0, abs=1e-5)
    assert r.nn_agreement_at_k == 1.0 and r.top1_accuracy == 1.0
    assert r.cosine_before is not None and r.cosine_before < 0.9


def test_identity_between_unrelated_spaces_scores_near_chance(rng):
    n, k = 400, 10
    X, Y = rng.standard_normal((n, 16)), rng.standard_normal((n, 16))
    r = alignment_report(identity_map(16, rng), X, Y, k=k)
    chance = k / (n - 1)
    assert abs(r.cosine_after) < 0.05 and r.cosine_after == pytest.approx(r.cosine_before, abs=1e-5)
    assert r.nn_agreement_at_k < 2 * chance
    assert r.top1_accuracy < 0.02


def test_neighbour_metrics_match_brute_force_across_blocks(rng, monkeypatch):
    monkeypatch.setattr(report_module, "_BLOCK", 7)  # several blocks, one partial
    n, k = 40, 5
    X = rng.standard_normal((n, 6))
    Y = X + 0.8 * rng.standard_normal((n, 6))  # related but noisy: scores strictly between 0 and 1
    r = alignment_report(identity_map(6, rng), X, Y, k=k)
    unit = lambda A: A / np.linalg.norm(A, axis=1, keepdims=True)  # noqa: E731
    Sm, St, Sx = unit(X) @ unit(X).T, unit(Y) @ unit(Y).T, unit(X) @ unit(Y).T
    np.fill_diagonal(Sm, -np.inf)
    np.fill_diagonal(St, -np.inf)
    overlap = [len(set(np.argsort(-Sm[i])[:k]) & set(np.argsort(-St[i])[:k])) / k for i in range(n)]
    top1 = np.mean(np.argmax(Sx, axis=1) == np.arange(n))
    assert r.nn_agreement_at_k == pytest.approx(np.mean(overlap), abs=1e-9)
    assert r.top1_accuracy == pytest.approx(top1, abs=1e-9)
    assert 0 < r.nn_agreement_at_k < 1 and 0 < r.top1_accuracy < 1


def test_cosine_before_is_none_when_dims_differ_and_to_dict_is_json(rng):
    X = rng.standard_normal((50, 8))
    Y = X @ rng.standard_normal((8, 12))
    r = alignment_report(Procrustes().fit(X, Y), X, Y, k=3)
    d = r.to_dict()
    assert d["cosine_before"] is None and d["k"] == 3
    assert json.loads(json.dumps(d)) == d


def test_per_text_cosine_values_and_errors():
    A = np.array([[1, 0], [1, 1], [0, 2]], np.float32)
    B = np.array([[2, 0], [-1, -1], [1, 0]], np.float32)
    got = per_text_cosine(A, B)
    assert got.shape == (3,) and got.dtype == np.float32
    assert np.allclose(got, [1.0, -1.0, 0.0], atol=1e-6)
    with pytest.raises(KeffError, match="A row 1 has zero norm"):
        per_text_cosine(np.array([[1.0, 0.0], [0.0, 0.0]]), B[:2])
    with pytest.raises(KeffError, match="equal shapes"):
        per_text_cosine(A, B[:2])


def test_report_input_errors(rng):
    X = rng.standard_normal((20, 4))
    m = identity_map(4, rng)
    with pytest.raises(KeffError, match="X_source has 20 rows but Y_target has 19"):
        alignment_report(m, X, X[:19])
    with pytest.raises(KeffError, match=r"k must be an integer in \[1, n - 1\] = \[1, 19\]"):
        alignment_report(m, X, X, k=20)
    with pytest.raises(KeffError, match="outputs 4-d vectors but Y_target is 5-d"):
        alignment_report(m, X, rng.standard_normal((20, 5)))

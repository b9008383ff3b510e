"""ContrastiveMap: identity start, trained for ranking, early-stopped on held-out groups."""

from __future__ import annotations

import numpy as np
import pytest

from keff.errors import KeffError
from keff.maps import ContrastiveMap, load_map


def unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def planted(n=600, d=16, seed=0):
    """Answers are questions seen through a fixed linear distortion plus noise: the right map
    ranks each question's answer first, the identity often does not."""
    rng = np.random.default_rng(seed)
    M = np.eye(d) + 1.5 * rng.standard_normal((d, d)) / np.sqrt(d)
    X = unit(rng.standard_normal((n, d)))
    Y = unit(X @ M + 0.1 * rng.standard_normal((n, d)))
    return X, Y


def top1(m, X, Y):
    Z = unit(m.transform(X)) if m is not None else X
    return float(np.mean(np.argmax(Z @ Y.T, axis=1) == np.arange(len(X))))


def test_learns_a_ranking_map_that_transfers():
    X, Y = planted()
    m = ContrastiveMap(epochs=30, patience=5, lr=1e-2, seed=0).fit(X[:500], Y[:500])
    Xt, Yt = X[500:], Y[500:]
    assert m.best_epoch_ > 0
    assert top1(None, Xt, Yt) < 0.7  # the identity ranks many answers wrong
    assert top1(m, Xt, Yt) > top1(None, Xt, Yt) + 0.3


def test_keeps_the_identity_when_training_does_not_help_held_out_groups():
    rng = np.random.default_rng(1)
    X = unit(rng.standard_normal((300, 8)))
    Y = unit(rng.standard_normal((300, 8)))  # answers unrelated to questions: nothing transfers
    m = ContrastiveMap(epochs=10, patience=2).fit(X, Y, groups=np.arange(300) // 3)
    if m.best_epoch_ == 0:
        assert np.array_equal(m.W_, np.eye(8, dtype=np.float32)) and not m.b_.any()
    assert m.history_[m.best_epoch_] == max(m.history_)


def test_round_trip_and_errors(tmp_path):
    X, Y = planted(n=200)
    m = ContrastiveMap(epochs=3).fit(X, Y)
    again, _ = load_map(m.save(tmp_path / "c.sef"))
    assert np.array_equal(again.transform(X), m.transform(X))
    with pytest.raises(KeffError, match="one dimension"):
        ContrastiveMap().fit(X, Y[:, :8])
    with pytest.raises(KeffError, match="groups must have one entry per pair"):
        ContrastiveMap().fit(X, Y, groups=np.zeros(3))


def test_procrustes_start_maps_between_two_spaces_of_different_width():
    rng = np.random.default_rng(3)
    X = unit(rng.standard_normal((500, 8)))
    Q = np.linalg.qr(rng.standard_normal((12, 8)))[0].T  # 8 -> 12, semi-orthogonal
    Y = unit(np.tanh(2 * X @ Q) + 0.05 * rng.standard_normal((500, 12)))  # a bent rotation: ranking can improve
    m = ContrastiveMap(init="procrustes", epochs=20, patience=4, lr=3e-3, seed=0).fit(X[:400], Y[:400])
    assert m.W_.shape == (8, 12) and m.transform(X).shape == (500, 12)
    from keff.maps import Procrustes

    p = Procrustes(center=True, scale=True).fit(X[:400], Y[:400])
    assert top1(m, X[400:], Y[400:]) >= top1(p, X[400:], Y[400:])
    assert m.history_[m.best_epoch_] == max(m.history_)
    with pytest.raises(KeffError, match="init"):
        ContrastiveMap(init="random").fit(X, Y)


def test_procrustes_start_is_kept_when_it_is_already_exact():
    rng = np.random.default_rng(4)
    X = unit(rng.standard_normal((300, 8)))
    R = np.linalg.qr(rng.standard_normal((8, 8)))[0]
    m = ContrastiveMap(init="procrustes", epochs=3, patience=1).fit(X, unit(X @ R))
    assert m.history_[0] == pytest.approx(1.0)  # epoch 0 already ranks every answer first
    np.testing.assert_allclose(unit(m.transform(X)), unit(X @ R), atol=1e-3)

"""keff.maps.affine: ridge through the SVD, GCV against a direct hat-matrix computation."""

from __future__ import annotations

import numpy as np
import pytest

from keff.errors import KeffError
from keff.maps import Affine
from keff.maps.affine import DEFAULT_ALPHAS, fit_ridge


def planted(rng, n, d_s, d_t, noise):
    W = rng.standard_normal((d_s, d_t)) / np.sqrt(d_s)
    b = rng.standard_normal(d_t)
    X = rng.standard_normal((n, d_s)) + rng.standard_normal(d_s)
    Y = X @ W + b + noise * rng.standard_normal((n, d_t))
    return X.astype(np.float32), Y.astype(np.float32), W, b


def test_recovers_a_known_affine_map(rng):
    X, Y, W, b = planted(rng, 400, 20, 12, 0.01)
    m = Affine().fit(X, Y)
    assert m.W_.shape == (20, 12) and m.b_.shape == (12,)
    assert np.linalg.norm(m.W_ - W) < 0.02
    assert np.allclose(m.b_, b, atol=0.01)
    Xt = rng.standard_normal((30, 20)).astype(np.float32)
    assert np.allclose(m.transform(Xt), Xt @ W + b, atol=0.02)


def test_float_alpha_matches_the_closed_form(rng):
    X, Y, _, _ = planted(rng, 50, 8, 5, 0.1)
    m = Affine(alpha=3.0).fit(X, Y)
    X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
    Xc, Yc = X64 - X64.mean(0), Y64 - Y64.mean(0)
    W = np.linalg.solve(Xc.T @ Xc + 3.0 * np.eye(8), Xc.T @ Yc)
    assert m.alpha_ == 3.0
    assert np.allclose(m.W_, W, atol=1e-5)
    assert np.allclose(m.b_, Y64.mean(0) - X64.mean(0) @ W, atol=1e-5)


def test_alpha_zero_is_least_squares(rng):
    X, Y, _, _ = planted(rng, 60, 6, 4, 0.1)
    m = Affine(alpha=0).fit(X, Y)
    Xa = np.hstack([X, np.ones((60, 1), np.float32)]).astype(np.float64)
    coef = np.linalg.lstsq(Xa, Y.astype(np.float64), rcond=None)[0]
    assert np.allclose(m.W_, coef[:6], atol=1e-4) and np.allclose(m.b_, coef[6], atol=1e-4)


def test_gcv_errors_match_a_direct_hat_matrix_computation(rng):
    X, Y, _, _ = planted(rng, 25, 10, 3, 0.3)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    sol = fit_ridge(Xc, Yc, None, DEFAULT_ALPHAS)
    n = 25
    for alpha, got in sol.gcv.items():
        Xc64 = Xc.astype(np.float64)
        H = np.full((n, n), 1.0 / n) + Xc64 @ np.linalg.solve(Xc64.T @ Xc64 + alpha * np.eye(10), Xc64.T)
        resid = Y - H @ Y
        want = n * (resid**2).sum() / (n - np.trace(H)) ** 2
        assert got == pytest.approx(want, rel=1e-4)
    assert sol.gcv[sol.alpha] == min(sol.gcv.values())


def test_gcv_prefers_less_shrinkage_for_clean_data_than_for_n_below_d(rng):
    clean = Affine().fit(*planted(rng, 500, 20, 10, 0.001)[:2])
    under = Affine().fit(*planted(rng, 30, 60, 10, 0.5)[:2])
    assert clean.alpha_ < under.alpha_


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"alpha": "fast"}, "alpha must be 'auto' or a finite number"),
        ({"alpha": -1.0}, "alpha must be 'auto' or a finite number"),
        ({"alpha": float("nan")}, "alpha must be 'auto' or a finite number"),
        ({"alphas": ()}, "alphas must be a non-empty"),
        ({"alphas": (1.0, 0.0)}, "positive finite"),
        ({"alphas": "abc"}, "alphas must be a sequence of numbers"),
    ],
)
def test_bad_alpha_settings_are_clear_errors(rng, kwargs, match):
    X = rng.standard_normal((10, 3))
    with pytest.raises(KeffError, match=match):
        Affine(**kwargs).fit(X, X)

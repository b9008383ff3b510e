"""keff.uncertainty.isotonic: PAVA against a brute-force reference, ties, weights, properties."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keff.errors import KeffError
from keff.uncertainty.isotonic import fit_isotonic, pava, predict_isotonic

values = st.lists(st.floats(-100, 100, allow_nan=False), min_size=1, max_size=60)


def brute_force_isotonic(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Best non-decreasing fit by trying every split into contiguous blocks (each block at its
    weighted mean), keeping the monotone candidates: exponential, for tiny inputs only."""
    n = len(y)
    best, best_loss = None, np.inf
    for cuts in itertools.product([False, True], repeat=n - 1):
        bounds = [0, *[i + 1 for i, c in enumerate(cuts) if c], n]
        fit = np.concatenate([np.full(b - a, np.average(y[a:b], weights=w[a:b])) for a, b in zip(bounds, bounds[1:])])
        if np.all(np.diff(fit) >= -1e-12):
            loss = float(np.sum(w * (y - fit) ** 2))
            if loss < best_loss:
                best, best_loss = fit, loss
    return best


@settings(max_examples=200, deadline=None, database=None)
@given(values, st.data())
def test_pava_is_monotone_and_keeps_the_weighted_mean(y, data):
    w = np.array(data.draw(st.lists(st.floats(0.01, 10), min_size=len(y), max_size=len(y))))
    up = pava(y, w)
    down = pava(y, w, increasing=False)
    assert up.shape == (len(y),) and up.dtype == np.float64
    assert np.all(np.diff(up) >= -1e-9 * (1 + np.abs(up[1:])))
    assert np.all(np.diff(down) <= 1e-9 * (1 + np.abs(down[1:])))
    # Every block sits at its weighted mean, so the weighted total is preserved.
    assert np.isclose(np.dot(w, up), np.dot(w, y), rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize("seed", range(40))
def test_pava_equals_brute_force_on_small_inputs(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 8))
    y = rng.integers(-3, 4, size=n).astype(float)  # small integers: many ties
    w = rng.choice([0.5, 1.0, 2.0, 5.0], size=n)
    assert np.allclose(pava(y, w), brute_force_isotonic(y, w))
    assert np.allclose(pava(y, w, increasing=False), -brute_force_isotonic(-y, w))


def test_pava_known_cases():
    assert pava([1.0, 2.0, 3.0]).tolist() == [1.0, 2.0, 3.0]  # already monotone: unchanged
    assert pava([3.0, 2.0, 1.0]).tolist() == [2.0, 2.0, 2.0]
    assert pava([1.0, 0.0], [3.0, 1.0]).tolist() == [0.75, 0.75]  # weighted pooling
    assert pava([2.0, 2.0, 1.0, 5.0]).tolist() == pytest.approx([5 / 3, 5 / 3, 5 / 3, 5.0])


def test_pava_rejects_bad_input():
    with pytest.raises(KeffError, match="weights must be > 0"):
        pava([1.0, 2.0], [1.0, 0.0])
    with pytest.raises(KeffError, match="finite"):
        pava([1.0, np.nan])
    with pytest.raises(KeffError, match="paired"):
        pava([1.0, 2.0], [1.0])


def test_fit_isotonic_pools_tied_x_and_sorts():
    # x = 0 twice (y 0 and 1 -> 0.5, weight 2), then x = 1 (y 0.2): a violation, pooled to 0.4.
    kx, ky = fit_isotonic([1.0, 0.0, 0.0], [0.2, 0.0, 1.0])
    assert kx.tolist() == [0.0, 1.0]
    assert ky.tolist() == pytest.approx([0.4, 0.4])
    kx, ky = fit_isotonic([2.0, 0.0, 1.0], [1.0, 0.0, 0.5], w=[1.0, 1.0, 1.0])
    assert kx.tolist() == [0.0, 1.0, 2.0] and ky.tolist() == [0.0, 0.5, 1.0]
    with pytest.raises(KeffError, match="at least one point"):
        fit_isotonic([], [])


def test_predict_interpolates_and_clamps():
    kx, ky = np.array([0.0, 1.0, 2.0]), np.array([0.1, 0.3, 0.9])
    out = predict_isotonic(kx, ky, [-5.0, 0.0, 0.5, 1.5, 2.0, 9.0])
    assert out.tolist() == pytest.approx([0.1, 0.1, 0.2, 0.6, 0.9, 0.9])


def test_matches_scipy_isotonic_regression(rng):
    from scipy.optimize import isotonic_regression

    y, w = rng.standard_normal(500), rng.uniform(0.1, 3.0, 500)
    assert np.allclose(pava(y, w), isotonic_regression(y, weights=w).x)
    assert np.allclose(pava(y, w, increasing=False), isotonic_regression(y, weights=w, increasing=False).x)

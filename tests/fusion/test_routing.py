"""keff.fusion.routing: skipping specialists, masked Kalman fusion, threshold tuning."""

from __future__ import annotations

import numpy as np
import pytest

from keff.errors import KeffError
from keff.fusion.routing import compute_saved, masked_kalman_fuse, select_specialists, tune_threshold
from keff.fusion.vector import kalman_fuse


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


@pytest.mark.parametrize("min_keep", [1, 2, 3])
def test_mask_keeps_at_least_min_keep_most_similar(rng, min_keep):
    sims = rng.uniform(-1, 1, size=(200, 4)).astype(np.float32)
    mask = select_specialists(sims, 0.9, min_keep=min_keep)
    assert mask.dtype == np.bool_ and mask.shape == (200, 4)
    assert (mask.sum(axis=1) >= min_keep).all()
    top = np.argsort(-sims, axis=1)[:, :min_keep]
    assert np.take_along_axis(mask, top, axis=1).all()
    # everything kept is either above the threshold or among the top min_keep
    in_top = np.zeros_like(mask)
    np.put_along_axis(in_top, top, True, axis=1)
    assert np.array_equal(mask, (sims >= 0.9) | in_top)


def test_threshold_minus_inf_keeps_everyone_and_ties_keep_lowest_index(rng):
    sims = rng.uniform(-1, 1, size=(10, 3))
    assert select_specialists(sims, -np.inf).all()
    mask = select_specialists(np.array([[0.2, 0.5, 0.5]]), 0.9)
    assert mask.tolist() == [[False, True, False]]
    with pytest.raises(KeffError, match=r"min_keep must be an integer in \[1, 3\]"):
        select_specialists(sims, 0.0, min_keep=4)
    with pytest.raises(KeffError, match="threshold must be a number"):
        select_specialists(sims, float("nan"))


def test_compute_saved():
    assert compute_saved(np.array([[True, False], [False, False]])) == pytest.approx(0.75)
    assert compute_saved(np.ones((3, 4), dtype=bool)) == 0.0
    with pytest.raises(KeffError, match="boolean"):
        compute_saved(np.ones((3, 4)))


def test_masked_kalman_fuse_ignores_unselected_specialists(rng):
    S, n, d = 4, 30, 8
    Z = rng.standard_normal((S, n, d)).astype(np.float32)
    Z /= np.linalg.norm(Z, axis=2, keepdims=True)
    var = np.exp(rng.normal(size=(S, n)))
    mask = select_specialists(rng.uniform(size=(n, S)), 0.6)
    garbage = Z.copy()
    garbage[~mask.T] = 0.0  # skipped specialists were never encoded
    unknown = np.where(mask.T, var, np.nan)  # nor given a variance
    out = masked_kalman_fuse(garbage, unknown, mask)
    for q in range(n):
        keep = mask[q]
        np.testing.assert_allclose(out[q], kalman_fuse(Z[keep, q : q + 1], var[keep, q : q + 1])[0], atol=1e-6)
    np.testing.assert_allclose(masked_kalman_fuse(Z, var, np.ones((n, S), bool)), kalman_fuse(Z, var), atol=1e-7)
    per_dim = np.broadcast_to(var[:, :, None], (S, n, d))
    np.testing.assert_allclose(masked_kalman_fuse(garbage, per_dim, mask), out, atol=1e-6)


def test_masked_kalman_fuse_rejects_empty_rows_and_wrong_shape(rng):
    Z = np.ones((2, 3, 4), dtype=np.float32)
    mask = np.ones((3, 2), dtype=bool)
    mask[1] = False
    with pytest.raises(KeffError, match="no specialist for query row 1"):
        masked_kalman_fuse(Z, np.ones((2, 3)), mask)
    with pytest.raises(KeffError, match=r"shape \(n, S\) = \(3, 2\)"):
        masked_kalman_fuse(Z, np.ones((2, 3)), np.ones((2, 3), dtype=bool))
    var = np.ones((2, 3))
    var[0, 2] = -1.0  # selected and invalid
    with pytest.raises(KeffError, match="specialist 0, query row 2"):
        masked_kalman_fuse(Z, var, np.ones((3, 2), dtype=bool))


def _needed_kept(sims: np.ndarray, cutoff: float):
    """Objective: mean share of the truly needed specialists (sims >= cutoff) that a mask keeps
    (a query that needs none scores 1)."""
    needed = sims >= cutoff
    n_needed = needed.sum(axis=1)

    def objective(mask: np.ndarray) -> float:
        kept = (mask & needed).sum(axis=1)
        return float(np.where(n_needed > 0, kept / np.maximum(n_needed, 1), 1.0).mean())

    return objective


def test_tune_threshold_picks_largest_saving_within_tolerance(rng):
    sims = rng.uniform(0, 1, size=(300, 5))
    objective = _needed_kept(sims, 0.5)
    candidates = [0.1, 0.3, 0.5, 0.7, 0.9]
    t, table = tune_threshold(sims, objective, candidates=candidates, tolerance=0.0)
    assert t == 0.5
    assert table["baseline_objective"] == 1.0
    rows = table["evaluated"]
    assert [r["threshold"] for r in rows] == [-np.inf, *candidates]
    assert rows[0]["saved"] == 0.0
    assert all(a["saved"] <= b["saved"] for a, b in zip(rows, rows[1:]))
    # a generous tolerance buys more saving: the best row within 0.3 of the baseline
    t_loose, table = tune_threshold(sims, objective, candidates=candidates, tolerance=0.3)
    ok = [r for r in table["evaluated"] if r["objective"] >= 1.0 - 0.3]
    assert t_loose == max(ok, key=lambda r: r["saved"])["threshold"] and t_loose > 0.5


def test_tune_threshold_defaults_and_no_saving_case(rng):
    sims = rng.uniform(0, 1, size=(50, 3))
    t, table = tune_threshold(sims, lambda mask: float(mask.sum()), tolerance=0.0)  # every skip hurts
    assert t == -np.inf
    assert len(table["evaluated"]) == 1 + 21
    with pytest.raises(KeffError, match="objective returned nan for threshold -inf"):
        tune_threshold(sims, lambda mask: float("nan"))

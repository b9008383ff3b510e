"""keff.uncertainty.knn: local density from the k nearest reference rows."""

from __future__ import annotations

import numpy as np
import pytest

from keff.errors import KeffError
from keff.index import ExactIndex
from keff.uncertainty import KnnDensity, variance_spread
from keff.uncertainty.knn import leave_one_out_knn_distance

from .conftest import unit


def brute_loo(R: np.ndarray, k: int) -> np.ndarray:
    sims = R.astype(np.float64) @ R.T.astype(np.float64)
    np.fill_diagonal(sims, -np.inf)
    return 1.0 - np.sort(sims, axis=1)[:, ::-1][:, :k].mean(axis=1)


def test_leave_one_out_excludes_self(rng):
    R = unit(rng.standard_normal((60, 8)))
    loo = leave_one_out_knn_distance(ExactIndex(R), R, 3)
    assert np.allclose(loo, brute_loo(R, 3), atol=1e-6)
    assert np.all(loo > 0.01)  # with self included, the nearest distance would be 0


def test_leave_one_out_keeps_exact_duplicates_at_distance_zero(rng):
    R = unit(rng.standard_normal((10, 8)))
    R = np.vstack([R, R[:1], R[:1]])  # rows 0, 10 and 11 are the same vector
    loo = leave_one_out_knn_distance(ExactIndex(R), R, 2)
    assert np.allclose(loo[[0, 10, 11]], 0.0, atol=1e-6)
    assert np.allclose(loo, brute_loo(R, 2), atol=1e-6)


def test_fitted_statistics_are_leave_one_out(axes, cluster):
    a, _ = axes
    V = cluster(a, 200, 0.6)
    est = KnnDensity(k=1).fit(V)
    loo = brute_loo(V, 1)
    assert est.median_ == pytest.approx(np.median(loo), abs=1e-6)
    assert est.median_ > 0.0


def test_dense_region_gets_lower_variance_than_sparse(axes, cluster, rng):
    a, b = axes
    dense = cluster(a, 400, 0.3)
    sparse = cluster(b, 40, 2.0)
    est = KnnDensity(k=5).fit(np.vstack([dense, sparse]))
    var_dense = est.variance(cluster(a, 50, 0.3))
    var_sparse = est.variance(cluster(b, 50, 2.0))
    assert var_dense.max() < np.median(var_sparse)
    assert np.median(var_dense) * 100 < np.median(var_sparse)
    far = est.variance(unit(rng.standard_normal((50, a.shape[0]))))
    assert variance_spread(np.concatenate([var_dense, far]))["ratio_p95_p5"] > 100


def test_max_reference_subsample_is_seeded(axes, cluster):
    a, _ = axes
    V = cluster(a, 300, 0.5)
    one = KnnDensity(k=3, max_reference=50, seed=1).fit(V)
    again = KnnDensity(k=3, max_reference=50, seed=1).fit(V)
    other = KnnDensity(k=3, max_reference=50, seed=2).fit(V)
    assert one.reference_.shape == (50, V.shape[1])
    assert np.array_equal(one.reference_, again.reference_)
    assert not np.array_equal(one.reference_, other.reference_)
    # Every kept row is one of V's rows (already unit-norm here).
    assert np.abs(one.reference_ @ V.T).max(axis=1).min() > 1 - 1e-5


def test_too_few_reference_rows(axes, cluster):
    a, _ = axes
    with pytest.raises(KeffError, match=r"at least k \+ 1 = 11 reference rows"):
        KnnDensity(k=10).fit(cluster(a, 10, 0.5))
    with pytest.raises(KeffError, match="max_reference=5"):
        KnnDensity(k=10, max_reference=5).fit(cluster(a, 100, 0.5))
    with pytest.raises(KeffError, match="k must be an integer"):
        KnnDensity(k=2.5).fit(cluster(a, 100, 0.5))


@pytest.mark.slow
def test_real_scifact_claims_vs_skills_questions(minilm_slices):
    est = KnnDensity(k=10).fit(minilm_slices["scifact_docs"])
    own = est.variance(minilm_slices["scifact_queries"])
    other = est.variance(minilm_slices["skills_questions"])
    assert np.median(own) * 100 < np.median(other)

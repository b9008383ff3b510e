"""keff.maps.kmeans: seeded spherical k-means, k-means++ seeding, effective rank and K rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from keff.arrays import l2_normalize
from keff.errors import KeffError
from keff.maps.kmeans import (
    effective_rank,
    kmeans_plus_plus,
    resolve_n_clusters,
    spherical_kmeans,
)


def planted_blobs(rng, k=5, per=30, d=16, noise=0.05):
    """``k`` tight groups of unit rows around orthonormal directions; returns rows and truth."""
    centres = np.linalg.qr(rng.standard_normal((d, k)))[0].T
    truth = np.repeat(np.arange(k), per)
    Y = centres[truth] + noise * rng.standard_normal((k * per, d))
    order = rng.permutation(k * per)
    return Y[order].astype(np.float32), truth[order], centres


def test_recovers_well_separated_planted_clusters(rng):
    Y, truth, centres = planted_blobs(rng)
    res = spherical_kmeans(Y, 5, seed=0)
    # Same partition up to a relabelling: each true group maps to exactly one label.
    pairs = set(zip(truth.tolist(), res.labels.tolist()))
    assert len(pairs) == 5 and len({a for a, _ in pairs}) == 5 and len({b for _, b in pairs}) == 5
    assert res.converged and res.objective > 0.95
    assert res.centroids.dtype == np.float32 and res.labels.dtype == np.int64
    assert np.allclose(np.linalg.norm(res.centroids, axis=1), 1.0, atol=1e-5)
    # Every centroid sits on its group's direction.
    for t, label in pairs:
        assert float(res.centroids[label] @ centres[t]) > 0.99


def test_deterministic_per_seed(rng):
    Y = rng.standard_normal((200, 8)).astype(np.float32)  # no structure: the seed decides
    a, b = spherical_kmeans(Y, 6, seed=3), spherical_kmeans(Y, 6, seed=3)
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.centroids, b.centroids)
    seeds_a = kmeans_plus_plus(l2_normalize(Y, zero_rows="error"), 6, np.random.default_rng(0))
    seeds_b = kmeans_plus_plus(l2_normalize(Y, zero_rows="error"), 6, np.random.default_rng(1))
    assert not np.array_equal(seeds_a, seeds_b)


def test_kmeans_plus_plus_spreads_seeds_and_handles_duplicates(rng):
    Y, truth, _ = planted_blobs(rng, k=4, per=25)
    chosen = kmeans_plus_plus(Y, 4, np.random.default_rng(0))
    assert sorted(truth[chosen].tolist()) == [0, 1, 2, 3]  # one seed per far-apart group
    # Only 2 distinct rows but k=3: seeds are still 3 distinct row numbers.
    dup = np.repeat(np.eye(2, 5, dtype=np.float32), 3, axis=0)
    chosen = kmeans_plus_plus(dup, 3, np.random.default_rng(0))
    assert len(set(chosen.tolist())) == 3


def test_no_cluster_is_left_empty_when_rows_allow(rng):
    # 3 distinct directions, 4 copies each, K=3: every cluster keeps members.
    Y = np.repeat(np.linalg.qr(rng.standard_normal((6, 3)))[0].T, 4, axis=0).astype(np.float32)
    res = spherical_kmeans(Y, 3, seed=0)
    assert np.bincount(res.labels, minlength=3).tolist() == [4, 4, 4]


@pytest.mark.parametrize(
    "s,expected",
    [([4.0, 2.0, 1.0, 1.0], math.floor(64 / 22)), ([1.0] * 7, 7), ([10.0, 0.1, 0.1], 1), ([3.0, 3.0, 3.0, 1.0], 3)],
)
def test_effective_rank_of_known_singular_values(rng, orthonormal, s, expected):
    n, d = 40, 12
    U, V = orthonormal(n, len(s)), orthonormal(d, len(s))
    Y = (U * np.asarray(s)) @ V.T
    assert effective_rank(Y) == expected


def test_effective_rank_uses_y_uncentred(rng):
    # A constant offset shared by all rows dominates the uncentred spectrum.
    Y = 10.0 + 0.01 * rng.standard_normal((50, 8))
    assert effective_rank(Y) == 1
    assert effective_rank(Y - Y.mean(axis=0)) > 4


def test_resolve_n_clusters_rules_and_clamp(rng):
    Y = rng.standard_normal((50, 8)).astype(np.float32)
    assert resolve_n_clusters("sqrt", Y) == 7
    assert resolve_n_clusters("effective_rank", Y) == effective_rank(Y)
    assert resolve_n_clusters(3, Y) == 3
    assert resolve_n_clusters(40, Y) == 25  # clamped to n // 2
    assert resolve_n_clusters(np.int64(2), Y[:3]) == 1
    for bad in (0, -1, True, 2.5, "bogus", None):
        with pytest.raises(KeffError, match="n_clusters"):
            resolve_n_clusters(bad, Y)


def test_input_errors_name_the_problem(rng):
    Y = rng.standard_normal((10, 4)).astype(np.float32)
    Y[6] = 0.0
    with pytest.raises(KeffError, match="row 6 has zero norm"):
        spherical_kmeans(Y, 2)
    with pytest.raises(KeffError, match=r"n_clusters must be an integer in \[1, 3\]"):
        spherical_kmeans(Y[:3], 4)
    with pytest.raises(KeffError, match="max_iter"):
        spherical_kmeans(Y[:5], 2, max_iter=0)
    with pytest.raises(KeffError, match="all-zero"):
        effective_rank(np.zeros((3, 3)))

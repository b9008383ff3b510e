"""keff.maps.low_rank: planted low-rank corrections, the factored transform, base modes, capping."""

from __future__ import annotations

import numpy as np
import pytest

from keff.errors import KeffError
from keff.maps import LowRankAffine, Procrustes


def planted_low_rank(rng, n, d_s, d_t, rank, *, base=None, noise=0.01):
    """Y = X @ (base + A0 @ C0) + b + noise; returns X, Y and the dense truth W, b."""
    A0 = rng.standard_normal((d_s, rank)) / np.sqrt(d_s)
    C0 = rng.standard_normal((rank, d_t))
    W = (np.zeros((d_s, d_t)) if base is None else base) + A0 @ C0
    b = rng.standard_normal(d_t)
    X = rng.standard_normal((n, d_s))
    Y = X @ W + b + noise * rng.standard_normal((n, d_t))
    return X.astype(np.float32), Y.astype(np.float32), W, b


def dense(m: LowRankAffine) -> np.ndarray:
    """The dense W the factored map stands for (only for testing)."""
    d_s, d_t = m.source_dim_, m.target_dim_
    B = {"identity": np.eye(d_s, d_t), "none": np.zeros((d_s, d_t)), "procrustes": m.B_}[m.base_]
    return B + m.A_.astype(np.float64) @ m.C_


def test_recovers_identity_plus_rank_four(rng):
    X, Y, W, b = planted_low_rank(rng, 500, 32, 32, 4, base=np.eye(32))
    m = LowRankAffine(rank=4).fit(X, Y)
    assert m.base_ == "identity" and m.rank_ == 4 and m.B_ is None
    assert m.A_.shape == (32, 4) and m.C_.shape == (4, 32)
    assert np.allclose(m.C_ @ m.C_.T, np.eye(4), atol=1e-5)
    assert np.linalg.norm(dense(m) - W) / np.linalg.norm(W) < 0.01
    assert np.allclose(m.b_, b, atol=0.01)
    # Rank 2 cannot hold a rank-4 residual: the fit must be visibly worse.
    worse = LowRankAffine(rank=2).fit(X, Y)
    assert np.linalg.norm(worse.transform(X) - Y) > 5 * np.linalg.norm(m.transform(X) - Y)


@pytest.mark.parametrize("base,d_s,d_t", [("identity", 24, 24), ("none", 16, 24), ("procrustes", 24, 16)])
def test_transform_equals_the_dense_product(rng, base, d_s, d_t):
    X, Y, _, _ = planted_low_rank(rng, 200, d_s, d_t, 3)
    m = LowRankAffine(rank=3, base=base).fit(X, Y)
    Xt = rng.standard_normal((40, d_s)).astype(np.float32)
    assert np.allclose(m.transform(Xt), Xt @ dense(m) + m.b_, atol=1e-4)


def test_base_none_recovers_pure_reduced_rank_regression(rng):
    X, Y, W, b = planted_low_rank(rng, 400, 16, 24, 3)
    m = LowRankAffine(rank=3).fit(X, Y)
    assert m.base_ == "none"
    assert np.linalg.norm(dense(m) - W) / np.linalg.norm(W) < 0.01
    assert np.allclose(m.b_, b, atol=0.01)


def test_base_procrustes_beats_procrustes_alone_and_identity_base(rng, orthonormal):
    Q = orthonormal(24, 24)
    X, Y, _, _ = planted_low_rank(rng, 400, 24, 24, 2, base=Q)
    m = LowRankAffine(rank=2, base="procrustes").fit(X, Y)
    assert m.base_ == "procrustes" and m.B_.shape == (24, 24)
    err = lambda est: np.linalg.norm(est.transform(X) - Y) / np.linalg.norm(Y)  # noqa: E731
    # The base absorbs part of the planted correction, so the truth is not recovered exactly,
    # but a rank-2 correction on top of it clearly beats the rotation alone and the identity base.
    assert err(m) < 0.5 * err(Procrustes(scale=True).fit(X, Y))
    assert err(m) < 0.5 * err(LowRankAffine(rank=2, base="identity").fit(X, Y))


def test_rank_is_capped_and_recorded(rng):
    X, Y = rng.standard_normal((50, 8)), rng.standard_normal((50, 6))
    assert LowRankAffine(rank=100).fit(X, Y).rank_ == 6
    X, Y = rng.standard_normal((5, 10)), rng.standard_normal((5, 10))
    m = LowRankAffine(rank=100).fit(X, Y)
    assert m.rank_ == 4 and m.A_.shape == (10, 4) and m.C_.shape == (4, 10)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"rank": 0}, "rank must be an integer >= 1"),
        ({"rank": 2.5}, "rank must be an integer >= 1"),
        ({"base": "diagonal"}, "base must be one of"),
        ({"base": "identity"}, "base='identity' needs equal dimensions; got source 6-d and target 4-d"),
        ({"alpha": -2}, "alpha must be"),
    ],
)
def test_bad_settings_are_clear_errors(rng, kwargs, match):
    X, Y = rng.standard_normal((20, 6)), rng.standard_normal((20, 4))
    with pytest.raises(KeffError, match=match):
        LowRankAffine(**kwargs).fit(X, Y)

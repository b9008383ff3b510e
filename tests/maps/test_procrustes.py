"""keff.maps.procrustes: known rotations, reflections, shifts and scales are recovered."""

from __future__ import annotations

import numpy as np
import pytest

from keff.errors import KeffError
from keff.maps import Procrustes, alignment_report

N, D, NOISE = 500, 32, 0.01


def noisy_pair(rng, Q, *, scale=1.0, shift=None, n=N):
    X = rng.standard_normal((n, Q.shape[0])).astype(np.float32)
    Y = scale * X @ Q + NOISE * rng.standard_normal((n, Q.shape[1]))
    if shift is not None:
        Y = Y + shift
    return X, Y.astype(np.float32)


@pytest.mark.parametrize("det", [1, -1])
def test_recovers_a_known_rotation_or_reflection(rng, orthonormal, det):
    Q = orthonormal(D, D, det=det)
    X, Y = noisy_pair(rng, Q)
    m = Procrustes(center=False).fit(X, Y)
    assert np.linalg.norm(m.W_ - Q) < 0.02
    assert np.sign(np.linalg.det(m.W_)) == det
    # Orientation: rows go through X @ W; applying the transpose would be far off.
    Xt = rng.standard_normal((50, D)).astype(np.float32)
    assert np.allclose(m.transform(Xt), Xt @ Q, atol=0.02)
    assert not np.allclose(Xt @ m.W_.T, Xt @ Q, atol=0.5)
    assert m.scale_ == 1.0 and np.array_equal(m.b_, np.zeros(D, np.float32))


def test_rotation_only_keeps_det_plus_one_when_the_truth_is_a_reflection(rng, orthonormal):
    Q = orthonormal(D, D, det=-1)
    X, Y = noisy_pair(rng, Q)
    rot = Procrustes(allow_reflection=False).fit(X, Y)
    assert np.linalg.det(rot.W_.astype(np.float64)) == pytest.approx(1.0, abs=1e-4)
    assert np.allclose(rot.W_.T @ rot.W_, np.eye(D), atol=1e-5)
    free = Procrustes().fit(X, Y)
    err = lambda m: np.linalg.norm(m.transform(X) - Y)  # noqa: E731
    assert err(rot) > 2 * err(free)


def test_rotation_only_matches_free_fit_when_the_truth_is_a_rotation(rng, orthonormal):
    Q = orthonormal(D, D, det=1)
    X, Y = noisy_pair(rng, Q)
    assert np.allclose(Procrustes(allow_reflection=False).fit(X, Y).W_, Procrustes().fit(X, Y).W_, atol=1e-6)


def test_recovers_translation_and_scale(rng, orthonormal):
    Q = orthonormal(D, D)
    t = rng.standard_normal(D).astype(np.float32) * 3
    X, Y = noisy_pair(rng, Q, scale=2.5, shift=t)
    u = rng.standard_normal(D).astype(np.float32)  # the source is off-centre too
    X, Y = X + u, Y + 2.5 * u @ Q
    m = Procrustes(center=True, scale=True).fit(X, Y)
    assert m.scale_ == pytest.approx(2.5, rel=1e-3)
    assert np.linalg.norm(m.W_ - Q) < 0.02
    Xt = rng.standard_normal((50, D)).astype(np.float32)
    assert np.allclose(m.transform(Xt), 2.5 * Xt @ Q + t, atol=0.05)
    # Without centring or scaling the same data fit clearly worse.
    plain = Procrustes(center=False, scale=False).fit(X, Y)
    assert np.linalg.norm(plain.transform(X) - Y) > 10 * np.linalg.norm(m.transform(X) - Y)


@pytest.mark.parametrize("d_s,d_t", [(16, 32), (32, 16)])
def test_different_dims_give_a_semi_orthogonal_map(rng, orthonormal, d_s, d_t):
    Q = orthonormal(d_s, d_t)
    X, Y = noisy_pair(rng, Q, n=300)
    m = Procrustes().fit(X, Y)
    assert m.W_.shape == (d_s, d_t)
    k = min(d_s, d_t)
    gram = m.W_ @ m.W_.T if d_s < d_t else m.W_.T @ m.W_
    assert np.allclose(gram, np.eye(k), atol=1e-5)
    assert m.transform(X).shape == (300, d_t)
    # 16 -> 32 is exact up to noise. 32 -> 16 drops dimensions: U Vt maximises trace(W^T X^T Y),
    # which is the least-squares answer only for isotropic X, so it is close but not exact.
    rel = np.linalg.norm(m.transform(X) - X @ Q) / np.linalg.norm(X @ Q)
    random_rel = np.linalg.norm(X @ orthonormal(d_s, d_t) - X @ Q) / np.linalg.norm(X @ Q)
    assert rel < (0.05 if d_s < d_t else 0.35) and random_rel > 1.0


def test_rotation_only_refuses_different_dims(rng):
    X, Y = rng.standard_normal((20, 4)), rng.standard_normal((20, 6))
    with pytest.raises(KeffError, match="source 4-d and target 6-d"):
        Procrustes(allow_reflection=False).fit(X, Y)


def test_flags_are_validated_in_fit(rng):
    m = Procrustes(center="yes")
    X = rng.standard_normal((10, 3))
    with pytest.raises(KeffError, match="center must be True or False"):
        m.fit(X, X)


def test_scale_on_constant_rows_is_a_clear_error():
    X = np.ones((5, 3), np.float32)
    with pytest.raises(KeffError, match="every row of X is the same"):
        Procrustes(scale=True).fit(X, X)


def test_real_scifact_minilm_to_mpnet(shared_data, rng):
    root = shared_data / "embeddings" / "scifact"
    X = np.load(root / "minilm" / "corpus.npy", mmap_mode="r")[:1500]
    Y = np.load(root / "mpnet" / "corpus.npy", mmap_mode="r")[:1500]
    m = Procrustes().fit(X[:1000], Y[:1000])
    report = alignment_report(m, X[1000:], Y[1000:], k=10)
    random_map = Procrustes().fit(rng.standard_normal((1000, 384)), rng.standard_normal((1000, 768)))
    random_cos = alignment_report(random_map, X[1000:], Y[1000:]).cosine_after
    print(f"SciFact minilm->mpnet Procrustes, held-out 500: {report}; random semi-orthogonal: {random_cos:.3f}")
    assert report.cosine_before is None
    assert report.cosine_after > 0.6 and report.cosine_after > random_cos + 0.4
    assert report.top1_accuracy > 0.5

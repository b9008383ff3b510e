"""The map contract across every linear map: save/load, unfitted use, input validation."""

from __future__ import annotations

import numpy as np
import pytest

from keff.errors import FormatError, KeffError, NotFittedError
from keff.maps import MAP_TYPES, Affine, LowRankAffine, Procrustes, load_map
from keff.sef import load_sef, save_sef

CASES = [
    (Procrustes(), 12, 12),
    (Procrustes(center=False, scale=True, allow_reflection=False), 12, 12),
    (Procrustes(scale=True), 12, 20),
    (Affine(), 12, 8),
    (Affine(alpha=0.25, alphas=(0.1, 1.0)), 12, 12),
    (LowRankAffine(rank=3), 12, 12),
    (LowRankAffine(rank=3, base="none"), 12, 8),
    (LowRankAffine(rank=3, base="procrustes", alpha=1.0), 12, 8),
]
IDS = [repr(m) for m, _, _ in CASES]


@pytest.mark.parametrize("est,d_s,d_t", CASES, ids=IDS)
def test_save_load_gives_identical_outputs(est, d_s, d_t, rng, tmp_path):
    X, Y = rng.standard_normal((80, d_s)), rng.standard_normal((80, d_t))
    est.fit(X, Y)
    path = est.save(tmp_path / "m.sef", meta={"anchors": "test"})
    loaded, meta = load_map(path)
    assert type(loaded) is type(est) and meta["provenance"] == {"anchors": "test"}
    assert loaded.get_params() == est.get_params()
    assert loaded.describe() == est.describe()  # includes fitted scalars (alpha_, scale_)
    Xt = rng.standard_normal((25, d_s)).astype(np.float32)
    out = est.transform(Xt)
    assert out.dtype == np.float32 and out.shape == (25, d_t)
    assert np.array_equal(loaded.transform(Xt), out)
    for name, arr in est.get_state().items():
        assert arr.dtype == np.float32, name


def test_every_linear_map_is_registered():
    assert {"Procrustes", "Affine", "LowRankAffine", "MapChain"} <= set(MAP_TYPES)


def test_identity_low_rank_stores_no_base_matrix(rng, tmp_path):
    X = rng.standard_normal((40, 6))
    path = LowRankAffine(rank=2).fit(X, X).save(tmp_path / "m.sef")
    arrays, _ = load_sef(path)
    assert set(arrays) == {"A_", "C_", "b_"}


def test_load_map_refuses_other_kinds_unknown_types_and_missing_state(tmp_path):
    W = {"W_": np.eye(3, dtype=np.float32), "b_": np.zeros(3, np.float32)}
    base = {"kind": "map", "params": {}, "source_dim": 3, "target_dim": 3, "fitted": {"scale_": 1.0}}
    other = save_sef(tmp_path / "spec.sef", W, {**base, "kind": "specialist", "type": "Procrustes"})
    with pytest.raises(FormatError, match="expected a 'map'"):
        load_map(other)
    unknown = save_sef(tmp_path / "unknown.sef", W, {**base, "type": "Teleporter"})
    with pytest.raises(FormatError, match="unknown map type 'Teleporter'"):
        load_map(unknown)
    lacking = save_sef(tmp_path / "lacking.sef", {"W_": W["W_"]}, {**base, "type": "Procrustes"})
    with pytest.raises(FormatError, match=r"lacks arrays \['b_'\]"):
        load_map(lacking)
    no_scalars = save_sef(tmp_path / "noscal.sef", W, {**base, "type": "Procrustes", "fitted": {}})
    with pytest.raises(FormatError, match=r"lacks fitted values \['scale_'\]"):
        load_map(no_scalars)
    factors = {"A_": np.ones((3, 1), np.float32), "C_": np.ones((1, 3), np.float32), "b_": W["b_"]}
    no_base = save_sef(
        tmp_path / "nobase.sef",
        factors,
        {**base, "type": "LowRankAffine", "params": {"base": "procrustes"}, "fitted": {"alpha_": 1.0}},
    )
    with pytest.raises(FormatError, match=r"cannot rebuild LowRankAffine: .*lacks arrays \['B_'\]"):
        load_map(no_base)


@pytest.mark.parametrize("cls", [Procrustes, Affine, LowRankAffine])
def test_unfitted_use_is_refused(cls, rng, tmp_path):
    est = cls()
    with pytest.raises(NotFittedError, match=f"this {cls.__name__} is not fitted yet"):
        est.transform(rng.standard_normal((3, 4)))
    with pytest.raises(NotFittedError):
        est.save(tmp_path / "m.sef")
    assert not (tmp_path / "m.sef").exists()


@pytest.mark.parametrize("cls", [Procrustes, Affine, LowRankAffine])
def test_bad_inputs_give_clear_errors(cls, rng):
    X, Y = rng.standard_normal((30, 5)), rng.standard_normal((30, 5))
    with pytest.raises(KeffError, match="X has 30 rows but Y has 29"):
        cls().fit(X, Y[:29])
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(KeffError, match="X must be finite; row 3 holds NaN"):
        cls().fit(bad, Y)
    with pytest.raises(KeffError, match=r"must be 2-D \(n, d\); got a 1-D array of shape \(5,\)"):
        cls().fit(X[0], Y[0])
    est = cls().fit(X, Y)
    with pytest.raises(KeffError, match=f"{cls.__name__} was fitted on 5-d input; got 7-d"):
        est.transform(rng.standard_normal((2, 7)))
    with pytest.raises(KeffError, match="NaN"):
        est.transform(bad)

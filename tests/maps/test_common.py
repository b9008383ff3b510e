"""Checks every registered map passes, parametrised from the registry (as scikit-learn's
``parametrize_with_checks``): a map added to ``keff.maps.MAPS`` is checked without a new test."""

from __future__ import annotations

import numpy as np
import pytest

from keff.errors import KeffError, NotFittedError
from keff.maps import MAP_TYPES, MAPS, Map, load_map, make_map, map_params

# Small, fast settings where a map's defaults train for long or need many rows.
FAST = {
    "mlp": {"hidden": 16, "epochs": 3, "seed": 0},
    "contrastive": {"epochs": 2, "seed": 0},
    "cluster-routed": {"n_clusters": 2, "seed": 0},
    "lowrank": {"rank": 4},
}
FITTABLE = sorted(k for k in MAPS if k != "chain")  # a chain is built from fitted maps


def needs(kind: str) -> None:
    if kind == "mlp":
        pytest.importorskip("torch", reason="the residual MLP trains with torch (keff[st])")
    if kind == "contrastive":
        pytest.importorskip("torch", reason="the contrastive map trains with torch (keff[st])")


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 8)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Q, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    Y = (X @ Q).astype(np.float32)
    return X, Y


def test_registry_is_consistent():
    assert {"procrustes", "affine", "lowrank", "mlp", "cluster-routed", "contrastive", "chain"} <= set(MAPS)
    for kind, cls in MAPS.items():
        assert issubclass(cls, Map) and cls.registered_as == kind and MAP_TYPES[cls.__name__] is cls


@pytest.mark.parametrize("kind", FITTABLE)
def test_init_stores_parameters_only(kind):
    est = make_map(kind, **FAST.get(kind, {}))
    assert not est.is_fitted
    assert set(est.get_params()) == set(map_params(kind))
    with pytest.raises(NotFittedError):
        est.transform(np.zeros((2, 8), dtype=np.float32))


@pytest.mark.parametrize("kind", FITTABLE)
def test_fit_transform_save_load_round_trip(kind, pair, tmp_path):
    needs(kind)
    X, Y = pair
    est = make_map(kind, **FAST.get(kind, {}))
    assert est.fit(X, Y) is est
    out = est.transform(X[:7])
    assert out.shape == (7, 8) and out.dtype == np.float32 and np.isfinite(out).all()
    again, meta = load_map(est.save(tmp_path / f"{kind}.sef"))
    assert type(again) is type(est) and meta["type"] == type(est).__name__
    np.testing.assert_allclose(again.transform(X[:7]), out, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", FITTABLE)
def test_fit_validates_input(kind, pair):
    needs(kind)
    X, Y = pair
    est = make_map(kind, **FAST.get(kind, {}))
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(KeffError, match="finite"):
        est.fit(bad, Y)
    with pytest.raises(KeffError, match="rows"):
        est.fit(X, Y[:-1])
    with pytest.raises(KeffError, match="2-D"):
        est.fit(X[0], Y[0])


@pytest.mark.parametrize("kind", FITTABLE)
def test_transform_refuses_the_wrong_width(kind, pair):
    needs(kind)
    X, Y = pair
    est = make_map(kind, **FAST.get(kind, {})).fit(X, Y)
    with pytest.raises(KeffError, match="8-d"):
        est.transform(np.zeros((2, 5), dtype=np.float32))


def test_make_map_errors():
    with pytest.raises(KeffError, match="unknown map kind 'nope' \\(choose from"):
        make_map("nope")
    with pytest.raises(KeffError, match="map 'procrustes' takes no parameter \\['rank'\\]"):
        make_map("procrustes", rank=3)

"""Checks every registered map passes, parametrised from the registry (as scikit-learn's
``parametrize_with_checks``): a map added to ``keff.maps.MAPS`` is checked without a new test."""

from __future__ import annotations

import numpy as np
import pytest

import keff.adapters  # noqa: F401  (registers the query adapter, a map kind defined above keff.maps)
from keff.errors import KeffError, NotFittedError
from keff.maps import MAP_TYPES, MAPS, Map, chain, load_map, make_map, map_params

# Small, fast settings where a map's defaults train for long or need many rows.
FAST = {
    "mlp": {"hidden": 16, "epochs": 3, "seed": 0},
    "contrastive": {"epochs": 2, "seed": 0},
    "adapter": {"epochs": 2, "seed": 0, "hard_negatives": 4},
    "cluster-routed": {"n_clusters": 2, "seed": 0},
    "lowrank": {"rank": 4},
}
FITTABLE = sorted(k for k in MAPS if k != "chain")  # a chain is built from fitted maps


def needs(kind: str) -> None:
    if kind == "mlp":
        pytest.importorskip("torch", reason="the residual MLP trains with torch (keff[st])")
    if kind in ("contrastive", "adapter"):
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


class RecordingRows(np.ndarray):
    """Rows that log the right-hand shape of every matrix product they (or results computed
    from them) take part in, so a test can see which products a function performs."""

    products: list[tuple[int, ...]] = []

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        plain = [x.view(np.ndarray) if isinstance(x, RecordingRows) else x for x in inputs]
        if ufunc is np.matmul:
            RecordingRows.products.append(np.shape(plain[1]))
        if out is not None:
            kwargs["out"] = tuple(o.view(np.ndarray) if isinstance(o, RecordingRows) else o for o in out)
        result = getattr(ufunc, method)(*plain, **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return result.view(RecordingRows) if isinstance(result, np.ndarray) else result


def floor_products(est: Map, rows: np.ndarray) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """The floor's output on ``rows`` and the right-hand shapes of the products it computed."""
    floor = est.matmul_floor(np.random.default_rng(0))
    RecordingRows.products = []
    out = floor(np.ascontiguousarray(rows, dtype=np.float32).view(RecordingRows))
    return out.view(np.ndarray), list(RecordingRows.products)


def state_matrix_shapes(est: Map) -> set[tuple[int, ...]]:
    """Shapes of the map's fitted matrices (the last two axes of stacked ones), both ways round,
    and the dense (source_dim, target_dim)."""
    shapes = {(est.source_dim_, est.target_dim_)}
    for arr in est.get_state().values():
        if arr.ndim >= 2:
            shapes |= {arr.shape[-2:], arr.shape[-2:][::-1]}
    return shapes


@pytest.mark.parametrize("kind", FITTABLE)
def test_matmul_floor_has_the_maps_shapes(kind, pair):
    needs(kind)
    X, Y = pair
    est = make_map(kind, **FAST.get(kind, {})).fit(X, Y)
    out, products = floor_products(est, X[:5])
    assert out.shape == (5, est.target_dim_) and out.dtype == np.float32
    assert products and set(products) <= state_matrix_shapes(est)
    with pytest.raises(NotFittedError):
        make_map(kind, **FAST.get(kind, {})).matmul_floor(np.random.default_rng(0))


@pytest.fixture
def wide_to_narrow():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((60, 8)).astype(np.float32)
    return X, (X @ rng.standard_normal((8, 6))).astype(np.float32)


@pytest.mark.parametrize(
    ("kind", "params", "expected"),
    [
        ("procrustes", {}, [(8, 6)]),
        ("affine", {}, [(8, 6)]),
        ("lowrank", {"rank": 4, "base": "none"}, [(8, 4), (4, 6)]),
        ("lowrank", {"rank": 4, "base": "procrustes"}, [(8, 4), (4, 6), (8, 6)]),
        ("mlp", {"hidden": 16, "epochs": 2, "base": "linear"}, [(8, 6), (8, 16), (16, 6)]),
    ],
)
def test_matmul_floor_products(kind, params, expected, wide_to_narrow):
    needs(kind)
    est = make_map(kind, **params).fit(*wide_to_narrow)
    assert sorted(floor_products(est, wide_to_narrow[0][:3])[1]) == sorted(expected)


@pytest.mark.parametrize(
    ("kind", "params", "expected"),
    [
        ("lowrank", {"rank": 4, "base": "identity"}, [(8, 4), (4, 8)]),
        ("mlp", {"hidden": 16, "epochs": 2, "base": "identity"}, [(8, 16), (16, 8)]),
        ("cluster-routed", {"n_clusters": 2, "rank": 3}, [(8, 2), *[(8, 3), (3, 8)] * 2]),
        ("cluster-routed", {"n_clusters": 3, "rank": 3, "top_k": 1, "routing": "question"}, [(8, 120), (8, 3), (3, 8)]),
    ],
)
def test_matmul_floor_products_with_equal_dimensions(kind, params, expected, pair):
    needs(kind)
    est = make_map(kind, **params).fit(*pair)
    assert sorted(floor_products(est, pair[0][:3])[1]) == sorted(expected)


def test_matmul_floor_of_a_chain_applies_the_parts_floors_in_order(wide_to_narrow):
    X, Y = wide_to_narrow
    parts = make_map("lowrank", rank=4, base="none").fit(X, Y), make_map("affine").fit(Y, X)
    out, products = floor_products(chain(*parts), X[:3])
    assert out.shape == (3, 8)
    assert products == [(8, 4), (4, 6), (6, 8)]

"""keff.maps.chain: fitted parts applied in order, dims checked, saved and loaded as one file."""

from __future__ import annotations

import numpy as np
import pytest

from keff.errors import KeffError
from keff.maps import Affine, LowRankAffine, MapChain, Procrustes, chain, load_map


@pytest.fixture
def parts(rng):
    """Fitted maps 16 -> 24 -> 24 -> 8."""
    X16, X24, X8 = rng.standard_normal((60, 16)), rng.standard_normal((60, 24)), rng.standard_normal((60, 8))
    return [
        Procrustes(scale=True).fit(X16, X24),
        LowRankAffine(rank=3, base="identity").fit(X24, X24 + 0.1 * rng.standard_normal((60, 24))),
        Affine(alpha=0.5).fit(X24, X8),
    ]


def test_applies_parts_in_order(parts, rng):
    c = chain(*parts)
    assert isinstance(c, MapChain) and c.is_fitted
    assert (c.source_dim_, c.target_dim_) == (16, 8)
    X = rng.standard_normal((10, 16)).astype(np.float32)
    want = parts[2].transform(parts[1].transform(parts[0].transform(X)))
    assert np.array_equal(c.transform(X), want)


def test_state_is_prefixed_by_position_and_round_trips(parts, rng, tmp_path):
    c = MapChain([parts[0], chain(parts[1], parts[2])])  # nested chains work too
    assert {"0/W_", "0/b_", "1/0/A_", "1/1/W_"} <= set(c.get_state())
    path = c.save(tmp_path / "chain.sef", meta={"note": "test"})
    loaded, meta = load_map(path)
    assert meta["provenance"] == {"note": "test"} and [p["type"] for p in meta["parts"]] == ["Procrustes", "MapChain"]
    X = rng.standard_normal((10, 16)).astype(np.float32)
    assert np.array_equal(loaded.transform(X), c.transform(X))
    assert loaded.maps[0].scale_ == parts[0].scale_


def test_misaligned_parts_name_the_dims(parts, rng):
    with pytest.raises(KeffError, match=r"part 0 \(Procrustes\) outputs 24-d but part 1 \(Affine\) expects 16-d"):
        chain(parts[0], Affine().fit(rng.standard_normal((20, 16)), rng.standard_normal((20, 4))))


def test_unfitted_parts_empty_chains_and_fit_are_refused(parts, rng):
    with pytest.raises(KeffError, match=r"part 1 \(Affine\) is not fitted"):
        chain(parts[0], Affine())
    with pytest.raises(KeffError, match="at least one map"):
        chain()
    with pytest.raises(KeffError, match="not a keff Map"):
        chain(parts[0], np.eye(24))
    with pytest.raises(KeffError, match="fit each part"):
        chain(*parts).fit(rng.standard_normal((5, 16)), rng.standard_normal((5, 8)))

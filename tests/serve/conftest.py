"""Fixtures of the search service: an isolated cache, a small two-encoder index with fusion weights."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="keff serve needs the serve extra: pip install 'keff[serve]'")

from keff.cli.demo_cmd import sample_corpus_dir  # noqa: E402
from keff.docindex import FusionWeights, Index, read_documents  # noqa: E402
from keff.encoders import get_encoder, registry  # noqa: E402
from keff.encoders.hash_encoder import HashEncoder  # noqa: E402
from keff.serve import ServeConfig, create_app  # noqa: E402

SAMPLE = str(sample_corpus_dir())
#: Fusion weights of the fixture index (hash, hash2).
WEIGHTS = (0.7, 0.3)


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KEFF_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def hash2(monkeypatch):
    """A second registry encoder: the hash encoder with another seed and width."""

    _register_hash2(monkeypatch)
    return "hash2"


def build_fused(path, tmp_path, weights=WEIGHTS) -> Index:
    """The sample corpus indexed by hash and hash2, fusion weights ``weights`` attached as 'fusion'."""
    ix = Index.build(path, read_documents(SAMPLE), ["hash", "hash2"])
    encs = [{"name": n, "fingerprint": get_encoder(n).fingerprint} for n in ("hash", "hash2")]
    FusionWeights(encs, np.array(weights, dtype=np.float64), {"note": "test weights"}).save(tmp_path / "fw.sef")
    ix.attach(tmp_path / "fw.sef", name="fusion")
    return ix


@pytest.fixture
def fusion_weights():
    """The fusion weights of :func:`fused_index` (hash, hash2)."""
    return WEIGHTS


def _register_hash2(patch: pytest.MonkeyPatch) -> None:
    def load(*, name, normalize, batch_size):
        return HashEncoder(dim=32, seed=1, normalize=normalize, batch_size=batch_size)

    patch.setitem(registry._BY_NAME, "hash2", registry.EncoderSpec("hash2", "test", 32, "hash", "-", load))


@pytest.fixture(scope="session")
def _fused_template(tmp_path_factory):
    """The fused index, built once per session (tests get a copy)."""
    root = tmp_path_factory.mktemp("fused")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KEFF_CACHE_DIR", str(root / "cache"))
        _register_hash2(patch)
        build_fused(root / "ix", root).close()
    return root / "ix"


@pytest.fixture
def fused_index(tmp_path, hash2, _fused_template):
    """Path of (a copy of) the sample corpus indexed by hash + hash2 with fusion weights 0.7 / 0.3."""
    shutil.copytree(_fused_template, tmp_path / "ix")
    return tmp_path / "ix"


@pytest.fixture
def make_app(fused_index):
    """``make_app(**config)``: the app over the fused index with those ServeConfig settings."""

    def make(path=None, **settings):
        return create_app(path or fused_index, ServeConfig(**settings))

    return make

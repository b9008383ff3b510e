"""The index study runs end to end on a tiny shared-data folder with hash encoders, and renders."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest

from keff.cli.demo_cmd import sample_corpus_dir
from keff.data import load_beir
from keff.encoders import get_encoder, registry
from keff.encoders.hash_encoder import HashEncoder
from keff.errors import DataError
from keff.studies.index import EQUAL, TUNED, IndexStudyConfig, run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KEFF_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def shared(tmp_path, monkeypatch):
    """A shared-data folder holding the shipped sample as beir/toy, with hash and hash2 vectors."""

    def load(*, name, normalize, batch_size):
        return HashEncoder(dim=32, seed=1, normalize=normalize, batch_size=batch_size)

    monkeypatch.setitem(registry._BY_NAME, "hash2", registry.EncoderSpec("hash2", "test", 32, "hash", "-", load))
    data = tmp_path / "data"
    shutil.copytree(sample_corpus_dir(), data / "beir" / "toy")
    ds = load_beir(data / "beir" / "toy")
    for name in ("hash", "hash2"):
        enc = get_encoder(name, cache=False)
        folder = data / "embeddings" / "toy" / name
        folder.mkdir(parents=True)
        np.save(folder / "corpus.npy", enc.encode(list(ds.doc_texts), kind="doc"))
        np.save(folder / "queries.npy", enc.encode(list(ds.query_texts), kind="query"))
    return data


def test_fusion_part_fits_on_train_and_renders(shared, tmp_path):
    config = IndexStudyConfig(encoders=("hash", "hash2"), dataset="toy", step=0.5, workdir=tmp_path / "work")
    res = run(config, data=shared)
    part = res["fusion"]
    assert res["benchmark"] == "index" and set(res["meta"]["encoders"]) == {"hash", "hash2"}
    assert [r["system"] for r in part["rows"]] == ["hash", "hash2", EQUAL, TUNED]
    assert part["fit"]["split"] == "train" and part["fit"]["n_queries"] == 12 and part["eval"]["n_queries"] == 24
    assert len(part["fit"]["grid"]) == 3 and abs(sum(part["weights"].values()) - 1) < 1e-9
    assert all(r["identical"] for r in part["reproduces_keff_eval"].values())
    assert {(c["system"], c["baseline"]) for c in part["comparisons"]} == {
        (s, b) for s in (EQUAL, TUNED) for b in ("hash", "hash2")
    }
    spec = importlib.util.spec_from_file_location("render", ROOT / "benchmarks" / "render.py")
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    text = render.RENDERERS["index"](res)
    assert "### Fusion weights fitted on toy train queries" in text and "| fused (weights fitted on train) |" in text
    assert "## The persistent index" in render.RENDERERS["index"]({"benchmark": "index", "meta": res["meta"]})


def test_an_encoder_without_shipped_vectors_is_refused(shared, tmp_path):
    shutil.rmtree(shared / "embeddings" / "toy" / "hash2")
    with pytest.raises(DataError, match="no shipped hash2 vectors"):
        run(IndexStudyConfig(encoders=("hash", "hash2"), dataset="toy", workdir=tmp_path / "w"), data=shared)

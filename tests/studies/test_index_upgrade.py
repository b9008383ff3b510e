"""The index-upgrade study runs end to end on the shipped sample (hash -> minilm-l3-onnx) and renders."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from keff.cli.demo_cmd import sample_corpus_dir
from keff.errors import KeffError
from keff.studies.index_upgrade import IndexUpgradeConfig, run

ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip("onnxruntime")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KEFF_CACHE_DIR", str(tmp_path / "cache"))


def test_the_study_upgrades_reembeds_and_matches_a_fresh_build(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(sample_corpus_dir(), data / "beir" / "toy")
    config = IndexUpgradeConfig(dataset="toy", old="hash", new="minilm-l3-onnx", anchors=40, holdout=0.3, chunk=10,
                                workdir=tmp_path / "work")  # fmt: skip
    res = run(config, data=data)
    assert res["benchmark"] == "index_upgrade" and res["n_test_queries"] == 24
    attempts = res["attempts"]
    assert [a["validation"] for a in attempts] == ["pseudo", "train"][: len(attempts)]
    assert attempts[-1]["verdict"] == "accepted" and all(a["verdict"] == "refused" for a in attempts[:-1])
    assert res["chosen"] == attempts[-1]["chosen"]
    assert set(res["systems"]) >= {"old", "upgraded", "half_reembedded", "switched", "fresh", "mode:hybrid"}
    assert res["equality"]["vectors_identical"] and res["equality"]["top10_identical"]
    assert res["done"]["switched_equals_fresh"] and res["systems"]["switched"] == res["systems"]["fresh"]
    assert [r["switched"] for r in res["reembed"]["runs"]] == [False, True]
    assert sum(r["rows"] for r in res["reembed"]["runs"]) == 48
    spec = importlib.util.spec_from_file_location("render", ROOT / "benchmarks" / "render.py")
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    text = render.RENDERERS["index_upgrade"](res)
    assert "python benchmarks/index_upgrade.py" in text and "identical" in text


def test_the_scored_split_is_never_the_validation_split():
    with pytest.raises(KeffError, match="must not be"):
        IndexUpgradeConfig(train_split="test")
    with pytest.raises(KeffError, match="validations"):
        IndexUpgradeConfig(validations=("test",))

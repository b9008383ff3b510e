"""``keff demo`` end to end on the shipped sample, and ``keff models``."""

from __future__ import annotations

import json

from keff.cli.demo_cmd import sample_corpus_dir


def test_demo_on_sample_writes_reports(run, tmp_path):
    out = tmp_path / "demo"
    res = run("demo", "--data", str(sample_corpus_dir()), "--encoders", "minilm,hash", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert (out / "report.md").read_text().count("|") > 10
    assert (out / "report.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "minilm.json").read_text())["metrics"]["ndcg@10"] > 0.5
    assert "Paired tests" in res.output


def test_demo_skips_unavailable_encoder_with_reason(run, tmp_path):
    res = run("demo", "--data", str(sample_corpus_dir()), "--encoders", "hash,mpnet", "--out", str(tmp_path / "d"))
    assert res.exit_code == 0, res.output
    # the isolated cache holds no assembled mpnet, so the demo says how to get it
    assert "keff models fetch mpnet" in res.output


def test_models_list_names_every_registry_encoder(run):
    res = run("models", "list")
    assert res.exit_code == 0
    for name in ("minilm", "mpnet", "minilm-l3-onnx", "minilm-int8-onnx"):
        assert name in res.output

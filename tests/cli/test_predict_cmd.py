"""``keff predict eval / fit / next`` on small documents with the hash encoder."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch", reason="trained predictors train with torch: pip install 'keff[st]'")


def _docs(path, n=40):
    """Documents of five sentences each, the k-th sentence of every document sharing words."""
    rows = []
    for d in range(n):
        sentences = [f"Topic {d} step {i} uses word{i} and word{i}b again." for i in range(5)]
        rows.append({"id": f"d{d}", "text": " ".join(sentences)})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_eval_fit_and_next(run, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    docs = _docs(tmp_path / "docs.jsonl")
    res = run("predict", "eval", "--data", str(docs), "--encoder", "hash", "--k", "2", "--models", "gru",
              "--out", str(tmp_path / "r.json"))  # fmt: skip
    assert res.exit_code == 0, res.output
    for text in ("copy-last", "ridge", "gru (infonce)", "hit@5", "shuffled context"):
        assert text in res.output, text
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["windows"]["test"] > 0 and saved["best_baseline"] in saved["rows"]

    model = tmp_path / "p.sef"
    res = run("predict", "fit", "--data", str(docs), "--encoder", "hash", "--k", "2", "--model", "ridge",
              "--out", str(model))  # fmt: skip
    assert res.exit_code == 0 and "RidgeContext" in res.output, res.output
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"s{i}", "text": f"Topic 1 step {i} uses word{i} and word{i}b again."})
                              + "\n" for i in range(5)))  # fmt: skip
    idx = str(tmp_path / "ix")
    assert run("index", "build", idx, "--from", str(corpus), "-e", "hash").exit_code == 0
    res = run("predict", "next", "--predictor", str(model), "--index", idx, "-k", "2", "--json",
              "Topic 1 step 0 uses word0 and word0b again.", "Topic 1 step 1 uses word1 and word1b again.")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert len(json.loads(res.output)["hits"]) == 2


def test_errors_are_one_line(tmp_path, capsys):
    from keff.cli import main

    docs = _docs(tmp_path / "docs.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x"}\n')
    for argv, message in (
        (["predict", "eval", "--data", str(bad), "--encoder", "hash"], "bad.jsonl:1"),
        (["predict", "eval", "--data", str(docs), "--encoder", "hash", "--models", "lstm"], "choose from"),
        (["predict", "fit", "--data", str(docs), "--encoder", "hash", "--model", "x", "--out", str(tmp_path / "o")],
         "choose from"),
    ):  # fmt: skip
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert lines[-1].startswith("error: ") and message in lines[-1], lines

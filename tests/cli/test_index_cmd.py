"""``keff index build | add | remove | info`` and ``keff query`` on the shipped sample."""

from __future__ import annotations

import json

from keff.cli.demo_cmd import sample_corpus_dir

SAMPLE = str(sample_corpus_dir())


def test_build_query_add_remove_info(run, tmp_path):
    idx = str(tmp_path / "ix")
    res = run("index", "build", idx, "--from", SAMPLE, "-e", "hash")
    assert res.exit_code == 0 and "48 documents" in res.output, res.output
    res = run("query", idx, "how do I knead bread", "-k", "2", "--json")
    hits = json.loads(res.output)[0]["hits"]
    assert len(hits) == 2 and hits[0]["id"].startswith("c")
    extra = tmp_path / "more.jsonl"
    extra.write_text(json.dumps({"id": "x1", "text": "sourdough starter feeding schedule"}) + "\n")
    assert "49 now" in run("index", "add", idx, "--from", str(extra)).output
    assert "48 left" in run("index", "remove", idx, "x1").output
    res = run("index", "info", idx, "--json")
    info = json.loads(res.output)
    assert info["documents"] == 48 and [h["action"] for h in info["history"]] == ["build", "add", "remove"]


def test_index_errors_are_one_line(tmp_path, capsys):
    import pytest

    from keff.cli import main

    for argv, message in (
        (["query", str(tmp_path / "none"), "x"], "no index here"),
        (
            ["index", "build", str(tmp_path / "i"), "--from", SAMPLE, "-e", "hash", "--backend", "annoy"],
            "unknown index backend",
        ),
        (["index", "build", str(tmp_path / "i"), "--from", SAMPLE, "-e", "hash", "--param", "M"], "NAME=INTEGER"),
    ):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("error: ") and message in err[-1], err

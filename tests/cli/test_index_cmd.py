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


# -- transforms and evaluation ----------------------------------------------------------------------
import pytest  # noqa: E402


@pytest.fixture
def hash2(monkeypatch):
    """A second registry encoder: the hash encoder with another seed and width."""
    from keff.encoders import registry
    from keff.encoders.hash_encoder import HashEncoder

    def load(*, name, normalize, batch_size):
        return HashEncoder(dim=32, seed=1, normalize=normalize, batch_size=batch_size)

    monkeypatch.setitem(registry._BY_NAME, "hash2", registry.EncoderSpec("hash2", "test", 32, "hash", "-", load))


def test_eval_fit_map_attach_detach(run, tmp_path):
    idx = str(tmp_path / "ix")
    run("index", "build", idx, "--from", SAMPLE, "-e", "hash")
    res = run("index", "eval", idx, "--data", SAMPLE, "--out", str(tmp_path / "before.json"))
    assert res.exit_code == 0 and "ndcg@10" in res.output and "two_domains/test" in res.output, res.output
    before = json.loads((tmp_path / "before.json").read_text())
    assert before["format"] == "keff.result" and before["system"] == "hash"
    plain = str(tmp_path / "plain.json")
    run("eval", "--data", SAMPLE, "-e", "hash", "--out", plain)
    assert json.loads(open(plain).read())["metrics"] == before["metrics"]  # the same numbers as keff eval

    res = run("index", "fit-map", idx, "--data", SAMPLE, "--method", "procrustes", "--out", str(tmp_path / "p.sef"))
    assert res.exit_code == 0 and "attached procrustes" in res.output, res.output
    info = json.loads(run("index", "info", idx, "--json").output)
    assert [t["name"] for t in info["transforms"]] == ["procrustes"] and info["history"][-1]["action"] == "attach"
    assert "transform procrustes: query-map" in run("index", "info", idx).output
    res = run("index", "eval", idx, "--data", SAMPLE, "--out", str(tmp_path / "after.json"))
    assert json.loads((tmp_path / "after.json").read_text())["system"] == "hash [procrustes]"

    other = str(tmp_path / "other")
    run("index", "build", other, "--from", SAMPLE, "-e", "hash")
    res = run("index", "attach", other, str(tmp_path / "p.sef"), "--name", "proj")
    assert res.exit_code == 0 and "attached proj" in res.output, res.output
    assert "detached proj" in run("index", "detach", other, "proj").output
    assert json.loads(run("index", "info", other, "--json").output)["transforms"] == []


def test_fit_fusion_attaches_weights(run, tmp_path, hash2):
    idx = str(tmp_path / "ix")
    run("index", "build", idx, "--from", SAMPLE, "-e", "hash", "-e", "hash2")
    res = run("index", "fit-fusion", idx, "--data", SAMPLE, "--step", "0.5")
    assert res.exit_code == 0 and "attached fusion" in res.output and "fitting queries" in res.output, res.output
    info = json.loads(run("index", "info", idx, "--json").output)
    assert info["weighting"] == "fusion-weights" and info["transforms"][0]["kind"] == "fusion-weights"
    assert run("query", idx, "knead bread", "-k", "2").exit_code == 0


def test_transform_errors_are_one_line(run, tmp_path, capsys, hash2):
    from keff.cli import main

    idx = str(tmp_path / "ix")
    run("index", "build", idx, "--from", SAMPLE, "-e", "hash")
    two = str(tmp_path / "two")
    run("index", "build", two, "--from", SAMPLE, "-e", "hash", "-e", "hash2")
    run("index", "fit-fusion", two, "--data", SAMPLE, "--out", str(tmp_path / "fw.sef"))
    run("index", "fit-map", idx, "--data", SAMPLE, "--method", "procrustes")
    (tmp_path / "few.jsonl").write_text(json.dumps({"id": "t01", "text": "git rebase"}) + "\n")
    small = str(tmp_path / "small")
    run("index", "build", small, "--from", str(tmp_path / "few.jsonl"), "-e", "hash")
    for argv, message in (
        (["index", "fit-fusion", idx, "--data", SAMPLE], "combine several encoders"),
        (["index", "attach", idx, str(tmp_path / "fw.sef")], "the fusion weights were fitted for encoders"),
        (["index", "attach", idx, str(tmp_path / "none.sef")], "no such file"),
        (["index", "fit-map", idx, "--data", SAMPLE, "--method", "procrustes"], "already has a transform named"),
        (["index", "detach", idx, "nope"], "no transform named 'nope'"),
        (["index", "eval", idx, "--data", SAMPLE, "--out", str(tmp_path / "fw.sef")], "--overwrite"),
        (["index", "eval", two, "--data", str(tmp_path)], "missing corpus.jsonl"),
        (["index", "eval", small, "--data", SAMPLE], "documents judged in two_domains/test are not in the index"),
    ):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("error: ") and message in err[-1], (argv, err)


def test_demo_indexes_and_attaches_a_map_fitted_on_train(run, tmp_path):
    from keff.docindex import Index

    out = tmp_path / "demo"
    res = run("demo", "--data", SAMPLE, "--encoders", "hash", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert "keff index with a learned query map" in res.output and "after (with the contrastive map)" in res.output
    assert "on the other 23" in res.output  # test queries whose documents no train query has, apart
    ix = Index.open(out / "index")
    assert [(t.name, t.kind) for t in ix.transforms] == [("contrastive", "query-map")]
    assert ix.transforms.items[0].provenance["task"] == "two_domains/train"
    assert "## keff index with a query map fitted on the train queries" in (out / "report.md").read_text()
    from keff.errors import DataError

    with pytest.raises(DataError, match="already holds .*index"):  # never replaced without --overwrite
        run("demo", "--data", SAMPLE, "--encoders", "hash", "--out", str(out))
    res = run("demo", "--data", SAMPLE, "--encoders", "hash", "--out", str(tmp_path / "plain"), "--no-index")
    assert res.exit_code == 0 and not (tmp_path / "plain" / "index").exists()


def test_index_eval_on_q_a_pairs_matches_keff_eval(run, tmp_path):
    from keff.data.qa_task import answer_id

    rows = [{"id": f"{g}-{i}", "question": f"question {g} number {i}", "answer": f"answer {g} text {i}",
             "topic": f"t{g}"} for g in range(6) for i in range(2)]  # fmt: skip
    faq = tmp_path / "faq.jsonl"
    faq.write_text("".join(json.dumps(r) + "\n" for r in rows))
    docs = tmp_path / "answers.jsonl"  # the pool keff evaluates: distinct answers, ids from their text
    docs.write_text("".join(json.dumps({"id": answer_id(r["answer"]), "text": r["answer"]}) + "\n" for r in rows))
    idx = str(tmp_path / "ix")
    run("index", "build", idx, "--from", str(docs), "-e", "hash")
    res = run("index", "eval", idx, "--data", str(faq), "--qa-layout", "relevance=topic", "--out", str(tmp_path / "a"))
    assert res.exit_code == 0 and "hit@1" in res.output, res.output
    run("eval", "--data", str(faq), "-e", "hash", "--qa-layout", "relevance=topic", "--out", str(tmp_path / "b"))
    got, want = (json.loads((tmp_path / n).read_text()) for n in "ab")
    assert got["metrics"] == want["metrics"] and got["per_query"] == want["per_query"]

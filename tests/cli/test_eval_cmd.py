"""``keff eval`` and ``keff compare`` on the shipped sample corpus."""

from __future__ import annotations

import json

import pytest

from keff.cli import main
from keff.cli.demo_cmd import sample_corpus_dir

SAMPLE = str(sample_corpus_dir())


def test_eval_prints_table_and_writes_json(run, tmp_path):
    out = tmp_path / "hash.json"
    res = run("eval", "--data", SAMPLE, "--encoder", "hash", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert "ndcg@10" in res.output and "two_domains/test" in res.output
    doc = json.loads(out.read_text())
    assert {"ndcg@10", "mrr@10", "recall@100"} <= set(doc["metrics"])
    assert doc["meta"]["encoders"]["hash"]
    assert doc["meta"]["command"]


def test_eval_train_split(run, tmp_path):
    out = tmp_path / "train.json"
    res = run("eval", "--data", SAMPLE, "--encoder", "hash", "--split", "train", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert len(json.loads(out.read_text())["per_query"]["ndcg@10"]) == 12


def test_compare_runs_paired_tests(run, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert run("eval", "--data", SAMPLE, "--encoder", "hash", "--out", str(a)).exit_code == 0
    assert run("eval", "--data", SAMPLE, "--encoder", "minilm", "--out", str(b)).exit_code == 0
    md, png = tmp_path / "cmp.md", tmp_path / "cmp.png"
    res = run("compare", str(a), str(b), "--resamples", "500", "--out", str(md), "--plot", str(png))
    assert res.exit_code == 0, res.output
    text = md.read_text()
    assert "minilm" in text and "hash" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a real sentence encoder beats bag-of-hashed-words on these paraphrased queries
    assert json.loads(b.read_text())["metrics"]["ndcg@10"] > json.loads(a.read_text())["metrics"]["ndcg@10"]


def test_compare_needs_two_files(run, tmp_path):
    a = tmp_path / "a.json"
    assert run("eval", "--data", SAMPLE, "--encoder", "hash", "--out", str(a)).exit_code == 0
    res = run("compare", str(a))
    assert res.exit_code == 2
    assert "at least two" in res.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["eval", "--data", "/nonexistent/folder", "--encoder", "hash"], "expected a BEIR folder"),
        (["eval", "--data", SAMPLE, "--encoder", "no-such-model"], "no-such-model"),
        (["eval", "--data", SAMPLE, "--encoder", "hash", "--split", "dev"], "split 'dev'"),
    ],
)
def test_errors_are_one_clean_line_and_exit_2(args, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def _qa_file(tmp_path, n_groups=6):
    rows = [
        {"id": f"{g}-{i}", "question": f"question {g} number {i}", "answer": f"answer {g} text {i}", "topic": f"t{g}"}
        for g in range(n_groups)
        for i in range(2)
    ]
    path = tmp_path / "faq.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_sampled_q_a_evaluation_says_plainly_that_scores_are_inflated(run, tmp_path):
    res = run("eval", "--data", str(_qa_file(tmp_path)), "--encoder", "hash", "--qa-layout", "relevance=topic",
              "--sample-groups", "2")  # fmt: skip
    assert res.exit_code == 0, res.output
    flat = " ".join(res.output.split())
    assert "scores are inflated" in flat and "NOT comparable with an evaluation on the whole set" in flat
    assert "custom layout" in flat


def test_q_a_eval_uses_the_shipped_precomputed_vectors_after_checking_them(run, shared_data):
    # regression: `keff eval` on a Q/A file ignored the vectors shipped beside it (the demo used them)
    pytest.importorskip("sentence_transformers", reason="needs keff[st]")
    res = run("eval", "--data", str(shared_data / "qa" / "skills_qa.jsonl"), "--encoder", "minilm")
    assert res.exit_code == 0, res.output
    flat = " ".join(res.output.split())
    assert "found precomputed minilm vectors" in flat and "skills layout" in flat
    assert "questions.npy: seeded" in flat and "answers.npy: seeded" in flat
    res = run("eval", "--data", str(shared_data / "qa" / "skills_qa.jsonl"), "--encoder", "minilm")
    assert "already seeded" in " ".join(res.output.split())  # the second run checks nothing again

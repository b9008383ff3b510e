"""``keff adapt fit / eval``: adapters trained on the user's pairs, saved only when they help."""

from __future__ import annotations

import json

import numpy as np
import pytest

from keff.adapters import AsymAdapter
from keff.cli.demo_cmd import sample_corpus_dir
from keff.maps import load_map

SAMPLE = str(sample_corpus_dir())


def _noise_pairs(path, n_groups=60):
    """Questions and answers with nothing in common: no adapter can help."""
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(400)]
    rows = [
        {"id": f"q{g}-{i}", "group": f"g{g}", "question": " ".join(rng.choice(words, 6)),
         "answer": " ".join(rng.choice(words, 12)), "source": f"s{g % 3}"}
        for g in range(n_groups) for i in range(2)
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


LAYOUT = "id=id,question=question,answer=answer,relevance=group"


def _main(argv):
    from keff.cli import main

    try:
        main(argv)
    except SystemExit as exc:
        return exc.code or 0
    return 0


def test_fit_keeps_nothing_that_does_not_beat_the_frozen_encoder(tmp_path, capsys):
    pairs = _noise_pairs(tmp_path / "noise.jsonl")
    out = tmp_path / "a.sef"
    code = _main(["adapt", "fit", "--data", str(pairs), "--qa-layout", LAYOUT, "--encoder", "hash", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "does not beat the identity" in err and "not saved" in err and "--keep" in err
    assert not out.exists()
    log = tmp_path / "a.sef.guardrails.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    # before training: leakage and parity of the training vs validation questions; then one record per epoch
    assert records[0]["epoch"] == -1 and [c["name"] for c in records[0]["checks"]] == [
        "leakage",
        "split_parity_question_words",
    ]
    assert records[1]["epoch"] == 0 and {c["name"] for c in records[1]["checks"]} >= {"norm_growth", "effective_rank"}


def test_fit_with_keep_saves_an_adapter_that_reloads_identically(tmp_path, capsys):
    pairs = _noise_pairs(tmp_path / "noise.jsonl")
    out = tmp_path / "a.sef"
    code = _main(["adapt", "fit", "--data", str(pairs), "--qa-layout", LAYOUT, "--encoder", "hash", "--out", str(out),
                  "--keep", "--head", "lowrank", "--epochs", "3"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    m, meta = load_map(out)
    assert type(m).__name__ == "QueryAdapter" and m.head == "lowrank"
    prov = meta["provenance"]
    assert prov["kind"] == "query" and prov["encoder"]["name"] == "hash" and "does not beat" in prov["decision"]
    lines = (tmp_path / "a.sef.guardrails.jsonl").read_text().splitlines()
    last = json.loads(lines[-1])
    assert last["epoch"] == -1 and last["checks"][0]["name"] == "checkpoint_roundtrip"
    assert last["checks"][0]["status"] == "ok"


def test_an_asymmetric_adapter_from_a_beir_folder_attaches_to_an_index(run, tmp_path):
    out = tmp_path / "asym.sef"
    res = run("adapt", "fit", "--data", SAMPLE, "--encoder", "hash", "--kind", "asym", "--keep", "--out", str(out),
              "--epochs", "2")  # fmt: skip
    assert res.exit_code == 0, res.output
    adapter, meta = AsymAdapter.load(out)
    assert meta["provenance"]["n_pairs"] > 0 and adapter.n_features_in_ == 64
    idx = str(tmp_path / "ix")
    run("index", "build", idx, "--from", SAMPLE, "-e", "hash")
    res = run("index", "attach", idx, str(out))
    assert res.exit_code == 0 and "asym-adapter" in res.output, res.output
    res = run("query", idx, "how do I knead bread", "-k", "2", "--json")
    assert len(json.loads(res.output)[0]["hits"]) == 2


def test_eval_reports_every_row_against_the_frozen_encoder(run, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")
    res = run("adapt", "eval", "--data", SAMPLE, "--encoder", "hash", "--kinds", "query", "--epochs", "2")
    assert res.exit_code == 0, res.output
    for text in ("identity", "query adapter (as trained)", "query adapter (do-no-harm)", "ndcg@10", "the test split"):
        assert text in res.output, text


def test_eval_leave_one_domain_out(tmp_path, run, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")
    pairs = _noise_pairs(tmp_path / "noise.jsonl")
    argv = ["--data", str(pairs), "--qa-layout", LAYOUT, "--encoder", "hash", "--kinds", "query", "--protocol",
            "domains", "--domain-field", "source", "--validation", "domains", "--epochs", "2"]  # fmt: skip
    res = run("adapt", "eval", *argv)
    assert res.exit_code == 0, res.output
    assert "3 held-out domains" in res.output and "query adapter (do-no-harm)" in res.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--kind", "bogus"], "choose from query, asym"),
        (["--head", "huge"], "choose from linear, lowrank, mlp"),
        (["--validation", "domains"], "needs --domain-field"),
        (["--domain-field", "missing_field"], "missing_field"),
    ],
)
def test_bad_options_are_one_line(tmp_path, capsys, extra, message):
    pairs = _noise_pairs(tmp_path / "noise.jsonl")
    argv = ["adapt", "fit", "--data", str(pairs), "--qa-layout", LAYOUT, "--encoder", "hash", "--out",
            str(tmp_path / "x.sef"), *extra]  # fmt: skip
    assert _main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1], lines
    assert not (tmp_path / "x.sef").exists()


def test_an_existing_output_is_not_replaced(tmp_path, capsys):
    pairs = _noise_pairs(tmp_path / "noise.jsonl")
    out = tmp_path / "a.sef"
    out.write_text("mine")
    argv = ["adapt", "fit", "--data", str(pairs), "--qa-layout", LAYOUT, "--encoder", "hash", "--out", str(out)]
    assert _main(argv) == 2 and "--overwrite" in capsys.readouterr().err
    assert out.read_text() == "mine"

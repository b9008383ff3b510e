"""``keff project fit / eval`` on a small seeded sample of the real skills set."""

from __future__ import annotations

from keff.maps import load_map


def test_eval_and_fit(run, shared_data, tmp_path):
    pairs = str(shared_data / "qa" / "skills_qa.jsonl")
    res = run("project", "eval", "--pairs", pairs, "--sample-groups", "25", "--methods", "lowrank")
    assert res.exit_code == 0, res.output
    assert "identity" in res.output and "lowrank" in res.output and "hit@1" in res.output
    out = tmp_path / "p.sef"
    res = run("project", "fit", "--pairs", pairs, "--method", "procrustes", "--sample-groups", "25", "--out", str(out))
    assert res.exit_code == 0, res.output
    m, meta = load_map(out)
    assert meta["provenance"]["method"] == "procrustes" and meta["provenance"]["n_pairs"] > 25
    assert m.source_dim_ == 384


def test_wrong_file_is_a_clean_error(tmp_path, capsys):
    import pytest

    from keff.cli import main

    bad = tmp_path / "other.jsonl"
    bad.write_text("{}\n")
    with pytest.raises(SystemExit) as exc:
        main(["project", "eval", "--pairs", str(bad)])
    assert exc.value.code == 2
    assert "other.jsonl" in capsys.readouterr().err

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


def _skills_like(path, n_groups, tag):
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        {"pair_id": f"{tag}{g}-{i}", "cluster_id": f"{tag}c{g}", "original_answer": f"{tag} answer {g}",
         "question": f"{tag} question {g} variant {i}", "answer": f"{tag} answer {g} for {i}"}
        for g in range(n_groups) for i in range(2)
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return len(rows)


def test_pairs_are_read_from_the_path_given_whatever_its_name(tmp_path):
    # regression: DIR/mine/skills_qa.jsonl used to be replaced by DIR/qa/skills_qa.jsonl
    from keff.cli import main

    _skills_like(tmp_path / "qa" / "skills_qa.jsonl", 30, "decoy")
    mine = tmp_path / "mine" / "skills_qa.jsonl"
    n = _skills_like(mine, 10, "mine")
    out = tmp_path / "p.sef"
    try:
        main(["project", "fit", "--pairs", str(mine), "--encoder", "hash", "--method", "procrustes", "--out", str(out)])
    except SystemExit as exc:
        assert exc.code in (0, None)
    _, meta = load_map(out)
    prov = meta["provenance"]
    assert prov["pairs"] == str(mine.resolve()) and prov["n_pairs"] == n
    assert prov["qa_layout"]["name"] == "skills"  # recognised by its fields


def test_generic_layout_with_inline_fields(run, tmp_path):
    import json

    pairs = tmp_path / "faq.jsonl"
    rows = [{"qid": f"{g}-{i}", "q": f"how to do thing {g} way {i}", "a": f"do thing {g} like so {i}", "topic": f"t{g}"}
            for g in range(8) for i in range(2)]  # fmt: skip
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    res = run("project", "eval", "--pairs", str(pairs), "--encoder", "hash", "--methods", "procrustes",
              "--qa-layout", "id=qid,question=q,answer=a,relevance=topic")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "custom layout; 16 pairs, 16 answers" in res.output


def test_unknown_layout_is_a_clear_error(tmp_path, capsys):
    import json

    import pytest

    from keff.cli import main

    pairs = tmp_path / "faq.jsonl"
    pairs.write_text(json.dumps({"qid": "1", "q": "x", "a": "y"}) + "\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        main(["project", "eval", "--pairs", str(pairs), "--encoder", "hash"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "faq.jsonl:1: missing field 'id'" in err[0]

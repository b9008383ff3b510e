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


def test_version(capsys):
    from keff import __version__
    from keff.cli import main

    main(["--version"])
    assert capsys.readouterr().out.strip() == f"keff {__version__}"


def test_models_list_says_what_is_installed(run, tmp_path, monkeypatch):
    monkeypatch.setenv("KEFF_MODEL_DIR", str(tmp_path / "no-models"))
    res = run("models", "list")
    rows = {line.split("│")[1].strip(): line for line in res.output.splitlines() if line.count("│") > 4}
    assert "yes" in rows["hash"] and "no" in rows["mpnet"]
    assert "embedding cache:" in res.output


def test_a_bare_group_prints_its_help_and_one_error_line(capsys):
    import pytest

    from keff.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["align"])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert "fit" in captured.out and captured.err.strip() == "error: keff align needs a command (listed above)"


def test_an_unexpected_exception_is_one_line_with_its_own_exit_code(monkeypatch, capsys):
    import pytest

    from keff.cli import EXIT_BUG, main

    def boom():
        raise ZeroDivisionError("planted")

    monkeypatch.setattr("keff.encoders.available_encoders", boom)
    with pytest.raises(SystemExit) as exc:
        main(["models", "list"])
    assert exc.value.code == EXIT_BUG
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error" in err and "KEFF_DEBUG=1" in err and "Traceback" not in err


def test_split_check_explains_what_leaks_means(tmp_path):
    from keff.cli.demo_cmd import split_checks
    from keff.data import load_beir
    from keff.encoders import get_encoder

    root = tmp_path / "leaky"
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text(json.dumps({"_id": "d1", "text": "dough"}) + "\n")
    queries = [{"_id": "q1", "text": "how to knead dough"}, {"_id": "q2", "text": "how to knead dough"}]
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (root / "qrels" / "train.tsv").write_text("q1\td1\t1\n")
    (root / "qrels" / "test.tsv").write_text("q2\td1\t1\n")
    text = " ".join(split_checks(load_beir(root), "test", get_encoder("hash")).split())
    assert "LEAKS: 1 identical texts" in text
    assert "Nothing in this demo is fitted on train queries, so these scores are not inflated" in text


def test_model_folder_follows_keff_model_dir(tmp_path, monkeypatch):
    from keff.encoders.model_store import mpnet_dir

    monkeypatch.setenv("KEFF_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("KEFF_MODEL_DIR", raising=False)
    assert mpnet_dir() == tmp_path / "cache" / "models" / "all-mpnet-base-v2"
    monkeypatch.setenv("KEFF_MODEL_DIR", str(tmp_path / "models"))
    assert mpnet_dir() == tmp_path / "models" / "all-mpnet-base-v2"  # an isolated cache still finds the model

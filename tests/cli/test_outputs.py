"""Outputs: never replaced without --overwrite, checked before any long work, never half-written."""

from __future__ import annotations

import numpy as np
import pytest

from keff.cli import main
from keff.cli.demo_cmd import sample_corpus_dir
from keff.cli.outputs import check_output, check_output_dir
from keff.errors import DataError

SAMPLE = str(sample_corpus_dir())


def fails(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_existing_output_is_refused_then_replaced_with_overwrite(tmp_path, capsys):
    out = tmp_path / "r.json"
    out.write_text("precious")
    line = fails(["eval", "--data", SAMPLE, "--encoder", "hash", "--out", str(out)], capsys)
    assert "already exists; pass --overwrite" in line and "r.json" in line
    assert out.read_text() == "precious"
    main(["eval", "--data", SAMPLE, "--encoder", "hash", "--out", str(out), "--overwrite"])
    assert out.read_text().startswith("{")


def test_unwritable_output_fails_before_any_encoding(tmp_path, capsys, isolated_cache):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    line = fails(["eval", "--data", SAMPLE, "--encoder", "hash", "--out", str(blocker / "r.json")], capsys)
    assert "a-file" in line
    assert not (isolated_cache / "embeddings").exists()  # nothing was encoded


def test_output_that_is_a_folder_is_refused(tmp_path, capsys):
    line = fails(["eval", "--data", SAMPLE, "--encoder", "hash", "--out", str(tmp_path)], capsys)
    assert "names a folder" in line


def test_apply_refuses_existing_output_before_reading_anything(tmp_path, capsys):
    out = tmp_path / "o.npy"
    np.save(out, np.ones((1, 2), dtype=np.float32))
    line = fails(["align", "apply", "--map", str(tmp_path / "missing.sef"), "--vectors", str(out), "--out", str(out)],
                 capsys)  # fmt: skip
    assert "already exists" in line
    assert np.load(out).shape == (1, 2)


def test_check_helpers(tmp_path):
    assert check_output(None, overwrite=False) is None
    assert (
        check_output(tmp_path / "new" / "deeper" / "x.json", overwrite=False) == tmp_path / "new" / "deeper" / "x.json"
    )
    assert not (tmp_path / "new").exists()  # checking creates nothing
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "report.md").write_text("x")
    with pytest.raises(DataError, match="already holds report.md"):
        check_output_dir(tmp_path / "d", ["report.md", "a.json"], overwrite=False)
    assert check_output_dir(tmp_path / "d", ["report.md"], overwrite=True) == tmp_path / "d"
    with pytest.raises(DataError, match="must be a folder"):
        check_output_dir(tmp_path / "d" / "report.md", ["x"], overwrite=True)


def test_demo_refuses_to_replace_an_earlier_run_in_a_chosen_folder(tmp_path, capsys):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "report.md").write_text("earlier run")
    line = fails(["demo", "--data", SAMPLE, "--encoders", "hash", "--out", str(out)], capsys)
    assert "report.md" in line and (out / "report.md").read_text() == "earlier run"

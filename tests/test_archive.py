"""keff.archive: whole-archive checks before extraction, and atomic folder replacement."""

from __future__ import annotations

import zipfile

import pytest

from keff.archive import safe_extract, swap_into_place
from keff.errors import DataError


def make_zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return path


def test_extracts_and_skips_junk(tmp_path):
    z = make_zip(tmp_path / "a.zip", {"m/a.txt": "a", "m/Desktop.ini": "junk"})
    safe_extract(z, tmp_path / "out", what="a.zip", skip_names={"desktop.ini"})
    assert (tmp_path / "out" / "m" / "a.txt").read_text() == "a"
    assert not (tmp_path / "out" / "m" / "Desktop.ini").exists()


def test_unsafe_member_stops_before_anything_is_written(tmp_path):
    z = make_zip(tmp_path / "a.zip", {"m/a.txt": "a", "../evil.txt": "x"})
    with pytest.raises(DataError, match="unsafe zip member '../evil.txt'"):
        safe_extract(z, tmp_path / "out", what="a.zip")
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "evil.txt").exists()


def test_not_a_zip(tmp_path):
    bad = tmp_path / "b.zip"
    bad.write_bytes(b"PK\x03\x04 nope")
    with pytest.raises(DataError, match="b.zip: not a valid zip"):
        safe_extract(bad, tmp_path / "out", what="b.zip")


def test_swap_keeps_old_copy_when_rename_fails(tmp_path, monkeypatch):
    target, new, aside = tmp_path / "t", tmp_path / "new", tmp_path / "aside"
    target.mkdir()
    (target / "old.txt").write_text("old")
    # "new" does not exist, so the second rename fails and the old copy must come back
    with pytest.raises(OSError):
        swap_into_place(new, target, aside)
    assert (target / "old.txt").read_text() == "old"
    new.mkdir()
    (new / "f.txt").write_text("new")
    swap_into_place(new, target, aside)
    assert (target / "f.txt").read_text() == "new"

"""keff.atomic: atomic writes keep the target intact on failure and give files the umask mode."""

from __future__ import annotations

import os
import stat

import pytest

from keff.atomic import atomic_path, atomic_write_bytes, atomic_write_text, sha256_bytes, sha256_file


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it afterwards."""
    old = os.umask(0o022)
    try:
        yield os.umask
    finally:
        os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600), (0o002, 0o664)])
def test_new_file_gets_the_umask_mode(tmp_path, umask, mask, expected):
    umask(mask)
    atomic_write_text(tmp_path / "results" / "r.json", "{}")
    assert mode(tmp_path / "results" / "r.json") == expected


def test_atomic_path_new_file_gets_the_umask_mode(tmp_path, umask):
    umask(0o022)
    with atomic_path(tmp_path / "plot.png") as tmp:
        tmp.write_bytes(b"png")
    assert mode(tmp_path / "plot.png") == 0o644


@pytest.mark.parametrize("existing", [0o640, 0o600, 0o444, 0o664])
def test_replacing_keeps_the_existing_mode(tmp_path, umask, existing):
    umask(0o022)
    target = tmp_path / "t.txt"
    target.write_text("old")
    target.chmod(existing)
    atomic_write_text(target, "new")
    assert target.read_text() == "new" and mode(target) == existing


def test_failure_leaves_target_and_no_temp_file(tmp_path):
    target = tmp_path / "t.bin"
    atomic_write_bytes(target, b"old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"old" and leftovers(tmp_path) == []


def test_fsync_can_be_skipped(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(fd))
    atomic_write_bytes(tmp_path / "a", b"x", fsync=False)
    assert calls == []
    atomic_write_bytes(tmp_path / "b", b"x")
    assert len(calls) == 1
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes() == b"x"


def test_hashes(tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    digest = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert sha256_bytes(b"abc") == sha256_file(tmp_path / "f") == digest

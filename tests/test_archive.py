"""keff.archive: whole-archive checks before extraction, and atomic folder replacement."""

from __future__ import annotations

import io
import os
import struct
import time
import zipfile

import pytest

from keff import archive
from keff.archive import (
    MAX_COMPRESSION_RATIO,
    MAX_UNCOMPRESSED_BYTES,
    check_expansion,
    copy_limited,
    safe_extract,
    swap_into_place,
)
from keff.errors import DataError, KeffError

MiB = 1 << 20


def make_zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return path


def make_bomb(path, zeros=64 * MiB, extra=None):
    """A deflated member of ``zeros`` zero bytes (about 1000x smaller), plus ``extra`` members."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in (extra or {}).items():
            zf.writestr(name, text)
        with zf.open("m/zeros.bin", "w") as out:
            chunk = bytes(MiB)
            for _ in range(zeros // MiB):
                out.write(chunk)
    return path


def set_central_sizes(path, *, compress_size=None, file_size=None):
    """Overwrite the sizes that each central-directory entry declares (the local headers keep theirs)."""
    data = bytearray(path.read_bytes())
    i = data.find(b"PK\x01\x02")
    while i != -1:
        if compress_size is not None:
            data[i + 20 : i + 24] = struct.pack("<I", compress_size)
        if file_size is not None:
            data[i + 24 : i + 28] = struct.pack("<I", file_size)
        i = data.find(b"PK\x01\x02", i + 46)
    path.write_bytes(bytes(data))


def files_under(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) if folder.exists() else []


def test_extracts_and_skips_junk(tmp_path):
    z = make_zip(tmp_path / "a.zip", {"m/a.txt": "a", "m/Desktop.ini": "junk"})
    safe_extract(z, tmp_path / "out", what="a.zip", skip_names={"desktop.ini"})
    assert (tmp_path / "out" / "m" / "a.txt").read_text() == "a"
    assert not (tmp_path / "out" / "m" / "Desktop.ini").exists()


def test_directory_entries_and_backslashes(tmp_path):
    z = make_zip(tmp_path / "a.zip", {"m/": "", "m/sub/": "", "m\\w\\b.txt": "b", "./m/c.txt": "c"})
    safe_extract(z, tmp_path / "out", what="a.zip")
    assert files_under(tmp_path / "out") == ["m", "m/c.txt", "m/sub", "m/w", "m/w/b.txt"]


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
    assert not (tmp_path / "out").exists()


# -- zip bombs --------------------------------------------------------------------------------


def test_zip_bomb_refused_from_central_directory(tmp_path):
    z = make_bomb(tmp_path / "bomb.zip", extra={"m/a.txt": "a"})
    assert z.stat().st_size < MiB  # 64 MiB of zeros in well under 1 MiB
    start = time.perf_counter()
    with pytest.raises(
        DataError, match=r"bomb\.zip: refusing zip member 'm/zeros\.bin': it expands \d+x .*limit of 100x"
    ):
        safe_extract(z, tmp_path / "out", what="bomb.zip")
    assert time.perf_counter() - start < 1.0  # decided without decompressing
    assert not (tmp_path / "out").exists()


def test_zip_bomb_refusal_leaves_existing_empty_folder_empty(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DataError, match="limit of 100x"):
        safe_extract(make_bomb(tmp_path / "bomb.zip", zeros=4 * MiB), out, what="bomb.zip")
    assert out.is_dir() and files_under(out) == []


def test_ratio_limit_configurable(tmp_path):
    z = make_bomb(tmp_path / "bomb.zip", zeros=4 * MiB)
    safe_extract(z, tmp_path / "out", what="bomb.zip", max_ratio=5000)
    assert (tmp_path / "out" / "m" / "zeros.bin").stat().st_size == 4 * MiB


def test_total_size_limit_names_member_and_limit(tmp_path):
    z = make_zip(tmp_path / "a.zip", {"m/a.txt": "x" * 1000, "m/b.txt": "y" * 1000, "m/c.txt": "z" * 1000})
    with pytest.raises(
        DataError, match=r"a\.zip: refusing zip member 'm/c\.txt': .* over the limit of 2\.4 KiB \(2500 bytes\)"
    ):
        safe_extract(z, tmp_path / "out", what="a.zip", max_bytes=2500)
    assert not (tmp_path / "out").exists()
    safe_extract(z, tmp_path / "out", what="a.zip", max_bytes=3000)
    assert files_under(tmp_path / "out" / "m") == ["a.txt", "b.txt", "c.txt"]


def test_many_small_members_refused_by_overall_ratio(tmp_path):
    # each member is under the 1 MiB exemption, but together they expand ~1000x
    z = tmp_path / "many.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(8):
            zf.writestr(f"m/{i}.bin", bytes(MiB))
    with pytest.raises(DataError, match=r"refusing the archive \(largest member 'm/0\.bin'\): it expands \d+x overall"):
        safe_extract(z, tmp_path / "out", what="many.zip")
    assert not (tmp_path / "out").exists()


def test_overlapping_members_refused(tmp_path):
    """One stored blob listed ten times in the central directory: ten files from one blob's bytes."""
    z = tmp_path / "overlap.zip"
    make_zip(z, {"m/0.bin": os.urandom(MiB // 2)})
    data = z.read_bytes()
    cd = data.index(b"PK\x01\x02")
    eocd = data.index(b"PK\x05\x06")
    entry = data[cd:eocd]
    entries = b"".join(entry.replace(b"m/0.bin", f"m/{i}.bin".encode()) for i in range(10))
    tail = bytearray(data[eocd:])
    tail[8:16] = struct.pack("<HHI", 10, 10, len(entries))
    z.write_bytes(data[:cd] + entries + bytes(tail))
    assert len(zipfile.ZipFile(z).infolist()) == 10
    with pytest.raises(DataError, match=r"refusing zip member 'm/1\.bin': .*overlapping members"):
        safe_extract(z, tmp_path / "out", what="overlap.zip")
    assert not (tmp_path / "out").exists()


def test_lying_compressed_size_refused(tmp_path):
    """Central directory claims 64 MiB were stored as 64 MiB (ratio 1), but the archive is tiny."""
    z = make_bomb(tmp_path / "bomb.zip")
    set_central_sizes(z, compress_size=64 * MiB)
    info = zipfile.ZipFile(z).infolist()[0]
    assert info.compress_size == info.file_size == 64 * MiB
    with pytest.raises(DataError, match="zeros.bin.*(overlapping members|limit of 100x)"):
        safe_extract(z, tmp_path / "out", what="bomb.zip")
    assert not (tmp_path / "out").exists()


def test_lying_uncompressed_size_stops_at_declared_size(tmp_path):
    """Central directory says 1000 bytes for 8 MiB of zeros: extraction stops at 1000, then fails its CRC."""
    z = make_bomb(tmp_path / "bomb.zip", zeros=8 * MiB)
    set_central_sizes(z, file_size=1000)
    assert zipfile.ZipFile(z).infolist()[0].file_size == 1000
    start = time.perf_counter()
    with pytest.raises(DataError, match=r"corrupt zip archive \(member 'm/zeros\.bin'"):
        safe_extract(z, tmp_path / "out", what="bomb.zip")
    assert time.perf_counter() - start < 1.0
    assert not (tmp_path / "out").exists()


def test_bytes_written_counted_against_declared_size_and_limit():
    with pytest.raises(DataError, match=r"a\.zip: refusing zip member 'x': it holds more than its declared 10 bytes"):
        copy_limited(io.BytesIO(b"0" * 11), io.BytesIO(), declared=10, room=100, what="a.zip", name="x")
    with pytest.raises(DataError, match=r"a\.zip: refusing zip member 'x': extracting it exceeds"):
        copy_limited(io.BytesIO(b"0" * 10), io.BytesIO(), declared=10, room=9, what="a.zip", name="x")
    with pytest.raises(DataError, match=r"corrupt zip archive \(member 'x' holds 9 of its declared 10 bytes\)"):
        copy_limited(io.BytesIO(b"0" * 9), io.BytesIO(), declared=10, room=100, what="a.zip", name="x")
    dst = io.BytesIO()
    assert copy_limited(io.BytesIO(b"0" * 10), dst, declared=10, room=10, what="a.zip", name="x") == 10


def test_limit_enforced_on_bytes_written(tmp_path, monkeypatch):
    """With the central-directory check out of the way, the byte count still stops the extraction."""
    monkeypatch.setattr(archive, "check_expansion", lambda *a, **k: None)
    z = make_zip(tmp_path / "a.zip", {"m/a.txt": "x" * 1000, "m/b.txt": "y" * 1000})
    with pytest.raises(DataError, match="'m/b.txt': extracting it exceeds the uncompressed size limit"):
        safe_extract(z, tmp_path / "out", what="a.zip", max_bytes=1500)
    assert not (tmp_path / "out").exists()  # m/a.txt, already written, is gone again


def test_real_archive_shapes_pass():
    def info(name, size, packed):
        i = zipfile.ZipInfo(name)
        i.file_size, i.compress_size = size, packed
        return i

    mpnet = [  # sizes from the central directory of the real joined mpnet zip
        info("all-mpnet-base-v2/", 0, 0),
        info("all-mpnet-base-v2/model.safetensors", 437971872, 404141842),
        info("all-mpnet-base-v2/tokenizer.json", 466021, 169282),
        info("all-mpnet-base-v2/vocab.txt", 231536, 102431),
        info("all-mpnet-base-v2/README.md", 10621, 3776),
        info("all-mpnet-base-v2/modules.json", 349, 131),
    ]
    check_expansion(mpnet, 404419573 + 2000, what="mpnet")
    beir = [info("big/corpus.jsonl", 5 * 2**30, 2**30), info("big/qrels/test.tsv", 50 * MiB, 4 * MiB)]
    check_expansion(beir, 2**30 + 4 * MiB + 1000, what="beir")
    assert MAX_COMPRESSION_RATIO == 100 and MAX_UNCOMPRESSED_BYTES == 32 * 2**30


def test_bzip2_member_refused(tmp_path):
    z = tmp_path / "a.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_BZIP2) as zf:
        zf.writestr("m/a.txt", "a")
    with pytest.raises(DataError, match="unsafe zip member 'm/a.txt' \\(compression method 12"):
        safe_extract(z, tmp_path / "out", what="a.zip")


def test_crc_failure_removes_members_already_written(tmp_path):
    z = tmp_path / "a.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("m/a.txt", b"A" * 200)
        zf.writestr("m/b.txt", b"B" * 200)
    data = bytearray(z.read_bytes())
    data[data.index(b"B" * 200) + 5] = ord("C")
    z.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"corrupt zip archive \(member 'm/b\.txt': Bad CRC-32"):
        safe_extract(z, tmp_path / "out", what="a.zip")
    assert not (tmp_path / "out").exists()


def test_extraction_folder_must_be_empty(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("keep")
    with pytest.raises(KeffError, match="extraction folder is not empty"):
        safe_extract(make_zip(tmp_path / "a.zip", {"m/a.txt": "a"}), tmp_path / "out", what="a.zip")
    assert files_under(tmp_path / "out") == ["keep.txt"]


# -- swapping into place ----------------------------------------------------------------------


def test_swap_keeps_old_copy_when_rename_fails(tmp_path):
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


def test_swap_default_aside_is_fresh_and_removed(tmp_path):
    target, new = tmp_path / "t", tmp_path / "staging" / "t"
    target.mkdir()
    (target / "old.txt").write_text("old")
    new.mkdir(parents=True)
    (new / "f.txt").write_text("new")
    (tmp_path / "staging" / ".previous").mkdir()  # what the old fixed aside name collided with
    swap_into_place(new, target)
    assert files_under(target) == ["f.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["staging", "t"]  # the old copy is gone


def test_swap_default_aside_restores_old_copy_on_failure(tmp_path):
    target = tmp_path / "t"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(OSError):
        swap_into_place(tmp_path / "missing", target)
    assert files_under(target) == ["old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t"]  # no aside folder left behind


def test_swap_without_old_target(tmp_path):
    new = tmp_path / "new"
    new.mkdir()
    swap_into_place(new, tmp_path / "t")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t"]

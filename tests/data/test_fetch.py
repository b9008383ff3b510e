"""Tests for keff.data.fetch against a local HTTP server (no real network)."""

from __future__ import annotations

import functools
import http.server
import threading
import zipfile
from pathlib import Path

import pytest

from keff.data.beir import load_beir
from keff.data.fetch import fetch_beir
from keff.errors import DataError, KeffError


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep test output clean
        pass


@pytest.fixture
def server(tmp_path):
    """Serve ``tmp_path / "www"`` on 127.0.0.1; yields (base_url, folder)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", www
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def zip_folder(folder: Path, zip_path: Path, arcroot: str, extra: dict[str, bytes] | None = None):
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                zf.write(f, f"{arcroot}/{f.relative_to(folder).as_posix()}")
        for name, data in (extra or {}).items():
            zf.writestr(name, data)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_fetch_and_load(server, tmp_path, tiny_beir):
    base, www = server
    zip_folder(tiny_beir, www / "tiny.zip", "tiny")
    dest = tmp_path / "datasets"
    path = fetch_beir("tiny", dest, base_url=base, progress=True)  # bar only on a terminal
    assert path == dest / "tiny"
    assert load_beir(path).doc_ids == ["d1", "d2", "d3"]
    assert leftovers(dest) == ["tiny"]  # no temp zip or extraction folder left


def test_existing_target_needs_overwrite(server, tmp_path, tiny_beir, make_beir):
    base, www = server
    zip_folder(tiny_beir, www / "tiny.zip", "tiny")
    dest = tmp_path / "datasets"
    old = make_beir(dest / "tiny", qrels={"old": "q1\td1\t1\n"})
    with pytest.raises(DataError, match="already exists; pass overwrite=True"):
        fetch_beir("tiny", dest, base_url=base, progress=False)
    assert (old / "qrels" / "old.tsv").exists()
    fetch_beir("tiny", dest, base_url=base, progress=False, overwrite=True)
    assert sorted(load_beir(dest / "tiny").qrels) == ["test", "train"]
    assert leftovers(dest) == ["tiny"]


def test_http_404_names_url_and_leaves_nothing(server, tmp_path):
    base, _ = server
    dest = tmp_path / "datasets"
    with pytest.raises(KeffError, match=rf"{base}/missing\.zip: HTTP 404"):
        fetch_beir("missing", dest, base_url=base, progress=False)
    assert not dest.exists()


def test_network_error_names_url(tmp_path):
    dest = tmp_path / "datasets"
    dest.mkdir()
    # port 9 on localhost: nothing listens, the connection is refused
    with pytest.raises(KeffError, match=r"could not download http://127\.0\.0\.1:9/x\.zip"):
        fetch_beir("x", dest, base_url="http://127.0.0.1:9", progress=False, timeout=5)
    assert leftovers(dest) == []


def test_corrupt_zip(server, tmp_path):
    base, www = server
    (www / "bad.zip").write_bytes(b"this is not a zip archive at all")
    dest = tmp_path / "datasets"
    dest.mkdir()
    with pytest.raises(DataError, match="not a valid zip archive"):
        fetch_beir("bad", dest, base_url=base, progress=False)
    assert leftovers(dest) == []


def test_zip_with_bad_crc(server, tmp_path, tiny_beir):
    base, www = server
    good = www / "tiny.zip"
    with zipfile.ZipFile(good, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("tiny/corpus.jsonl", b"A" * 200)
    data = bytearray(good.read_bytes())
    data[data.index(b"A" * 200) + 5] = ord("B")  # flip one stored byte: CRC no longer matches
    good.write_bytes(bytes(data))
    dest = tmp_path / "datasets"
    dest.mkdir()
    with pytest.raises(DataError, match="corrupt zip archive .*tiny/corpus.jsonl"):
        fetch_beir("tiny", dest, base_url=base, progress=False)
    assert leftovers(dest) == []


@pytest.mark.parametrize("member", ["../evil", "tiny/../../evil", "/abs/evil"])
def test_unsafe_member_rejected(server, tmp_path, tiny_beir, member):
    base, www = server
    zip_folder(tiny_beir, www / "tiny.zip", "tiny", extra={member: b"boom"})
    dest = tmp_path / "deep" / "datasets"
    dest.mkdir(parents=True)
    with pytest.raises(DataError, match="refusing unsafe zip member"):
        fetch_beir("tiny", dest, base_url=base, progress=False)
    assert leftovers(dest) == []
    assert not (tmp_path / "deep" / "evil").exists() and not (tmp_path / "evil").exists()


def test_zip_without_named_folder(server, tmp_path, tiny_beir):
    base, www = server
    zip_folder(tiny_beir, www / "tiny.zip", "other")
    dest = tmp_path / "datasets"
    with pytest.raises(DataError, match="has no tiny/ folder"):
        fetch_beir("tiny", dest, base_url=base, progress=False)
    assert not dest.exists()


def test_invalid_dataset_in_zip(server, tmp_path, make_beir):
    base, www = server
    src = make_beir(tmp_path / "src", qrels={"test": "q1\tnope\t1\n"})
    zip_folder(src, www / "tiny.zip", "tiny")
    dest = tmp_path / "datasets"
    with pytest.raises(DataError, match="failed validation: .*corpus id not in corpus.jsonl"):
        fetch_beir("tiny", dest, base_url=base, progress=False)
    assert not dest.exists()


@pytest.mark.parametrize("name", ["", "a/b", "..", "x y", "../up"])
def test_bad_names(tmp_path, name):
    with pytest.raises(DataError, match="dataset name must match"):
        fetch_beir(name, tmp_path, base_url="http://127.0.0.1:9", progress=False)


def add_zeros(zip_path: Path, member: str, size: int) -> Path:
    """Append a deflated member of ``size`` zero bytes (it compresses about 1000x)."""
    with zipfile.ZipFile(zip_path, "a", zipfile.ZIP_DEFLATED) as zf, zf.open(member, "w") as out:
        for _ in range(size >> 20):
            out.write(bytes(1 << 20))
    return zip_path


def test_zip_bomb_refused_and_old_copy_kept(server, tmp_path, tiny_beir, make_beir):
    import time

    base, www = server
    zip_folder(tiny_beir, www / "tiny.zip", "tiny")
    add_zeros(www / "tiny.zip", "tiny/zeros.bin", 64 << 20)
    assert (www / "tiny.zip").stat().st_size < 1 << 20
    dest = tmp_path / "datasets"
    make_beir(dest / "tiny", qrels={"old": "q1\td1\t1\n"})
    start = time.perf_counter()
    with pytest.raises(DataError, match=rf"{base}/tiny\.zip: refusing zip member 'tiny/zeros\.bin': .*limit of 100x"):
        fetch_beir("tiny", dest, base_url=base, progress=False, overwrite=True)
    assert time.perf_counter() - start < 5
    assert leftovers(dest) == ["tiny"]  # no .part file, no staging folder
    assert sorted(load_beir(dest / "tiny").qrels) == ["old"]  # the previous copy, untouched
    assert not (dest / "tiny" / "zeros.bin").exists()


def test_size_limits_configurable(server, tmp_path, tiny_beir):
    base, www = server
    zip_folder(tiny_beir, www / "tiny.zip", "tiny")
    dest = tmp_path / "datasets"
    with pytest.raises(DataError, match=r"refusing zip member 'tiny/.*over the limit of 100 bytes"):
        fetch_beir("tiny", dest, base_url=base, progress=False, max_bytes=100)
    assert not dest.exists()
    add_zeros(www / "tiny.zip", "tiny/zeros.bin", 2 << 20)
    with pytest.raises(DataError, match="limit of 100x"):
        fetch_beir("tiny", dest, base_url=base, progress=False)
    path = fetch_beir("tiny", dest, base_url=base, progress=False, max_ratio=5000)
    assert (path / "zeros.bin").stat().st_size == 2 << 20
    assert leftovers(dest) == ["tiny"]


def test_previous_entry_in_zip_with_overwrite(server, tmp_path, tiny_beir, make_beir):
    """A top-level '.previous' in the archive used to collide with where the old copy was moved."""
    base, www = server
    zip_folder(tiny_beir, www / "tiny.zip", "tiny", extra={".previous/x": b"x", ".previous/y/z": b"z"})
    dest = tmp_path / "datasets"
    make_beir(dest / "tiny", qrels={"old": "q1\td1\t1\n"})
    fetch_beir("tiny", dest, base_url=base, progress=False, overwrite=True)
    assert sorted(load_beir(dest / "tiny").qrels) == ["test", "train"]
    assert leftovers(dest) == ["tiny"]  # neither the old copy nor '.previous' is left around

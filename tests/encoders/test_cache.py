"""Tests for keff.encoders.cache: entry format, corruption handling, CachedEncoder counters."""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import struct
from pathlib import Path

import numpy as np
import pytest

from keff.encoders.base import estimate_tokens
from keff.encoders.cache import (
    MAGIC,
    MODEL_ORIGIN,
    CachedEncoder,
    EmbeddingCache,
    entry_key,
    pack_entry,
    unpack_entry,
)
from keff.encoders.hash_encoder import HashEncoder
from keff.errors import CacheCorrupt, KeffError


class Counting(HashEncoder):
    """HashEncoder that records every text it is asked to encode."""

    def __init__(self, **kw) -> None:
        super().__init__(dim=16, **kw)
        self.seen: list[str] = []

    def encode(self, texts, kind="doc", **kw):
        self.seen.extend(texts)
        return super().encode(texts, kind, **kw)


@pytest.fixture
def cached(tmp_path):
    return CachedEncoder(Counting(), EmbeddingCache(tmp_path / "emb"))


def entry_files(root):
    return sorted(p for p in root.rglob("*") if p.is_file())


KEY = bytes(range(32))


def test_entry_roundtrip_and_layout():
    v = np.arange(5, dtype=np.float32)
    data = pack_entry(v, KEY)
    assert data[:8] == MAGIC == b"KEFFVEC2" and struct.unpack("<I", data[8:12]) == (5,)
    assert data[12:44] == KEY and data[44:60] == bytes(16)  # key, then origin "model"
    assert data[60:92] == hashlib.sha256(data[:60] + data[92:]).digest()
    assert len(data) == 8 + 4 + 32 + 16 + 32 + 20
    entry = unpack_entry(data, 5, key=KEY)
    assert np.array_equal(entry.vector, v) and entry.origin == MODEL_ORIGIN and entry.key == KEY
    seeded = unpack_entry(pack_entry(v, KEY, "0123456789abcdef"), key=KEY)
    assert seeded.origin == "0123456789abcdef"
    with pytest.raises(KeffError, match="seed batch id"):
        pack_entry(v, KEY, "not-an-id")


@pytest.mark.parametrize(
    "mutate, why",
    [
        (lambda d: d[:30], "truncated header"),
        (lambda d: d[:-2], "payload is"),
        (lambda d: b"KEFFVEC0" + d[8:], "bad magic"),
        (lambda d: d[:-1] + bytes([d[-1] ^ 1]), "checksum"),
        (lambda d: d[:12] + bytes(32) + d[44:], "checksum"),  # key field edited
        (lambda d: d[:44] + b"0123456789abcdef" + d[60:], "checksum"),  # origin field edited
    ],
)
def test_unpack_detects_defects(mutate, why):
    with pytest.raises(CacheCorrupt, match=why):
        unpack_entry(mutate(pack_entry(np.ones(4, dtype=np.float32), KEY)), 4, key=KEY)


def test_unpack_detects_wrong_dim_and_wrong_key():
    with pytest.raises(CacheCorrupt, match="dim 4, expected 8"):
        unpack_entry(pack_entry(np.ones(4, dtype=np.float32), KEY), 8)
    with pytest.raises(CacheCorrupt, match="another text"):
        unpack_entry(pack_entry(np.ones(4, dtype=np.float32), KEY), 4, key=bytes(32))


def test_old_format_is_refused():
    payload = np.ones(4, dtype="<f4").tobytes()
    old = b"KEFFVEC1" + struct.pack("<I", 4) + hashlib.sha256(payload).digest() + payload
    with pytest.raises(CacheCorrupt, match="old entry format KEFFVEC1"):
        unpack_entry(old, 4)


def test_path_layout(tmp_path):
    cache = EmbeddingCache(tmp_path)
    p = cache.path_for("ab" * 32, "hello")
    key = p.name
    assert p.parent.parent.name == "ab" * 8 and p.parent.name == key[:2] and len(key) == 64
    assert cache.path_for("ab" * 32, "hello!") != p and cache.path_for("cd" * 32, "hello") != p


def test_hits_misses_and_equal_to_uncached(cached):
    texts = ["a b", "c d", "a b", "e"]
    first = cached.encode(texts)
    assert (cached.hits, cached.misses) == (0, 3)
    assert cached.encoder.seen == ["a b", "c d", "e"]  # duplicates encoded once
    second = cached.encode(["e", "a b", "new"])
    assert (cached.hits, cached.misses) == (2, 4)
    assert cached.encoder.seen[-1:] == ["new"]
    assert np.array_equal(first, Counting().encode(texts))
    assert np.array_equal(second[:2], first[[3, 0]])
    assert second.dtype == np.float32 and second.shape == (3, 16)


def test_passes_protocol_attributes_through(cached):
    inner = cached.encoder
    assert (cached.name, cached.dim, cached.fingerprint, cached.normalize) == (
        inner.name, inner.dim, inner.fingerprint, inner.normalize,
    )  # fmt: skip
    assert cached.encode([]).shape == (0, 16)


def test_symmetric_models_share_query_and_doc_entries(cached):
    cached.encode(["x y"], kind="doc")
    cached.encode(["x y"], kind="query")
    assert (cached.hits, cached.misses) == (1, 1)


def test_prefixed_kinds_are_separate_entries(tmp_path):
    enc = CachedEncoder(Counting(query_prefix="q "), EmbeddingCache(tmp_path))
    q = enc.encode(["x"], kind="query")
    d = enc.encode(["x"], kind="doc")
    assert enc.misses == 2 and enc.encoder.seen == ["x", "x"]
    assert not np.array_equal(q, d)


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corrupt_entry_detected_recomputed_rewritten(cached, caplog, damage):
    ref = cached.encode(["alpha beta"])
    (path,) = entry_files(cached.cache.root)
    data = path.read_bytes()
    path.write_bytes(data[:-7] if damage == "truncate" else data[:-1] + bytes([data[-1] ^ 0x40]))
    with caplog.at_level(logging.WARNING, logger="keff.encoders.cache"):
        again = cached.encode(["alpha beta"])
    assert str(path) in caplog.text and "corrupt" in caplog.text
    assert (cached.corrupt, cached.misses, cached.hits) == (1, 2, 0)
    assert np.array_equal(again, ref)
    assert path.read_bytes() == data  # rewritten intact
    cached.encode(["alpha beta"])
    assert cached.hits == 1


def test_interrupted_write_leaves_no_entry(cached, monkeypatch):
    def crash(*a, **kw):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        cached.encode(["gamma"])
    monkeypatch.undo()
    assert entry_files(cached.cache.root) == []  # neither the entry nor a temp file
    assert cached.cache.get_many(cached.fingerprint, ["gamma"]) == [None]


def test_failing_model_writes_nothing(tmp_path):
    class Failing(HashEncoder):
        def encode(self, texts, kind="doc", **kw):
            raise RuntimeError("model crashed")

    enc = CachedEncoder(Failing(), EmbeddingCache(tmp_path))
    with pytest.raises(RuntimeError):
        enc.encode(["a"])
    assert entry_files(tmp_path) == []


def test_different_fingerprints_do_not_share(tmp_path):
    cache = EmbeddingCache(tmp_path)
    a = CachedEncoder(HashEncoder(seed=1), cache)
    b = CachedEncoder(HashEncoder(seed=2), cache)
    a.encode(["word"])
    b.encode(["word"])
    assert b.misses == 1 and len(entry_files(tmp_path)) == 2


def test_put_many_validates_shape(tmp_path):
    with pytest.raises(KeffError, match="2 texts but vectors of shape"):
        EmbeddingCache(tmp_path).put_many("f" * 64, ["a", "b"], np.zeros((3, 4)))


def test_interrupted_job_keeps_finished_chunks(tmp_path):
    class FailsOnThirdCall(Counting):
        calls = 0

        def encode(self, texts, kind="doc", **kw):
            FailsOnThirdCall.calls += 1
            if FailsOnThirdCall.calls == 3:
                raise RuntimeError("killed")
            return super().encode(texts, kind, **kw)

    texts = [f"text {i}" for i in range(10)]
    enc = CachedEncoder(FailsOnThirdCall(), EmbeddingCache(tmp_path), chunk_size=4)
    with pytest.raises(RuntimeError, match="killed"):
        enc.encode(texts)
    assert len(entry_files(tmp_path)) == 8  # two finished chunks were stored
    again = CachedEncoder(Counting(), EmbeddingCache(tmp_path), chunk_size=4)
    again.encode(texts)
    assert again.hits == 8 and again.misses == 2
    with pytest.raises(KeffError, match="chunk_size"):
        CachedEncoder(Counting(), EmbeddingCache(tmp_path), chunk_size=0)


# -- entries are bound to their key (finding 3) -------------------------------------------------
def test_swapped_entries_are_recomputed_never_served(cached, caplog):
    texts = ["alpha beta", "gamma delta"]
    ref = cached.encode(texts)
    a, b = (cached.cache.path_for(cached.fingerprint, t) for t in texts)
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)  # two valid entries, each under the other text's name
    b.write_bytes(data_a)
    with caplog.at_level(logging.WARNING, logger="keff.encoders.cache"):
        again = cached.encode(texts)
    assert np.array_equal(again, ref)  # never the other text's vector
    assert (cached.corrupt, cached.misses, cached.hits) == (2, 4, 0)
    assert "another text" in caplog.text and str(a) in caplog.text
    assert (a.read_bytes(), b.read_bytes()) == (data_a, data_b)  # rewritten correctly


def test_old_format_entry_is_deleted_and_recomputed(cached, caplog):
    ref = cached.encode(["old entry"])
    path = cached.cache.path_for(cached.fingerprint, "old entry")
    payload = (ref[0] * -1).astype("<f4").tobytes()  # a valid v1 entry holding a wrong vector
    path.write_bytes(b"KEFFVEC1" + struct.pack("<I", 16) + hashlib.sha256(payload).digest() + payload)
    with caplog.at_level(logging.WARNING, logger="keff.encoders.cache"):
        again = cached.encode(["old entry"])
    assert np.array_equal(again, ref) and cached.corrupt == 1
    assert "old entry format KEFFVEC1" in caplog.text


def test_many_defects_are_logged_in_summary(cached, caplog):
    texts = [f"text {i}" for i in range(8)]
    cached.encode(texts)
    for t in texts:
        cached.cache.path_for(cached.fingerprint, t).write_bytes(b"KEFFVEC1junk")
    with caplog.at_level(logging.WARNING, logger="keff.encoders.cache"):
        cached.encode(texts)
    assert cached.corrupt == 8 and len(caplog.records) == 6
    assert "3 more corrupt embedding-cache entries" in caplog.text and "(3 in an old entry format)" in caplog.text


# -- keys of any str (finding 9) -----------------------------------------------------------------
def test_valid_text_keeps_its_key(tmp_path):
    fp = "ab" * 32
    for text in ["hello", "héllo wörld", "emoji \U0001f600", ""]:
        want = hashlib.sha256((fp + "\0" + text).encode("utf-8")).hexdigest()
        assert EmbeddingCache(tmp_path).path_for(fp, text).name == want
        assert entry_key(fp, text).hex() == want


def test_lone_surrogate_text_gets_a_key_and_roundtrips(tmp_path):
    cache = EmbeddingCache(tmp_path)
    fp = "cd" * 32
    paths = {cache.path_for(fp, t) for t in ["abc\ud800", "abc\udfff", "abc"]}
    assert len(paths) == 3
    cache.put_many(fp, ["abc\ud800"], np.ones((1, 4), dtype=np.float32))
    (vec,) = cache.get_many(fp, ["abc\ud800"], 4)
    assert vec is not None and np.array_equal(vec, np.ones(4))
    assert cache.get_many(fp, ["abc\udfff"], 4) == [None]


# -- permissions (finding 11) --------------------------------------------------------------------
def test_entries_get_the_umask_mode(cached):
    old = os.umask(0o027)
    try:
        cached.encode(["shared entry"])
    finally:
        os.umask(old)
    path = cached.cache.path_for(cached.fingerprint, "shared entry")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_unwritable_cache_is_one_clear_error(cached, monkeypatch):
    def denied(src, dst):
        raise PermissionError(13, "Permission denied", str(dst))

    monkeypatch.setattr(os, "replace", denied)
    with pytest.raises(KeffError, match="not writable") as info:
        cached.encode(["a", "b"])
    msg = str(info.value)
    assert str(cached.cache.root) in msg and "KEFF_CACHE_DIR" in msg and "cache=False" in msg


def test_cache_folder_that_cannot_be_created_is_one_clear_error(tmp_path, monkeypatch):
    enc = CachedEncoder(Counting(), EmbeddingCache(tmp_path / "emb"))

    def denied(self, *a, **kw):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(type(tmp_path), "mkdir", denied)
    with pytest.raises(KeffError, match=r"emb is not writable.*KEFF_CACHE_DIR"):
        enc.encode(["a"])


def test_unreadable_entry_is_a_clear_error_naming_the_file(cached, monkeypatch):
    cached.encode(["secret"])
    path = cached.cache.path_for(cached.fingerprint, "secret")
    from keff.encoders import cache as cache_module

    def guarded(file, *args, **kwargs):
        if Path(file) == path:
            raise PermissionError(13, "Permission denied", str(file))
        return open(file, *args, **kwargs)

    monkeypatch.setattr(cache_module, "open", guarded, raising=False)  # the module's reads go through it
    with pytest.raises(KeffError, match="cannot read embedding-cache entry") as info:
        cached.encode(["secret"])
    assert str(path) in str(info.value)


def permissions_enforced() -> bool:
    """False as root (os.geteuid() == 0) unless root runs without CAP_DAC_OVERRIDE."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        probe = os.path.join(d, "probe")
        with open(probe, "w"):
            pass
        os.chmod(probe, 0)
        try:
            with open(probe):
                return False
        except PermissionError:
            return True


needs_non_root = pytest.mark.skipif(not permissions_enforced(), reason="root ignores file permissions")


@needs_non_root
def test_read_only_cache_dir_real_chmod(tmp_path):
    root = tmp_path / "emb"
    root.mkdir()
    root.chmod(0o555)
    try:
        with pytest.raises(KeffError, match="not writable"):
            CachedEncoder(Counting(), EmbeddingCache(root)).encode(["a"])
    finally:
        root.chmod(0o755)


@needs_non_root
def test_unreadable_entry_real_chmod(cached):
    cached.encode(["secret"])
    path = cached.cache.path_for(cached.fingerprint, "secret")
    path.chmod(0o000)
    try:
        with pytest.raises(KeffError, match="cannot read embedding-cache entry"):
            cached.encode(["secret"])
    finally:
        path.chmod(0o644)


# -- progress (finding 13) and bulk writes -------------------------------------------------------
def test_progress_covers_missing_texts_by_estimated_tokens(tmp_path, monkeypatch):
    import keff.encoders.cache as cache_mod

    calls = []

    class Recorder:
        def __init__(self, description, total, **kwargs):
            self.description = description
            if description.startswith("encoding"):
                calls.append(("open", (description, total), kwargs))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def advance(self, n=1, *, cost=None):
            if self.description.startswith("encoding"):
                calls.append(("advance", n, cost))

    monkeypatch.setattr(cache_mod, "progress_bar", Recorder)
    inner = Counting()
    inner.max_tokens = 5
    enc = CachedEncoder(inner, EmbeddingCache(tmp_path), chunk_size=2)
    enc.encode(["cached"], show_progress=False)
    calls.clear()
    texts = ["cached", "a much longer text than the others", "b", "c c c"]
    enc.encode(texts, show_progress=True)
    missing = texts[1:]
    cost = estimate_tokens(missing, 5)
    (_, args, kwargs), *advances = calls
    assert args == ("encoding with hash", 3)
    assert kwargs == {"enabled": True, "unit": "texts", "cost_total": float(cost.sum())}
    assert advances == [("advance", 2, float(cost[:2].sum())), ("advance", 1, float(cost[2:].sum()))]


def test_put_many_without_fsync(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd))
    cache = EmbeddingCache(tmp_path)
    cache.put_many("ab" * 32, ["a", "b"], np.ones((2, 4)), fsync=False)
    assert synced == []
    cache.put_many("ab" * 32, ["c"], np.ones((1, 4)))
    assert len(synced) == 1
    assert all(v is not None for v in cache.get_many("ab" * 32, ["a", "b", "c"], 4))


def test_usage_counts_entries_per_fingerprint(cached):
    cached.encode(["a", "b", "c"])
    ((prefix, (n, size)),) = cached.cache.usage().items()
    assert prefix == cached.fingerprint[:16] and n == 3 and size == 3 * (92 + 16 * 4)

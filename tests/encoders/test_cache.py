"""Tests for keff.encoders.cache: entry format, corruption handling, CachedEncoder counters."""

from __future__ import annotations

import logging
import os
import struct

import numpy as np
import pytest

from keff.encoders.cache import MAGIC, CachedEncoder, EmbeddingCache, pack_entry, unpack_entry
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


def test_entry_roundtrip_and_layout():
    v = np.arange(5, dtype=np.float32)
    data = pack_entry(v)
    assert data[:8] == MAGIC and struct.unpack("<I", data[8:12]) == (5,)
    assert len(data) == 8 + 4 + 32 + 20
    assert np.array_equal(unpack_entry(data, 5), v)


@pytest.mark.parametrize(
    "mutate, why",
    [
        (lambda d: d[:30], "truncated header"),
        (lambda d: d[:-2], "payload is"),
        (lambda d: b"KEFFVEC0" + d[8:], "bad magic"),
        (lambda d: d[:-1] + bytes([d[-1] ^ 1]), "checksum"),
    ],
)
def test_unpack_detects_defects(mutate, why):
    with pytest.raises(CacheCorrupt, match=why):
        unpack_entry(mutate(pack_entry(np.ones(4, dtype=np.float32))), 4)


def test_unpack_detects_wrong_dim():
    with pytest.raises(CacheCorrupt, match="dim 4, expected 8"):
        unpack_entry(pack_entry(np.ones(4, dtype=np.float32)), 8)


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

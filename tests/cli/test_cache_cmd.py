"""``keff cache info`` and ``keff cache drop-seeded`` (the sub-app, before the lead registers it)."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from keff.cli.cache_cmd import app
from keff.encoders.cache import CachedEncoder, EmbeddingCache
from keff.encoders.hash_encoder import HashEncoder
from keff.encoders.seeding import seed_cache

TEXTS = [f"text {i} w{i} v{i * 7}" for i in range(100)]


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def seeded_cache(root) -> tuple[EmbeddingCache, str]:
    cache = EmbeddingCache(root)
    enc = CachedEncoder(HashEncoder(dim=128), cache)
    report = seed_cache(enc, TEXTS, HashEncoder(dim=128).encode(TEXTS), source="/data/corpus.npy", seed=0)
    return cache, report.batch_id


def test_info_lists_entries_and_batches(tmp_path):
    cache, batch_id = seeded_cache(tmp_path / "emb")
    res = invoke("info", "--root", str(cache.root))
    assert res.exit_code == 0, res.output
    assert "100 entries" in res.output and "1 seed batches" in res.output
    assert batch_id in res.output and "complete" in res.output and "hash" in res.output


def test_info_on_empty_cache(tmp_path):
    res = invoke("info", "--root", str(tmp_path / "none"))
    assert res.exit_code == 0 and "0 entries" in res.output


def test_drop_seeded_one_and_all(tmp_path):
    cache, batch_id = seeded_cache(tmp_path / "emb")
    res = invoke("drop-seeded", batch_id, "--root", str(cache.root))
    assert res.exit_code == 0, res.output
    assert f"dropped seed batch {batch_id}: 36 entries removed" in res.output
    assert cache.seed_batches() == []
    seeded_cache(tmp_path / "emb")
    res = invoke("drop-seeded", "--all", "--root", str(cache.root))
    assert res.exit_code == 0 and "entries removed" in res.output and cache.seed_batches() == []
    assert invoke("drop-seeded", "--root", str(cache.root)).exit_code != 0  # neither id nor --all
    kept = cache.get_many(HashEncoder(dim=128).fingerprint, TEXTS, 128)
    assert sum(v is not None for v in kept) == 64  # the model's own probe entries stay
    assert np.isfinite(np.stack([v for v in kept if v is not None])).all()

"""keff.precomputed: stored vectors are reused only after a fingerprint check."""

from __future__ import annotations

import numpy as np
import pytest

from keff.cli.demo_cmd import sample_corpus_dir
from keff.data import load_beir
from keff.encoders.cache import CachedEncoder, EmbeddingCache
from keff.encoders.hash_encoder import HashEncoder
from keff.errors import DataError, FingerprintMismatch
from keff.precomputed import seed_beir_vectors


def write_vectors(folder, dataset, encoder):
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "corpus.npy", encoder.encode(dataset.doc_texts, kind="doc"))
    np.save(folder / "queries.npy", encoder.encode(dataset.query_texts, kind="query"))
    return folder


def test_seeding_fills_the_cache_after_probe(tmp_path):
    ds = load_beir(sample_corpus_dir())
    raw = HashEncoder(dim=32)
    folder = write_vectors(tmp_path / "vecs", ds, raw)
    cached = CachedEncoder(HashEncoder(dim=32), EmbeddingCache(tmp_path / "cache"))
    reports = seed_beir_vectors(cached, ds, folder, probe=4)
    assert [r.n_probed for r in reports] == [4, 4]
    assert reports[0].min_cosine > 0.999
    before = cached.misses
    cached.encode(ds.doc_texts)
    assert cached.misses == before  # every document now comes from the cache


def test_wrong_vectors_are_refused_and_nothing_is_written(tmp_path):
    ds = load_beir(sample_corpus_dir())
    folder = write_vectors(tmp_path / "vecs", ds, HashEncoder(dim=32, seed=7))  # another model
    cache = EmbeddingCache(tmp_path / "cache")
    with pytest.raises(FingerprintMismatch):
        seed_beir_vectors(CachedEncoder(HashEncoder(dim=32), cache), ds, folder, probe=4)
    assert not any(p.is_file() for p in (tmp_path / "cache").rglob("*"))


def test_row_count_mismatch_names_the_file(tmp_path):
    ds = load_beir(sample_corpus_dir())
    folder = tmp_path / "vecs"
    folder.mkdir()
    np.save(folder / "corpus.npy", np.ones((3, 32), dtype=np.float32))
    with pytest.raises(DataError, match="corpus.npy"):
        seed_beir_vectors(CachedEncoder(HashEncoder(dim=32), EmbeddingCache(tmp_path / "c")), ds, folder)
    with pytest.raises(DataError, match="not found"):
        seed_beir_vectors(CachedEncoder(HashEncoder(dim=32), EmbeddingCache(tmp_path / "c")), ds, tmp_path / "nope")

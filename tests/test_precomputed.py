"""keff.precomputed: stored vectors are reused only after a fingerprint check, and only once."""

from __future__ import annotations

import numpy as np
import pytest

from keff.atomic import sha256_file
from keff.cli.demo_cmd import sample_corpus_dir
from keff.data import load_beir
from keff.encoders.cache import MODEL_ORIGIN, CachedEncoder, EmbeddingCache
from keff.encoders.hash_encoder import HashEncoder
from keff.errors import DataError, FingerprintMismatch
from keff.precomputed import load_matrix, load_matrix_with_sha256, seed_beir_vectors


class NoModel(HashEncoder):
    """HashEncoder(dim=32)'s fingerprint, but running the model fails the test."""

    def __init__(self) -> None:
        super().__init__(dim=32)

    def encode(self, texts, kind="doc", **kw):
        raise AssertionError("the model was run")


def write_vectors(folder, dataset, encoder):
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "corpus.npy", encoder.encode(dataset.doc_texts, kind="doc"))
    np.save(folder / "queries.npy", encoder.encode(dataset.query_texts, kind="query"))
    return folder


def origins(enc, texts):
    return {None if e is None else e.origin for e in enc.cache.get_entries(enc.fingerprint, texts, enc.dim)}


def test_seeding_fills_the_cache_after_probe(tmp_path):
    ds = load_beir(sample_corpus_dir())
    folder = write_vectors(tmp_path / "vecs", ds, HashEncoder(dim=32))
    cached = CachedEncoder(HashEncoder(dim=32), EmbeddingCache(tmp_path / "cache"))
    reports = seed_beir_vectors(cached, ds, folder, probe=4, seed=0)
    assert [r.n_probed for r in reports] == [4, 4]
    assert reports[0].min_cosine > 0.999 and reports[0].kind == "doc" and reports[1].kind == "query"
    before = cached.misses
    cached.encode(ds.doc_texts)
    assert cached.misses == before  # every document now comes from the cache


def test_small_files_are_checked_whole(tmp_path):
    ds = load_beir(sample_corpus_dir())
    folder = write_vectors(tmp_path / "vecs", ds, HashEncoder(dim=32))
    corpus = np.load(folder / "corpus.npy")
    corpus[[5, 6]] = corpus[[6, 5]]  # two rows the old 16-row sample (seed 0) never looked at
    np.save(folder / "corpus.npy", corpus)
    cached = CachedEncoder(HashEncoder(dim=32), EmbeddingCache(tmp_path / "cache"))
    with pytest.raises(FingerprintMismatch, match=r"row [56] has cosine"):
        seed_beir_vectors(cached, ds, folder)
    assert origins(cached, ds.doc_texts) <= {MODEL_ORIGIN}  # no precomputed vector cached
    assert cached.cache.seed_batches() == []


def test_wrong_vectors_are_refused_and_nothing_precomputed_is_written(tmp_path):
    ds = load_beir(sample_corpus_dir())
    folder = write_vectors(tmp_path / "vecs", ds, HashEncoder(dim=32, seed=7))  # another model
    cached = CachedEncoder(HashEncoder(dim=32), EmbeddingCache(tmp_path / "cache"))
    with pytest.raises(FingerprintMismatch):
        seed_beir_vectors(cached, ds, folder, probe=4)
    assert origins(cached, ds.doc_texts) <= {MODEL_ORIGIN, None}
    assert cached.cache.seed_batches() == []


def test_each_file_is_a_recorded_batch_seeded_once(tmp_path):
    ds = load_beir(sample_corpus_dir())
    folder = write_vectors(tmp_path / "vecs", ds, HashEncoder(dim=32))
    cache = EmbeddingCache(tmp_path / "cache")
    first = seed_beir_vectors(CachedEncoder(HashEncoder(dim=32), cache), ds, folder)
    records = {r["source"]: r for r in cache.seed_batches()}
    corpus = str((folder / "corpus.npy").resolve())
    assert set(records) == {corpus, str((folder / "queries.npy").resolve())}
    assert records[corpus]["source_sha256"] == sha256_file(folder / "corpus.npy")
    assert records[corpus]["n_rows"] == len(ds.doc_texts) and records[corpus]["complete"] is True
    again = seed_beir_vectors(CachedEncoder(NoModel(), cache), ds, folder)  # no model needed
    assert all(r.already_seeded for r in again)
    assert [r.batch_id for r in again] == [r.batch_id for r in first]
    assert "corpus.npy: already seeded" in again[0].message
    # a changed file is a new batch, checked again
    np.save(folder / "queries.npy", HashEncoder(dim=32).encode(ds.query_texts, kind="query") * 1.0000001)
    third = seed_beir_vectors(CachedEncoder(HashEncoder(dim=32), cache), ds, folder)
    assert third[0].already_seeded and not third[1].already_seeded
    assert len(cache.seed_batches()) == 3


def test_row_count_mismatch_names_the_file(tmp_path):
    ds = load_beir(sample_corpus_dir())
    folder = tmp_path / "vecs"
    folder.mkdir()
    np.save(folder / "corpus.npy", np.ones((3, 32), dtype=np.float32))
    with pytest.raises(DataError, match="corpus.npy"):
        seed_beir_vectors(CachedEncoder(HashEncoder(dim=32), EmbeddingCache(tmp_path / "c")), ds, folder)
    with pytest.raises(DataError, match="not found"):
        seed_beir_vectors(CachedEncoder(HashEncoder(dim=32), EmbeddingCache(tmp_path / "c")), ds, tmp_path / "nope")


def test_load_matrix_hashes_the_bytes_it_read(tmp_path):
    np.save(tmp_path / "m.npy", np.eye(3, dtype=np.float64))
    arr, digest = load_matrix_with_sha256(tmp_path / "m.npy")
    assert arr.dtype == np.float32 and digest == sha256_file(tmp_path / "m.npy")
    assert np.array_equal(load_matrix(tmp_path / "m.npy"), np.eye(3))
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    with pytest.raises(DataError, match="bad.npy"):
        load_matrix(tmp_path / "bad.npy")
    np.save(tmp_path / "v.npy", np.ones(3))
    with pytest.raises(DataError, match="2-D"):
        load_matrix(tmp_path / "v.npy")

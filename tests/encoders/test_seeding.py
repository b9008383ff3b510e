"""Tests for keff.encoders.seeding: precomputed vectors are checked before they are cached."""

from __future__ import annotations

import numpy as np
import pytest

from keff.encoders.cache import CachedEncoder, EmbeddingCache
from keff.encoders.hash_encoder import HashEncoder
from keff.encoders.seeding import seed_cache
from keff.errors import FingerprintMismatch, KeffError

from .conftest import precomputed, scifact_docs

WORDS = ["alpha beta", "gamma delta", "epsilon", "zeta eta theta", "iota kappa", "lambda mu"]


def entries(enc: CachedEncoder) -> list:
    return [p for p in enc.cache.root.rglob("*") if p.is_file()]


@pytest.fixture
def hashed(tmp_path):
    return CachedEncoder(HashEncoder(dim=32), EmbeddingCache(tmp_path))


def test_accepts_true_vectors_then_serves_them(hashed):
    vecs = HashEncoder(dim=32).encode(WORDS) * 3.0  # scale is normalised away
    report = seed_cache(hashed, WORDS, vecs, probe=3)
    assert (report.n_seeded, report.n_probed) == (6, 3)
    assert report.min_cosine > 0.9999 and report.fingerprint == hashed.fingerprint
    out = hashed.encode(WORDS)
    assert (hashed.hits, hashed.misses) == (6, 0)
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0)


def test_rejects_permutation_and_writes_nothing(hashed):
    vecs = HashEncoder(dim=32).encode(WORDS)[[1, 0, 2, 3, 4, 5]]
    with pytest.raises(FingerprintMismatch, match=r"row [01] has cosine"):
        seed_cache(hashed, WORDS, vecs, probe=6)
    assert entries(hashed) == []


def test_unnormalised_encoder_checks_scale(tmp_path):
    enc = CachedEncoder(HashEncoder(dim=32, normalize=False), EmbeddingCache(tmp_path))
    vecs = HashEncoder(dim=32, normalize=False).encode(WORDS)
    with pytest.raises(FingerprintMismatch, match="not the scale"):
        seed_cache(enc, WORDS, vecs * 2, probe=6)
    assert entries(enc) == []
    assert seed_cache(enc, WORDS, vecs, probe=2).n_seeded == 6


def test_shape_errors(hashed):
    good = HashEncoder(dim=32).encode(WORDS)
    with pytest.raises(KeffError, match="6 texts but 5 vector rows"):
        seed_cache(hashed, WORDS, good[:5])
    with pytest.raises(FingerprintMismatch, match="16-d but the encoder produces 32-d"):
        seed_cache(hashed, WORDS, good[:, :16])
    with pytest.raises(KeffError, match="2-D"):
        seed_cache(hashed, WORDS, good[0])
    bad = good.copy()
    bad[4, 0] = np.inf
    with pytest.raises(KeffError, match="row 4 is not finite"):
        seed_cache(hashed, WORDS, bad)
    with pytest.raises(KeffError, match="CachedEncoder"):
        seed_cache(HashEncoder(dim=32), WORDS, good)  # type: ignore[arg-type]
    assert entries(hashed) == []


def test_probe_sample_is_seeded(hashed):
    vecs = HashEncoder(dim=32).encode(WORDS)
    vecs[5] = -vecs[5]  # one wrong row, found only if probed
    outcomes = set()
    for seed in range(12):
        try:
            seed_cache(hashed, WORDS, vecs, probe=2, seed=seed)
            outcomes.add("ok")
        except FingerprintMismatch as exc:
            assert "row 5" in str(exc)
            outcomes.add("caught")
    assert outcomes == {"ok", "caught"}


@pytest.mark.slow
def test_real_minilm_rows_accepted_and_mpnet_rejected(minilm, shared_data, tmp_path):
    docs = scifact_docs(shared_data, 50)
    enc = CachedEncoder(minilm, EmbeddingCache(tmp_path / "emb"))
    mpnet_rows = precomputed(shared_data, "mpnet", 50)
    with pytest.raises(FingerprintMismatch, match="768-d"):
        seed_cache(enc, docs, mpnet_rows, probe=4)
    shuffled = precomputed(shared_data, "minilm", 50)[::-1]
    with pytest.raises(FingerprintMismatch, match="cosine"):
        seed_cache(enc, docs, shuffled, probe=4)
    assert entries(enc) == []
    report = seed_cache(enc, docs, precomputed(shared_data, "minilm", 50), probe=4)
    assert report.n_probed == 4 and report.min_cosine >= 0.999
    assert report.n_seeded == len(set(docs))
    assert len(entries(enc)) == report.n_seeded
    enc.encode(docs[:10])
    assert (enc.hits, enc.misses) == (len(set(docs[:10])), 0)


@pytest.mark.slow
def test_real_vectors_of_another_384d_model_rejected(minilm, minilm_l3, shared_data, tmp_path):
    docs = scifact_docs(shared_data, 20)
    enc = CachedEncoder(minilm, EmbeddingCache(tmp_path / "emb"))
    with pytest.raises(FingerprintMismatch, match=r"row \d+ has cosine -?0\.\d+ < 0\.999"):
        seed_cache(enc, docs, minilm_l3.encode(docs), probe=2)
    assert entries(enc) == []

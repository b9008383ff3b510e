"""Tests for keff.encoders.seeding: precomputed vectors are checked before they are cached."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from keff.encoders.cache import MODEL_ORIGIN, CachedEncoder, EmbeddingCache
from keff.encoders.hash_encoder import HashEncoder
from keff.encoders.seeding import (
    DUPLICATE_PROBE_MAX,
    detectable_rows,
    probe_size,
    seed_cache,
)
from keff.errors import FingerprintMismatch, KeffError

from .conftest import precomputed, scifact_docs

WORDS = ["alpha beta", "gamma delta", "epsilon", "zeta eta theta", "iota kappa", "lambda mu"]
DIM = 128


class Recording(HashEncoder):
    """HashEncoder that records every text it is asked to encode."""

    def __init__(self, **kw) -> None:
        super().__init__(dim=DIM, **kw)
        self.seen: list[str] = []

    def encode(self, texts, kind="doc", **kw):
        self.seen.extend(texts)
        return super().encode(texts, kind, **kw)


class Unloadable(HashEncoder):
    """The same fingerprint as HashEncoder(dim=DIM), but loading or running the model fails."""

    def __init__(self, **kw) -> None:
        super().__init__(dim=DIM, **kw)

    def encode(self, texts, kind="doc", **kw):
        raise AssertionError("the model was run")


def many_texts(n: int) -> list[str]:
    """n texts whose hash vectors are all distinct (five tokens unique to each text)."""
    return [f"document {i} on topic t{i % 17} in area a{i % 5}: n{i} id{i} k{i * 7919} z{i * 31}" for i in range(n)]


def true_vectors(texts: list[str], **kw) -> np.ndarray:
    vecs = HashEncoder(dim=DIM, **kw).encode(texts)
    assert len({v.tobytes() for v in vecs}) == len(set(texts))  # no accidental copies
    return vecs


def entries(enc: CachedEncoder) -> list:
    return [p for p in enc.cache.root.rglob("*") if p.is_file() and "seed-batches" not in p.parts]


def origins(enc: CachedEncoder, texts: list[str]) -> list[str | None]:
    return [None if e is None else e.origin for e in enc.cache.get_entries(enc.fingerprint, texts, enc.dim)]


def fixed_sample_of_old_code(n: int, probe: int = 16, seed: int = 0) -> set[int]:
    """Rows the original seeding always probed (seed 0, 16 rows): wrong rows hide outside them."""
    return set(np.random.default_rng(seed).choice(n, size=min(probe, n), replace=False).tolist())


def permute_rows_outside(vectors: np.ndarray, fraction: float, avoid: set[int], seed: int = 1) -> np.ndarray:
    """Rotate ``fraction`` of the rows among themselves, never touching rows in ``avoid``."""
    rng = np.random.default_rng(seed)
    allowed = np.array([i for i in range(len(vectors)) if i not in avoid])
    rows = rng.choice(allowed, size=int(round(fraction * len(vectors))), replace=False)
    out = vectors.copy()
    out[rows] = vectors[np.roll(rows, 1)]
    return out


@pytest.fixture
def hashed(tmp_path):
    return CachedEncoder(Recording(), EmbeddingCache(tmp_path))


# -- the basics ----------------------------------------------------------------------------------
def test_accepts_true_vectors_then_serves_them(hashed):
    report = seed_cache(hashed, WORDS, true_vectors(WORDS))
    assert report.n_rows == 6 and report.n_probed == 6  # small files are probed whole
    assert report.n_encoded == 6 and report.n_seeded == 0  # ... and cached as model output
    assert report.min_cosine > 0.9999 and report.fingerprint == hashed.fingerprint
    assert report.detect_rows == 1 and report.detect_fraction == pytest.approx(1 / 6)
    out = hashed.encode(WORDS)
    assert (hashed.hits, hashed.misses) == (6, 0)
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0)


def test_rejects_permutation_and_writes_no_precomputed_vector(hashed):
    vecs = true_vectors(WORDS)[[1, 0, 2, 3, 4, 5]]
    with pytest.raises(FingerprintMismatch, match=r"row [01] has cosine .*2 of 6 rows"):
        seed_cache(hashed, WORDS, vecs, probe=6)
    assert set(origins(hashed, WORDS)) == {MODEL_ORIGIN}  # only the model's own re-encodings
    assert hashed.cache.seed_batches() == []


def test_unnormalised_encoder_checks_scale(tmp_path):
    enc = CachedEncoder(HashEncoder(dim=DIM, normalize=False), EmbeddingCache(tmp_path))
    vecs = true_vectors(WORDS, normalize=False)
    with pytest.raises(FingerprintMismatch, match="not the scale"):
        seed_cache(enc, WORDS, vecs * 2, probe=6)
    assert enc.cache.seed_batches() == []
    fresh = CachedEncoder(HashEncoder(dim=DIM, normalize=False), EmbeddingCache(tmp_path / "other"))
    report = seed_cache(fresh, WORDS, vecs, probe=2, seed=0)
    assert report.n_seeded == 4 and report.n_encoded == 2
    assert np.allclose(fresh.encode(WORDS), vecs)


def test_shape_errors(hashed):
    good = true_vectors(WORDS)
    with pytest.raises(KeffError, match="6 texts but 5 vector rows"):
        seed_cache(hashed, WORDS, good[:5])
    with pytest.raises(FingerprintMismatch, match="16-d but the encoder produces 128-d"):
        seed_cache(hashed, WORDS, good[:, :16])
    with pytest.raises(KeffError, match="2-D"):
        seed_cache(hashed, WORDS, good[0])
    bad = good.copy()
    bad[4, 0] = np.inf
    with pytest.raises(KeffError, match="row 4 is not finite"):
        seed_cache(hashed, WORDS, bad)
    with pytest.raises(KeffError, match="CachedEncoder"):
        seed_cache(HashEncoder(dim=DIM), WORDS, good)  # type: ignore[arg-type]
    with pytest.raises(KeffError, match="probe must be >= 1"):
        seed_cache(hashed, WORDS, good, probe=0)
    assert entries(hashed) == []


def test_empty_input_reports_nothing(hashed):
    report = seed_cache(hashed, [], np.zeros((0, DIM), dtype=np.float32))
    assert report.n_rows == 0 and "nothing seeded" in report.message and entries(hashed) == []


# -- finding 2a: probe size, fresh sample per run, detection power --------------------------------
def test_probe_size_rule():
    assert [probe_size(n) for n in (0, 1, 64, 65, 1109, 1888, 3200, 5183, 25_000, 10**6)] == [
        0, 1, 64, 64, 64, 64, 64, 104, 500, 500,
    ]  # fmt: skip


def test_detection_power():
    assert detectable_rows(50, 50) == 1 and detectable_rows(0, 0) == 0
    assert detectable_rows(5183, 104) / 5183 == pytest.approx(0.0432, abs=5e-4)
    assert detectable_rows(1109, 64) / 1109 == pytest.approx(0.0676, abs=5e-4)
    assert detectable_rows(1888, 64) / 1888 == pytest.approx(0.0683, abs=5e-4)
    assert detectable_rows(25_000, 500) / 25_000 == pytest.approx(0.0091, abs=5e-4)
    # the definition: b wrong rows are missed with probability <= 1%, b - 1 with more
    n, s = 300, 40
    b = detectable_rows(n, s)

    def miss(k):
        return float(np.prod([(n - k - i) / (n - i) for i in range(s)]))

    assert miss(b) <= 0.01 < miss(b - 1)
    with pytest.raises(KeffError):
        detectable_rows(10, 11)


def test_report_states_detection_power(hashed):
    texts = many_texts(1000)
    report = seed_cache(hashed, texts, true_vectors(texts))
    assert report.n_probed == 64 and report.detect_rows == detectable_rows(1000, 64) == 68
    assert "a corruption of >= 6.8% of rows (68) is caught with 99% probability" in report.message


def test_default_sample_is_fresh_each_run(tmp_path):
    texts = many_texts(1000)
    vecs = true_vectors(texts)
    probed = []
    for run in range(2):
        enc = CachedEncoder(Recording(), EmbeddingCache(tmp_path / str(run)))
        report = seed_cache(enc, texts, vecs)
        probed.append(set(enc.encoder.seen))
        assert report.n_probed == 64 and report.sample_seed is not None
    assert probed[0] != probed[1]


def test_explicit_seed_reproduces_the_sample(tmp_path):
    texts = many_texts(500)
    seen = []
    for run in range(2):
        enc = CachedEncoder(Recording(), EmbeddingCache(tmp_path / str(run)))
        seed_cache(enc, texts, true_vectors(texts), seed=7)
        seen.append(enc.encoder.seen)
    assert seen[0] == seen[1] and len(seen[0]) == 64


def test_wrong_rows_outside_the_old_fixed_sample_are_caught(tmp_path):
    texts = many_texts(2000)
    planted = permute_rows_outside(true_vectors(texts), 0.20, fixed_sample_of_old_code(2000))
    for run in range(5):  # fresh random samples: caught every time
        enc = CachedEncoder(Recording(), EmbeddingCache(tmp_path / str(run)))
        with pytest.raises(FingerprintMismatch, match="has cosine"):
            seed_cache(enc, texts, planted)
        assert enc.cache.seed_batches() == []
    assert 0.20 >= detectable_rows(2000, probe_size(2000)) / 2000  # the power guarantees a catch


# -- finding 2b: the probe's vectors are cached as model output ----------------------------------
def test_probe_vectors_are_cached_as_model_entries(hashed):
    texts = many_texts(1000)
    report = seed_cache(hashed, texts, true_vectors(texts))
    probed = set(hashed.encoder.seen)
    assert len(probed) == report.n_encoded == 64 and report.n_seeded == 1000 - 64
    for text, origin in zip(texts, origins(hashed, texts)):
        assert origin == (MODEL_ORIGIN if text in probed else report.batch_id)


def test_refused_seed_keeps_the_probe_work(hashed):
    texts = many_texts(300)
    vecs = true_vectors(texts)
    vecs[:150] = np.roll(vecs[:150], 1, axis=0)  # half the file wrong
    with pytest.raises(FingerprintMismatch, match=r"texts re-encoded to check were cached as model output"):
        seed_cache(hashed, texts, vecs, seed=3)
    seen = list(hashed.encoder.seen)
    assert set(origins(hashed, seen)) == {MODEL_ORIGIN}
    hashed.encode(seen)
    assert hashed.misses == 0  # served from the cache


def test_model_entries_already_cached_are_compared_too(hashed):
    texts = many_texts(400)
    hashed.encode(texts[:200])  # the model encoded these earlier
    vecs = true_vectors(texts)
    vecs[[10, 11]] = vecs[[11, 10]]  # two wrong rows among them
    with pytest.raises(FingerprintMismatch, match=r"row 1[01] has cosine"):
        seed_cache(hashed, texts, vecs, probe=1, seed=0)


def test_existing_entries_are_not_overwritten(hashed):
    texts = many_texts(100)
    hashed.encode(texts[:30])
    report = seed_cache(hashed, texts, true_vectors(texts), seed=0)
    assert report.n_cached + report.n_encoded + report.n_seeded == 100 and report.n_cached == 30
    assert set(origins(hashed, texts[:30])) == {MODEL_ORIGIN}
    assert report.n_checked >= 30


# -- finding 2c: cheap whole-file checks -----------------------------------------------------------
def test_rows_not_unit_length_are_refused_before_any_model_run(tmp_path):
    texts = many_texts(200)
    vecs = true_vectors(texts)
    vecs[123] *= 1.01
    enc = CachedEncoder(Unloadable(), EmbeddingCache(tmp_path))
    with pytest.raises(FingerprintMismatch, match=r"1 of 200 rows are not unit length \(row 123 has norm 1.01"):
        seed_cache(enc, texts, vecs)
    with pytest.raises(FingerprintMismatch, match="not unit length"):
        seed_cache(enc, texts, true_vectors(texts) * 3.0)
    assert entries(enc) == []


def test_copied_row_is_always_probed_and_refused(tmp_path):
    texts = many_texts(300)
    vecs = true_vectors(texts)
    old = fixed_sample_of_old_code(300, probe=1)
    i, j = [r for r in range(300) if r not in old][:2]
    vecs[i] = vecs[j]  # row i now carries row j's vector
    enc = CachedEncoder(Recording(), EmbeddingCache(tmp_path))
    with pytest.raises(FingerprintMismatch, match=f"row {i} has cosine"):
        seed_cache(enc, texts, vecs, probe=1, seed=0)
    assert {texts[i], texts[j]} <= set(enc.encoder.seen)


def test_too_many_copies_are_refused_without_the_model(tmp_path):
    texts = many_texts(2 * DUPLICATE_PROBE_MAX + 2)
    vecs = true_vectors(texts)
    half = len(texts) // 2
    vecs[half:] = vecs[:half]
    enc = CachedEncoder(Unloadable(), EmbeddingCache(tmp_path))
    with pytest.raises(FingerprintMismatch, match="look copied"):
        seed_cache(enc, texts, vecs)
    assert entries(enc) == []


def test_identical_texts_may_share_vectors_but_must_agree(tmp_path):
    texts = [*WORDS, WORDS[0], WORDS[2]]
    vecs = true_vectors(texts)
    enc = CachedEncoder(Recording(), EmbeddingCache(tmp_path / "a"))
    assert seed_cache(enc, texts, vecs, probe=1, seed=0).n_rows == 8
    vecs[6] = vecs[1]
    enc = CachedEncoder(Unloadable(), EmbeddingCache(tmp_path / "b"))
    with pytest.raises(FingerprintMismatch, match="rows 0 and 6 are the same text but their vectors differ"):
        seed_cache(enc, texts, vecs)


# -- finding 2d/2e: batch records, drop, seed once -----------------------------------------------
def test_batch_record_lists_and_drops(hashed):
    texts = many_texts(500)
    report = seed_cache(hashed, texts, true_vectors(texts), source="/data/corpus.npy", source_sha256="ab" * 32)
    (record,) = hashed.cache.seed_batches()
    assert hashed.cache.seed_batches(fingerprint="0" * 64) == []
    assert record["batch_id"] == report.batch_id and record["complete"] is True
    assert record["source"] == "/data/corpus.npy" and record["source_sha256"] == "ab" * 32
    assert (record["kind"], record["n_rows"], record["probe_size"], record["n_seeded"]) == ("doc", 500, 64, 436)
    assert record["min_cosine"] == report.min_cosine and "mean_cosine" in record
    assert record["keff_version"] and record["created"] and record["fingerprint"] == hashed.fingerprint
    model_texts = set(hashed.encoder.seen)
    assert hashed.cache.drop_seed_batch(report.batch_id) == 436
    assert hashed.cache.seed_batches() == []
    for text, origin in zip(texts, origins(hashed, texts)):
        assert origin == (MODEL_ORIGIN if text in model_texts else None)
    with pytest.raises(KeffError, match="no seed batch"):
        hashed.cache.drop_seed_batch(report.batch_id)
    with pytest.raises(KeffError, match="not a seed batch id"):
        hashed.cache.drop_seed_batch("../../etc")


def test_reseeding_is_a_no_op_that_loads_no_model(tmp_path):
    texts = many_texts(300)
    vecs = true_vectors(texts)
    cache = EmbeddingCache(tmp_path)
    first = seed_cache(CachedEncoder(Recording(), cache), texts, vecs)
    again = seed_cache(CachedEncoder(Unloadable(), cache), texts, vecs)
    assert again.already_seeded and again.batch_id == first.batch_id
    assert (again.n_seeded, again.n_probed, again.n_encoded) == (0, 0, 0)
    assert again.min_cosine == first.min_cosine and "no model loaded" in again.message
    assert len(cache.seed_batches()) == 1


def test_other_file_or_texts_or_kind_is_another_batch(tmp_path):
    texts = many_texts(100)
    vecs = true_vectors(texts)
    cache = EmbeddingCache(tmp_path)
    ids = {seed_cache(CachedEncoder(Recording(), cache), texts, vecs, source_sha256="1" * 64).batch_id}
    ids.add(seed_cache(CachedEncoder(Recording(), cache), texts, vecs, source_sha256="2" * 64).batch_id)
    ids.add(seed_cache(CachedEncoder(Recording(), cache), texts, vecs, source_sha256="1" * 64, kind="query").batch_id)
    assert len(ids) == 3 and len(cache.seed_batches()) == 3


def test_reseeding_after_drop_or_lost_entries_checks_again(tmp_path):
    texts = many_texts(200)
    vecs = true_vectors(texts)
    cache = EmbeddingCache(tmp_path)
    report = seed_cache(CachedEncoder(Recording(), cache), texts, vecs)
    cache.drop_seed_batch(report.batch_id)
    enc = CachedEncoder(Recording(), cache)
    again = seed_cache(enc, texts, vecs)
    assert not again.already_seeded and again.n_seeded > 0
    cache.path_for(enc.fingerprint, texts[0]).unlink()  # an entry lost since
    assert not seed_cache(CachedEncoder(Recording(), cache), texts, vecs).already_seeded


def test_interrupted_seed_is_listed_incomplete_and_redone(tmp_path, monkeypatch):
    texts = many_texts(200)
    vecs = true_vectors(texts)
    cache = EmbeddingCache(tmp_path)

    def power_cut():
        raise OSError("power cut")

    monkeypatch.setattr(cache, "sync", power_cut)
    with pytest.raises(OSError, match="power cut"):
        seed_cache(CachedEncoder(Recording(), cache), texts, vecs)
    (record,) = cache.seed_batches()
    assert record["complete"] is False
    monkeypatch.undo()
    report = seed_cache(CachedEncoder(Recording(), cache), texts, vecs)
    assert not report.already_seeded and cache.seed_batches()[0]["complete"] is True


def test_bulk_seed_syncs_once_instead_of_per_entry(hashed, monkeypatch):
    texts = many_texts(400)
    vecs = true_vectors(texts)
    fsyncs, syncs = [], []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (fsyncs.append(fd), real_fsync(fd)))
    monkeypatch.setattr(os, "sync", lambda: syncs.append(1))
    report = seed_cache(hashed, texts, vecs)
    assert syncs == [1]
    assert len(fsyncs) == report.n_encoded + 2  # model entries and the two record writes only


def test_record_files_are_plain_json(hashed):
    texts = many_texts(80)
    report = seed_cache(hashed, texts, true_vectors(texts))
    path = hashed.cache.batches_dir / f"{report.batch_id}.json"
    assert json.loads(path.read_text())["batch_id"] == report.batch_id


# -- real model, real data -----------------------------------------------------------------------
@pytest.mark.slow
def test_real_minilm_rows_accepted_and_mpnet_rejected(minilm, shared_data, tmp_path):
    docs = scifact_docs(shared_data, 50)
    enc = CachedEncoder(minilm, EmbeddingCache(tmp_path / "emb"))
    mpnet_rows = precomputed(shared_data, "mpnet", 50)
    with pytest.raises(FingerprintMismatch, match="768-d"):
        seed_cache(enc, docs, mpnet_rows)
    shuffled = precomputed(shared_data, "minilm", 50)[::-1]
    with pytest.raises(FingerprintMismatch, match="cosine"):
        seed_cache(enc, docs, shuffled, probe=4)
    assert enc.cache.seed_batches() == []
    report = seed_cache(enc, docs, precomputed(shared_data, "minilm", 50), probe=4)
    assert report.min_cosine >= 0.999 and report.n_checked >= 4
    assert report.n_seeded + report.n_encoded + report.n_cached == len(set(docs))
    enc.encode(docs[:10])
    assert (enc.hits, enc.misses) == (len(set(docs[:10])), 0)


@pytest.mark.slow
def test_real_vectors_of_another_384d_model_rejected(minilm, minilm_l3, shared_data, tmp_path):
    docs = scifact_docs(shared_data, 20)
    enc = CachedEncoder(minilm, EmbeddingCache(tmp_path / "emb"))
    with pytest.raises(FingerprintMismatch, match=r"row \d+ has cosine -?0\.\d+ < 0\.999"):
        seed_cache(enc, docs, minilm_l3.encode(docs), probe=2)
    assert enc.cache.seed_batches() == []


@pytest.mark.slow
def test_real_scifact_planted_permutation_is_refused(minilm, shared_data, tmp_path):
    """Finding 2 on real data: 20% of SciFact minilm rows permuted, all outside the old fixed sample.

    The old check (16 rows, seed 0) accepted such a file and cached it for good. A 600-abstract
    slice keeps it fast: probe_size(600) = 64 rows catch >= 6.9% wrong rows with 99% probability,
    so 20% is caught (the miss probability is about 1e-6).
    """
    n = 600
    docs = scifact_docs(shared_data, n)
    true = precomputed(shared_data, "minilm", n)
    planted = permute_rows_outside(true, 0.20, fixed_sample_of_old_code(n))
    cache = EmbeddingCache(tmp_path / "emb")
    with pytest.raises(FingerprintMismatch, match="do not match encoder 'minilm'"):
        seed_cache(CachedEncoder(minilm, cache), docs, planted)
    assert detectable_rows(n, probe_size(n)) / n < 0.20  # the documented power guarantees the catch
    assert cache.seed_batches() == []
    report = seed_cache(CachedEncoder(minilm, cache), docs, true)  # the true rows pass
    assert report.min_cosine >= 0.999 and report.n_rows == n
    assert "is caught with 99% probability" in report.message

    class NoModel:
        name, dim, normalize, fingerprint = minilm.name, minilm.dim, minilm.normalize, minilm.fingerprint
        prepare = staticmethod(minilm.prepare)

        def encode(self, *a, **kw):
            raise AssertionError("the model was run")

    again = seed_cache(CachedEncoder(NoModel(), cache), docs, true)  # seed once: no model needed
    assert again.already_seeded and again.batch_id == report.batch_id

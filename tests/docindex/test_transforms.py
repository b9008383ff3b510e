"""Transforms attached to an index: query maps, fusion weights and specialists applied at search time,
checked against the index's encoders, verified on opening, committed atomically."""

from __future__ import annotations

import json

import numpy as np
import pytest

from keff.arrays import l2_normalize
from keff.cli.demo_cmd import sample_corpus_dir
from keff.data import load_beir
from keff.docindex import Index, read_documents
from keff.docindex.evaluate import evaluate_index, fit_fusion_weights, fit_query_map
from keff.docindex.index import detach_transform
from keff.docindex.manifest import MANIFEST
from keff.docindex.transforms import FusionWeights
from keff.encoders import get_encoder, registry
from keff.encoders.hash_encoder import HashEncoder
from keff.errors import DataError, FingerprintMismatch, FormatError, KeffError
from keff.fusion import fit_specialist, fusion_weights
from keff.maps import make_map
from keff.tasks import beir_task, evaluate_encoder
from keff.uncertainty import CentroidDistance

SAMPLE = str(sample_corpus_dir())


@pytest.fixture
def hash2(monkeypatch):
    """A second registry encoder: the hash encoder with another seed and width."""

    def load(*, name, normalize, batch_size):
        return HashEncoder(dim=32, seed=1, normalize=normalize, batch_size=batch_size)

    monkeypatch.setitem(registry._BY_NAME, "hash2", registry.EncoderSpec("hash2", "test", 32, "hash", "-", load))
    return "hash2"


@pytest.fixture
def sample():
    ds = load_beir(SAMPLE)
    return ds, beir_task(ds, "train"), beir_task(ds, "test")


def _map(tmp_path, name, encoder, *, dim=64, seed=0, prov=None):
    """A fitted affine map of ``dim`` saved with projection provenance of ``encoder``."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((200, dim)).astype(np.float32)
    m = make_map("affine").fit(X, X + 0.3 * rng.standard_normal((200, dim)).astype(np.float32))
    enc = get_encoder(encoder)
    meta = prov if prov is not None else {"encoder": {"name": encoder, "fingerprint": enc.fingerprint}}
    return m, m.save(tmp_path / f"{name}.sef", meta=meta)


def test_query_maps_apply_in_attach_order(tmp_path):
    ix = Index.build(tmp_path / "ix", read_documents(SAMPLE), ["hash"])
    key = ix.encoder_keys[0]
    m1, p1 = _map(tmp_path, "one", "hash", seed=1)
    m2, p2 = _map(tmp_path, "two", "hash", seed=2)
    entry = ix.attach(p1)
    assert entry["kind"] == "query-map" and entry["encoders"] == [key] and entry["path"].startswith("transforms/")
    ix.attach(p2)
    texts = ["squash commits", "proof yeast"]
    q = get_encoder("hash").encode(texts, kind="query")
    want = l2_normalize(m2.transform(l2_normalize(m1.transform(q))))
    hits = ix.search(texts, k=5)
    rows = [[ix.documents.row_of[h.id] for h in row] for row in hits]
    for i, row in enumerate(rows):
        full = want[i] @ ix.vectors[key].T
        assert row == list(np.argsort(-full, kind="stable")[:5])
        np.testing.assert_allclose([h.score for h in hits[i]], full[row], rtol=1e-5)
    reopened = Index.open(tmp_path / "ix")
    assert [t.name for t in reopened.transforms] == ["one", "two"]
    assert [[h.id for h in r] for r in reopened.search(texts, k=5)] == [[h.id for h in r] for r in hits]
    assert [h["action"] for h in reopened.info()["history"]] == ["build", "attach", "attach"]


def test_maps_of_another_encoder_or_width_are_refused(tmp_path, hash2):
    ix = Index.build(tmp_path / "ix", read_documents(SAMPLE), ["hash"])
    _, other = _map(tmp_path, "other", "hash2", dim=32)
    with pytest.raises(FingerprintMismatch, match=r"hash2.*none of the index's encoders.*hash-"):
        ix.attach(other)
    _, wide = _map(tmp_path, "wide", "hash", dim=32)
    with pytest.raises(KeffError, match="maps 32-d to 32-d vectors, but index encoder .* is 64-d"):
        ix.attach(wide)
    _, bare = _map(tmp_path, "bare", "hash", prov={})
    with pytest.raises(FingerprintMismatch, match="does not record the encoder"):
        ix.attach(bare)
    fp = get_encoder("hash").fingerprint
    align = {"source": {"name": "hash", "fingerprint": fp}, "target": {"name": "mpnet", "fingerprint": "f" * 64}}
    _, cross = _map(tmp_path, "cross", "hash", prov=align)
    with pytest.raises(KeffError, match="into the space of 'mpnet'"):
        ix.attach(cross)
    with pytest.raises(KeffError, match="no encoder 'nope'"):
        ix.attach(_map(tmp_path, "ok", "hash")[1], encoder="nope")
    assert ix.manifest.transforms == [] and not any((tmp_path / "ix" / "transforms").glob("*"))
    assert Index.open(tmp_path / "ix").manifest.generation == 1  # nothing was committed


def test_fusion_weights_combine_cosines_and_skip_weight_zero(tmp_path, hash2, sample, monkeypatch):
    _, train, _ = sample
    ix = Index.build(tmp_path / "ix", read_documents(SAMPLE), ["hash", "hash2"])
    a, b = ix.encoder_keys
    fw = fit_fusion_weights(ix, train, step=0.25)
    assert fw.weights.shape == (2,) and abs(fw.weights.sum() - 1) < 1e-9
    assert fw.info["objective"] == "ndcg@10" and fw.info["n_queries"] == len(train.query_ids)
    assert len(fw.info["evaluated"]) == 5  # the grid 0, .25, ..., 1
    chosen = FusionWeights(fw.encoders, np.array([0.7, 0.3]), fw.info)
    chosen.save(tmp_path / "fw.sef")
    entry = ix.attach(tmp_path / "fw.sef", name="fusion")
    assert entry["kind"] == "fusion-weights" and entry["encoders"] == [a, b]
    assert ix.transforms.weighting == "fusion-weights"
    texts = ["squash commits before pushing", "bread dough"]
    q = ix.encode_queries(texts)
    full = 0.7 * (q[a] @ ix.vectors[a].T) + 0.3 * (q[b] @ ix.vectors[b].T)
    hits = ix.search(texts, k=4)
    for i, row in enumerate(hits):
        np.testing.assert_allclose([h.score for h in row], np.sort(full[i])[::-1][:4], rtol=1e-5)
    # weight 0: the encoder is not even run on the queries
    FusionWeights(fw.encoders, np.array([1.0, 0.0]), fw.info).save(tmp_path / "only_a.sef")
    ix.attach(tmp_path / "only_a.sef", name="fusion", replace=True)
    assert [t.name for t in ix.transforms] == ["fusion"] and ix.transforms.keys() == [a]
    used = []
    original = Index.encoder

    def spy(self, key):
        used.append(key)
        return original(self, key)

    monkeypatch.setattr(Index, "encoder", spy)
    best = np.argsort(-(q[a][0] @ ix.vectors[a].T), kind="stable")[:3]
    assert [h.id for h in ix.search(texts, k=3)[0]] == [ix.documents.ids[r] for r in best]
    assert set(used) == {a}


def test_fusion_weights_must_cover_exactly_the_index_encoders(tmp_path, hash2, sample):
    _, train, _ = sample
    two = Index.build(tmp_path / "two", read_documents(SAMPLE), ["hash", "hash2"])
    fit_fusion_weights(two, train).save(tmp_path / "fw.sef")
    one = Index.build(tmp_path / "one", read_documents(SAMPLE), ["hash"])
    with pytest.raises(FingerprintMismatch, match="fitted for encoders hash .*, hash2 .*; the index has hash-"):
        one.attach(tmp_path / "fw.sef")
    with pytest.raises(KeffError, match="combine several encoders"):
        fit_fusion_weights(one, train)


def test_fitting_fusion_never_reads_the_test_queries(tmp_path, hash2):
    """Scrambling the test split (texts and judgements) changes nothing about weights fitted on train."""
    import shutil

    folder = tmp_path / "data"
    shutil.copytree(SAMPLE, folder)
    ix = Index.build(tmp_path / "ix", read_documents(folder), ["hash", "hash2"])

    def fit():
        fw = fit_fusion_weights(ix, beir_task(load_beir(folder, splits=["train"]), "train"), step=0.1)
        return fw.weights.tolist(), fw.info["evaluated"]

    before = fit()
    ds = load_beir(folder)
    test_ids = set(ds.qrels["test"])
    lines = (folder / "queries.jsonl").read_text().splitlines()
    rng = np.random.default_rng(0)
    scrambled = []
    for line in lines:
        q = json.loads(line)
        if q["_id"] in test_ids:
            q["text"] = " ".join(rng.permutation(q["text"].split() + ["bread", "git", "rebase"]))
        scrambled.append(json.dumps(q))
    (folder / "queries.jsonl").write_text("\n".join(scrambled) + "\n")
    docs = ds.doc_ids
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{docs[rng.integers(len(docs))]}\t1\n" for q in test_ids)
    )
    assert load_beir(folder).split_queries("test")[1] != ds.split_queries("test")[1]
    assert fit() == before


def test_specialists_weight_each_query_by_precision(tmp_path, hash2, sample):
    ds, train, _ = sample
    ix = Index.build(tmp_path / "ix", read_documents(SAMPLE), ["hash", "hash2"])
    specs = {}
    for name, key in zip(("hash", "hash2"), ix.encoder_keys):
        spec = fit_specialist(name, get_encoder(name), anchors_own=None, anchors_frame=None,
                              domain_texts_own=ix.vectors[key][:20], uncertainty=CentroidDistance())  # fmt: skip
        specs[key] = spec
        spec.save(tmp_path / f"{name}.sef")
    ix.attach(tmp_path / "hash.sef")
    assert ix.transforms.weighting == "equal" and "missing" in ix.transforms.notes[0]
    ix.attach(tmp_path / "hash2.sef")
    assert ix.transforms.weighting == "specialists (kalman)" and not ix.transforms.notes
    texts = train.query_texts[:5]
    q = ix.encode_queries(texts)
    var = np.stack([specs[k].variance(specs[k].to_frame(q[k])) for k in ix.encoder_keys])
    w = fusion_weights(var, "kalman")
    _, weights = ix.prepare_queries(texts)
    np.testing.assert_allclose(weights, w, rtol=1e-6)
    full = sum(w[j][:, None] * (q[k] @ ix.vectors[k].T) for j, k in enumerate(ix.encoder_keys))
    got = ix.search(texts, k=3)
    np.testing.assert_allclose([[h.score for h in r] for r in got], -np.sort(-full, axis=1)[:, :3], rtol=1e-5)
    # one weighting at a time
    FusionWeights([{"name": s.encoder, "fingerprint": s.fingerprint} for s in specs.values()],
                  np.array([0.5, 0.5])).save(tmp_path / "fw.sef")  # fmt: skip
    with pytest.raises(KeffError, match="already weights its encoders with specialist"):
        ix.attach(tmp_path / "fw.sef")
    with pytest.raises(KeffError, match="already has specialist 'hash'"):
        ix.attach(tmp_path / "hash.sef", name="again")


def test_opening_refuses_a_modified_transform_and_detach_recovers(tmp_path):
    ix = Index.build(tmp_path / "ix", read_documents(SAMPLE), ["hash"])
    entry = ix.attach(_map(tmp_path, "m", "hash")[1])
    stored = tmp_path / "ix" / entry["path"]
    data = bytearray(stored.read_bytes())
    data[-5] ^= 1
    stored.write_bytes(bytes(data))
    with pytest.raises(FormatError, match="SHA-256 mismatch.*keff index detach"):
        Index.open(tmp_path / "ix")
    assert detach_transform(tmp_path / "ix", "m")["name"] == "m"
    reopened = Index.open(tmp_path / "ix")
    assert len(reopened.transforms) == 0 and not stored.exists()  # garbage collected on commit
    with pytest.raises(KeffError, match="no transform named 'm'"):
        reopened.detach("m")


def test_manifest_entries_are_untrusted(tmp_path):
    ix = Index.build(tmp_path / "ix", read_documents(SAMPLE), ["hash"])
    ix.attach(_map(tmp_path, "m", "hash")[1])
    path = tmp_path / "ix" / MANIFEST
    good = json.loads(path.read_text())
    for change, message in (
        (lambda t: t.update(path="../m.sef"), "leaves the index folder"),
        (lambda t: t.update(kind="routed"), "unknown kind"),
        (lambda t: t.update(kind="fusion-weights"), "holds a query-map, but the index recorded a fusion-weights"),
        (lambda t: t.update(encoders=["gone-1234"]), "no longer has"),
        (lambda t: t.update(name="../x"), "bad name"),
    ):
        doc = json.loads(json.dumps(good))
        change(doc["transforms"][0])
        path.write_text(json.dumps(doc))
        with pytest.raises(KeffError, match=message):
            Index.open(tmp_path / "ix")


def test_attach_refuses_names_and_files_it_cannot_take(tmp_path):
    ix = Index.build(tmp_path / "ix", read_documents(SAMPLE), ["hash"])
    _, path = _map(tmp_path, "m", "hash")
    ix.attach(path)
    with pytest.raises(KeffError, match="already has a transform named 'm'"):
        ix.attach(path)
    with pytest.raises(DataError, match="bad transform name"):
        ix.attach(path, name="a/b")
    with pytest.raises(DataError, match="no such file"):
        ix.attach(tmp_path / "nope.sef")
    (tmp_path / "junk.sef").write_bytes(b"not a sef file")
    with pytest.raises(FormatError):
        ix.attach(tmp_path / "junk.sef")
    from keff.sef import save_sef

    save_sef(tmp_path / "other.sef", {"x": np.zeros(3, dtype=np.float32)}, {"kind": "routed-model"})
    with pytest.raises(FormatError, match="not a transform an index can apply"):
        ix.attach(tmp_path / "other.sef")
    assert [t["name"] for t in Index.open(tmp_path / "ix").manifest.transforms] == ["m"]
    assert len(list((tmp_path / "ix" / "transforms").glob("*"))) == 1


def test_evaluate_index_equals_evaluate_encoder(tmp_path, sample):
    ds, _, test = sample
    ix = Index.build(tmp_path / "ix", read_documents(SAMPLE), ["hash"])
    got = evaluate_index(ix, test, latency_queries=0)
    want = evaluate_encoder(test, get_encoder("hash"))
    assert got.metrics == want.metrics and got.per_query == want.per_query
    assert got.system == "hash" and got.dataset == want.dataset
    assert got.meta["documents"] == {"index": 48, "task": 48, "task_not_in_index": 0, "index_not_in_task": 0}
    ix.remove([next(iter(test.qrels[test.query_ids[0]]))])
    with pytest.raises(DataError, match="documents judged in two_domains/test are not in the index"):
        evaluate_index(ix, test)


def test_fitted_query_map_is_trained_on_the_task_and_applied(tmp_path, sample):
    _, train, test = sample
    ix = Index.build(tmp_path / "ix", read_documents(SAMPLE), ["hash"])
    m, prov = fit_query_map(ix, train, method="procrustes")
    assert prov["encoder"]["fingerprint"] == get_encoder("hash").fingerprint and prov["task"] == "two_domains/train"
    assert prov["n_pairs"] == sum(1 for q in train.query_ids for r in train.qrels[q].values() if r > 0)
    m.save(tmp_path / "p.sef", meta=prov)
    ix.attach(tmp_path / "p.sef")
    q = get_encoder("hash").encode(test.query_texts, kind="query")
    queries, weights = ix.prepare_queries(test.query_texts)
    np.testing.assert_allclose(queries[ix.encoder_keys[0]], l2_normalize(m.transform(q)), rtol=1e-6)
    assert weights is None
    assert evaluate_index(ix, test, latency_queries=0).system == "hash [p]"
    with pytest.raises(KeffError, match="unknown or unfittable map method 'identity'"):
        fit_query_map(ix, train, method="identity")


def test_fusion_objective_is_the_index_own_ndcg(tmp_path, hash2, sample):
    """What fit-fusion maximises is the nDCG@10 keff index eval reports for those weights."""
    _, train, _ = sample
    docs = read_documents(SAMPLE)
    two = Index.build(tmp_path / "two", docs, ["hash", "hash2"])
    grid = {tuple(r["weights"]): r["objective"] for r in fit_fusion_weights(two, train, step=0.5).info["evaluated"]}
    for weights, name in (((1.0, 0.0), "hash"), ((0.0, 1.0), "hash2")):
        single = Index.build(tmp_path / name, docs, [name])
        assert grid[weights] == pytest.approx(evaluate_index(single, train, latency_queries=0).metrics["ndcg@10"])
    assert grid[(0.5, 0.5)] == pytest.approx(evaluate_index(two, train, latency_queries=0).metrics["ndcg@10"])


# -- adapters (keff.adapters) -------------------------------------------------------------------
def _adapter_pairs(dim=64, n=160, seed=0):
    rng = np.random.default_rng(seed)
    Q = l2_normalize(rng.standard_normal((n, dim)).astype(np.float32))
    A = l2_normalize(Q + 0.5 * rng.standard_normal((n, dim)).astype(np.float32))
    return Q, A


def _adapter(tmp_path, cls, name, encoder="hash"):
    Q, A = _adapter_pairs()
    a = cls(epochs=2, do_no_harm=False, hard_negatives=0).fit(Q, A, progress=False)
    enc = get_encoder(encoder)
    return a, a.save(tmp_path / f"{name}.sef", meta={"encoder": {"name": encoder, "fingerprint": enc.fingerprint}})


def test_a_query_adapter_attaches_like_any_query_map(tmp_path):
    from keff.adapters import QueryAdapter

    ix = Index.build(tmp_path / "ix", read_documents(SAMPLE), ["hash"])
    a, path = _adapter(tmp_path, QueryAdapter, "qa")
    entry = ix.attach(path)
    assert entry["kind"] == "query-map" and "QueryAdapter" in entry["summary"]
    texts = ["squash commits"]
    q = l2_normalize(a.transform(get_encoder("hash").encode(texts, kind="query")))
    key = ix.encoder_keys[0]
    top = [ix.documents.row_of[h.id] for h in Index.open(tmp_path / "ix").search(texts, k=3)[0]]
    assert top == list(np.argsort(-(q[0] @ ix.vectors[key].T), kind="stable")[:3])


def test_an_asymmetric_adapter_transforms_the_stored_vectors_once_and_detaches_cleanly(tmp_path):
    from keff.adapters import AsymAdapter

    ix = Index.build(tmp_path / "ix", read_documents(SAMPLE), ["hash"])
    key = ix.encoder_keys[0]
    plain = ix.vectors[key].copy()
    a, path = _adapter(tmp_path, AsymAdapter, "asym")
    entry = ix.attach(path)
    assert entry["kind"] == "asym-adapter"
    opened = Index.open(tmp_path / "ix")
    np.testing.assert_allclose(opened.vectors[key], l2_normalize(a.transform_docs(plain)), atol=1e-6)
    stored = np.load(tmp_path / "ix" / ix.manifest.encoders[key]["segments"][0]["path"])
    np.testing.assert_array_equal(stored, plain)  # the file on disk is untouched: the index is not re-encoded
    texts = ["proof yeast"]
    q = l2_normalize(a.transform_queries(get_encoder("hash").encode(texts, kind="query")))
    top = [opened.documents.row_of[h.id] for h in opened.search(texts, k=3)[0]]
    assert top == list(np.argsort(-(q[0] @ opened.vectors[key].T), kind="stable")[:3])
    with pytest.raises(KeffError, match="already has asymmetric adapter"):
        opened.attach(path, name="again")
    opened.detach("asym")
    np.testing.assert_array_equal(Index.open(tmp_path / "ix").vectors[key], plain)


def test_an_asymmetric_adapter_needs_the_exact_backend(tmp_path):
    from keff.adapters import AsymAdapter

    ix = Index.build(tmp_path / "ix", read_documents(SAMPLE), ["hash"], backend="flat")
    _, path = _adapter(tmp_path, AsymAdapter, "asym")
    with pytest.raises(KeffError, match="--backend exact"):
        ix.attach(path)
    assert not list((tmp_path / "ix" / "transforms").glob("*.sef"))  # nothing left behind

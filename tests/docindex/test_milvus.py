"""Milvus as an index backend (Milvus Lite files in tmp folders): the same top-10 as exact search,
in step with the manifest through build/add/remove, out-of-step collections refused, no secrets
in the manifest, and fused search through Milvus's hybrid search explained to the score."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("pymilvus", reason="pymilvus is not installed (pip install 'keff[milvus]')")
pytest.importorskip("milvus_lite", reason="milvus-lite is not installed (pip install 'keff[milvus]')")

from keff.docindex import Document, Index  # noqa: E402
from keff.docindex import milvus as mv  # noqa: E402
from keff.docindex.manifest import MANIFEST, read_manifest  # noqa: E402
from keff.encoders import registry  # noqa: E402
from keff.encoders.hash_encoder import HashEncoder  # noqa: E402
from keff.errors import KeffError  # noqa: E402

N, K, NQ = 200, 10, 12


def _unit(n, d, seed):
    v = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _docs(n, start=0):
    return [Document(f"d{i}", f"text {i}", {"n": i}) for i in range(start, start + n)]


def _hash2(*, name, normalize, batch_size):
    return HashEncoder(dim=32, seed=1, normalize=normalize, batch_size=batch_size)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """One Milvus Lite index and one exact index of the same 200 random two-encoder vectors (Milvus
    Lite materialises every hit in Python: few queries keep the full-depth hybrid searches quick)."""
    root = tmp_path_factory.mktemp("milvus")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KEFF_CACHE_DIR", str(root / "cache"))
        mp.setitem(registry._BY_NAME, "hash2", registry.EncoderSpec("hash2", "test", 32, "hash", "-", _hash2))
        vectors = {"hash": _unit(N, 64, 0), "hash2": _unit(N, 32, 1)}
        mil = Index.build(root / "mil", _docs(N), ["hash", "hash2"], backend="milvus", vectors=vectors)
        ex = Index.build(root / "ex", _docs(N), ["hash", "hash2"], vectors=vectors)
        a, b = mil.encoder_keys
        queries = {a: _unit(NQ, 64, 2), b: _unit(NQ, 32, 3)}
        yield mil, ex, queries


def test_single_encoder_search_equals_exact_search(pair):
    mil, ex, queries = pair
    for key, q in queries.items():
        ms, mr = mil.search_vectors({key: q}, K)
        es, er = ex.search_vectors({key: q}, K)
        assert mr.shape == (NQ, K) and (mr == er).all()
        np.testing.assert_allclose(ms, es, atol=1e-5)


def test_manifest_names_the_lite_file_and_collection(pair):
    mil, _, _ = pair
    spec = read_manifest(mil.root).backend
    assert spec["kind"] == "milvus" and spec["uri"] == "milvus.db" and spec["token_env"] == mv.DEFAULT_TOKEN_ENV
    assert spec["collection"].startswith("keff_mil_") and (mil.root / "milvus.db").is_dir()
    state = mv.collection_state(mil.milvus.conn, spec["collection"])
    assert state["n_rows"] == N and state["fields"] == mv.field_names(mil.manifest.encoders)
    rows = mil.milvus.conn.query(spec["collection"], filter="row in [0, 199]", output_fields=["doc_id"])
    assert sorted((r["row"], r["doc_id"]) for r in rows) == [(0, "d0"), (199, "d199")]


def _partial(queries, vectors, keys, w, depth, k, squash=None):
    """What a weighted hybrid search computes: each field's top ``depth`` by cosine, a document
    scored by sum_j w_j * f(cosine_j) over the fields that returned it (f = identity, or Milvus's
    norm_score squash)."""
    n = next(iter(queries.values())).shape[0]
    total = np.zeros((n, next(iter(vectors.values())).shape[0]))
    for key, wj in zip(keys, w):
        s = queries[key] @ vectors[key].T
        top = np.argsort(-s, axis=1, kind="stable")[:, :depth]
        part = np.zeros_like(s, dtype=np.float64)
        f = s if squash is None else squash(s)
        np.put_along_axis(part, top, np.take_along_axis(f, top, axis=1), axis=1)
        total += wj * part
    rows = np.argsort(-total, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(total, rows, axis=1), rows


def test_hybrid_search_is_keffs_fused_search_with_full_depth(pair):
    mil, ex, queries = pair
    keys = list(queries)
    w = np.array([0.7, 0.3], dtype=np.float32)
    es, er = ex.search_vectors(queries, K, weights=w)  # keff's exact fused search
    ms, mr = mil.milvus.hybrid_search(keys, [queries[k] for k in keys], np.repeat(w[:, None], NQ, 1), K, depth=N)
    assert (mr == er).all()
    np.testing.assert_allclose(ms, es, atol=1e-5)


def test_hybrid_search_at_keffs_depth_scores_missing_fields_as_zero(pair):
    mil, ex, queries = pair
    keys = list(queries)
    w = np.array([0.7, 0.3], dtype=np.float32)
    ms, mr = mil.search_vectors(queries, K, weights=w)  # the backend's fused path: depth max(4k, 100)
    want_s, want_r = _partial(queries, mil.vectors, keys, w, 100, K)
    assert (mr == want_r).all()
    np.testing.assert_allclose(ms, want_s, atol=1e-5)
    es, er = ex.search_vectors(queries, K, weights=w)
    overlap = np.mean([len(set(a) & set(b)) / K for a, b in zip(mr, er)])
    assert overlap > 0.5  # mostly the same documents, yet not always the exact fused top-10


def test_norm_score_squashes_each_cosine_through_arctan(pair):
    mil, _, queries = pair
    keys = list(queries)
    w = np.array([0.5, 0.5], dtype=np.float32)
    ms, mr = mil.milvus.hybrid_search(
        keys, [queries[k] for k in keys], np.repeat(w[:, None], NQ, 1), K, depth=N, norm_score=True
    )
    want_s, want_r = _partial(queries, mil.vectors, keys, w, N, K, squash=lambda s: 0.5 + np.arctan(s) / np.pi)
    assert (mr == want_r).all()
    np.testing.assert_allclose(ms, want_s, atol=1e-5)


def test_per_query_weights_are_grouped_into_hybrid_requests(pair):
    mil, ex, queries = pair
    w = np.stack([np.linspace(0.1, 0.9, NQ), 1 - np.linspace(0.1, 0.9, NQ)]).astype(np.float32)
    ms, mr = mil.milvus.hybrid_search(list(queries), list(queries.values()), w, K, depth=N)
    es, er = ex.search_vectors(queries, K, weights=w)
    assert (mr == er).all()


def test_add_remove_reopen_stay_equal_to_exact(tmp_path, unit_vectors):
    v = unit_vectors(60, d=64, seed=5)
    mil = Index.build(tmp_path / "mil", _docs(60), ["hash"], backend="milvus", vectors={"hash": v})
    ex = Index.build(tmp_path / "ex", _docs(60), ["hash"], vectors={"hash": v})
    key = mil.encoder_keys[0]
    assert mil.add(_docs(20, 60)) == 20 and ex.add(_docs(20, 60)) == 20
    assert mil.remove(["d3", "d61", "d7"]) == 3 and ex.remove(["d3", "d61", "d7"]) == 3
    q = {key: unit_vectors(30, d=64, seed=6)}
    reopened = Index.open(tmp_path / "mil")
    for ix in (mil, reopened):
        _, mr = ix.search_vectors(q, K)
        _, er = ex.search_vectors(q, K)
        assert (mr == er).all()
        assert not {ix.documents.row_of.get(d, -1) for d in ("d3", "d61", "d7")} & set(mr.ravel())
    assert mv.count_rows(reopened.milvus.conn, reopened.milvus.collection) == 77 == reopened.n_docs


def test_writers_sync_the_collection(tmp_path):
    ix = Index.build(tmp_path / "ix", _docs(30), ["hash"], backend="milvus")
    ix.add(_docs(10, 30))
    ix.add([Document("d5", "replaced text")], replace=True)
    ix.remove(["d0"])
    spec = read_manifest(tmp_path / "ix").backend
    state = mv.collection_state(ix.milvus.conn, spec["collection"])
    assert state["n_rows"] == 41 and mv.count_rows(ix.milvus.conn, spec["collection"]) == 39 == ix.n_docs
    hits = ix.search(["replaced text"], k=39)[0]
    assert "d0" not in {h.id for h in hits} and len(hits) == 39


def test_attached_fusion_weights_drive_the_hybrid_search(tmp_path, monkeypatch):
    from keff.docindex import FusionWeights

    monkeypatch.setitem(registry._BY_NAME, "hash2", registry.EncoderSpec("hash2", "test", 32, "hash", "-", _hash2))
    topics = ["bread dough kneading", "git rebase branches", "chocolate tempering", "python virtual environments"]
    docs = [Document(f"d{i}", f"{topics[i % 4]} note {i} {'extra ' * (i % 5)}") for i in range(40)]
    mil = Index.build(tmp_path / "mil", docs, ["hash", "hash2"], backend="milvus")
    ex = Index.build(tmp_path / "ex", docs, ["hash", "hash2"])
    encoders = [{"name": s["name"], "fingerprint": s["fingerprint"], "key": k} for k, s in ex.manifest.encoders.items()]
    FusionWeights(encoders, np.array([0.7, 0.3])).save(tmp_path / "fw.sef")
    for ix in (mil, ex):
        ix.attach(tmp_path / "fw.sef", name="fusion")  # a commit: the collection stays in step
    texts = ["git rebase note", "chocolate", "python environments extra"]
    got, want = mil.search(texts, k=K), ex.search(texts, k=K)  # 40 documents < depth 100: every row scored
    assert [[h.id for h in row] for row in got] == [[h.id for h in row] for row in want]
    np.testing.assert_allclose([[h.score for h in row] for row in got], [[h.score for h in row] for row in want],
                               atol=1e-5)  # fmt: skip
    assert Index.open(tmp_path / "mil").transforms.weighting == "fusion-weights"


def test_out_of_step_collection_is_refused_and_rebuilt(tmp_path, run):
    ix = Index.build(tmp_path / "ix", _docs(50), ["hash"], backend="milvus")
    conn, name = ix.milvus.conn, ix.milvus.collection
    conn.delete(name, ids=[4])  # someone changed the collection behind keff's back
    with pytest.raises(KeffError, match=r"out of step.*holds 49 rows.*keff index rebuild-backend"):
        Index.open(tmp_path / "ix")
    result = run("index", "rebuild-backend", str(tmp_path / "ix"))
    assert result.exit_code == 0 and "50 rows" in result.output
    assert Index.open(tmp_path / "ix").n_docs == 50
    conn.drop_collection(name)
    with pytest.raises(KeffError, match="does not exist"):
        Index.open(tmp_path / "ix")
    assert run("index", "rebuild-backend", str(tmp_path / "ix")).exit_code == 0
    Index.open(tmp_path / "ix")


def test_a_writer_that_died_before_its_sync_is_detected_then_caught_up(tmp_path, monkeypatch):
    from keff.docindex import index as index_module

    ix = Index.build(tmp_path / "ix", _docs(30), ["hash"], backend="milvus")
    monkeypatch.setattr(index_module, "after_commit", lambda root, manifest: None)  # dies after its commit
    with pytest.raises(KeffError, match=r"synced at generation 1 \(30 rows\).*generation 2 \(40 rows\)"):
        ix.add(_docs(10, 30))
    with pytest.raises(KeffError, match="out of step"):
        Index.open(tmp_path / "ix")
    done = mv.sync(tmp_path / "ix", read_manifest(tmp_path / "ix"))  # what the next writer does
    assert done == {"rebuilt": False, "written": 10, "deleted": 0, "collection": ix.milvus.collection}
    assert Index.open(tmp_path / "ix").n_docs == 40


def test_uri_is_recorded_and_no_secret_is_ever_written(tmp_path, monkeypatch):
    monkeypatch.setenv("KEFF_TEST_MILVUS_TOKEN", "s3cr3t-t0ken")
    shared = tmp_path / "shared" / "lite.db"
    params = {"uri": str(shared), "token_env": "KEFF_TEST_MILVUS_TOKEN"}
    ix = Index.build(tmp_path / "ix", _docs(20), ["hash"], backend="milvus", backend_params=params)
    text = (tmp_path / "ix" / MANIFEST).read_text()
    assert "s3cr3t" not in text and json.loads(text)["backend"]["uri"] == str(shared)
    assert shared.is_dir() and not (tmp_path / "ix" / "milvus.db").exists()
    old = ix.milvus.collection
    again = Index.build(tmp_path / "ix", _docs(20), ["hash"], backend="milvus", backend_params=params, overwrite=True)
    assert again.milvus.collection != old and old not in again.milvus.conn.list_collections()
    with pytest.raises(KeffError, match="never takes.*token"):
        mv.milvus_spec({"token": "abc"})
    with pytest.raises(KeffError, match="must not hold credentials"):
        mv.milvus_spec({"uri": "http://root:Milvus@milvus.example:19530"})
    with pytest.raises(KeffError, match="leaves the index folder"):
        mv.milvus_spec({"uri": "../elsewhere.db"})
    with pytest.raises(KeffError, match="must be a Milvus Lite file"):
        mv.milvus_spec({"uri": "ftp://milvus.example"})
    server = mv.milvus_spec({"uri": "https://milvus.example:19530", "collection": "docs_v1"})
    assert server == {"kind": "milvus", "uri": "https://milvus.example:19530", "collection": "docs_v1",
                      "token_env": "KEFF_MILVUS_TOKEN", "depth": 0}  # fmt: skip


def test_cli_builds_a_milvus_index(tmp_path, run, capsys):
    from keff.cli import main

    src = tmp_path / "docs.jsonl"
    src.write_text("".join(json.dumps({"id": f"d{i}", "text": f"note {i} about bread"}) + "\n" for i in range(12)))
    result = run("index", "build", str(tmp_path / "ix"), "--from", str(src), "-e", "hash", "--backend", "milvus",
                 "--milvus-uri", "store/m.db", "--param", "depth=50")  # fmt: skip
    assert result.exit_code == 0, result.output
    spec = read_manifest(tmp_path / "ix").backend
    assert spec["uri"] == "store/m.db" and spec["depth"] == 50 and (tmp_path / "ix" / "store" / "m.db").is_dir()
    for argv, message in (
        (["index", "build", str(tmp_path / "ix2"), "--from", str(src), "-e", "hash", "--milvus-uri", "x.db"],
         "--backend milvus"),
        (["index", "rebuild-backend", str(tmp_path / "nothing")], "not a keff index"),
        (["index", "build", str(tmp_path / "ix3"), "--from", str(src), "-e", "hash", "--backend", "milvus",
          "--milvus-uri", "http://user:pw@localhost:19530"], "must not hold credentials"),
    ):  # fmt: skip
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        assert message in capsys.readouterr().err.strip().splitlines()[-1]
    assert not (tmp_path / "nothing").exists()


def test_a_model_upgrade_switch_rebuilds_the_collection_for_the_new_encoder(tmp_path):
    pytest.importorskip("onnxruntime")
    from keff.cli.demo_cmd import sample_corpus_dir
    from keff.docindex import read_documents
    from keff.docindex import upgrade as U

    sample = sample_corpus_dir()
    ix = Index.build(tmp_path / "ix", read_documents(sample), ["hash"], backend="milvus")
    U.upgrade(ix, "minilm-l3-onnx", anchors=40, map_kind="affine", queries=sample)
    assert U.reembed(tmp_path / "ix", chunk=20).switched  # every commit syncs; the switch changes the fields
    switched = Index.open(tmp_path / "ix")
    assert list(switched.milvus.fields) == switched.encoder_keys and switched.encoder_keys[0].startswith("minilm-l3")
    fresh = Index.build(tmp_path / "fresh", read_documents(sample), ["minilm-l3-onnx"])
    texts = ["how do I squash commits", "tempering chocolate"]
    got, want = switched.search(texts, k=5), fresh.search(texts, k=5)
    assert [[h.id for h in r] for r in got] == [[h.id for h in r] for r in want]


@pytest.mark.slow
def test_scifact_milvus_lite_and_faiss_flat_give_the_same_top10(tmp_path, shared_data):
    """Real data: SciFact's 5,183 abstracts and all 300 test claims with the shipped minilm vectors,
    given to the build as they are (no model is loaded: the comparison is of the backends)."""
    pytest.importorskip("faiss", reason="faiss-cpu is not installed (pip install 'keff[faiss]')")
    from keff.data import load_beir
    from keff.docindex import read_documents
    from keff.encoders import get_encoder
    from keff.errors import ModelNotAvailable
    from keff.paths import shipped_vectors
    from keff.studies.index_milvus import compare_topk
    from keff.tasks import beir_task

    folder = shared_data / "beir" / "scifact"
    vectors = shipped_vectors(folder, "minilm")
    if not folder.is_dir() or vectors is None:
        pytest.skip(f"SciFact or its shipped minilm vectors are not under {shared_data}")
    try:
        get_encoder("minilm")  # its name and fingerprint label the vectors (the model is not run)
    except ModelNotAvailable as exc:
        pytest.skip(f"minilm is not installed: {exc}")
    ds = load_beir(folder)
    docs = read_documents(folder)
    assert [d.id for d in docs] == list(ds.doc_ids)  # the shipped rows are in corpus order
    corpus = np.load(vectors / "corpus.npy")
    mil = Index.build(tmp_path / "milvus", docs, ["minilm"], backend="milvus", vectors={"minilm": corpus})
    flat = Index.build(tmp_path / "flat", docs, ["minilm"], backend="flat", vectors={"minilm": corpus})
    task = beir_task(ds, "test")
    row_of = {qid: i for i, qid in enumerate(ds.query_ids)}
    queries = np.load(vectors / "queries.npy")[[row_of[q] for q in task.query_ids]]
    q = {mil.encoder_keys[0]: queries}
    _, mr = mil.search_vectors(q, K)
    _, fr = flat.search_vectors(q, K)
    assert mr.shape == fr.shape == (300, K)
    got = compare_topk(mr, fr, mil.vectors, q, np.ones(1))
    # a difference may only be a tie: both lists then hold the same cosines rank by rank
    assert got["differs_beyond_ties"] == 0, got
    assert got["identical"] + got["differs_only_by_ties"] == 300 and got["identical"] >= 297, got

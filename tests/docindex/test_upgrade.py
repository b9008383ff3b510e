"""Model upgrade without downtime: validation against the old model, refusal, serving, resumable
re-embedding and a switch-over that equals a fresh build (hash -> minilm-l3-onnx on the sample)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import keff
from keff.arrays import l2_normalize
from keff.cli.demo_cmd import sample_corpus_dir
from keff.data import load_beir
from keff.docindex import Document, Index, UpgradeRefused, read_documents
from keff.docindex import upgrade as U
from keff.docindex.manifest import MANIFEST
from keff.encoders import get_encoder
from keff.encoders.cache import CachedEncoder
from keff.errors import FormatError, KeffError
from keff.index.numpy_backend import topk_rows

SAMPLE = sample_corpus_dir()
NEW = "minilm-l3-onnx"
QUERIES = ["how do I squash commits", "knead bread dough by hand", "python virtual environment", "tempering chocolate"]

pytest.importorskip("onnxruntime")


@pytest.fixture
def sample_docs():
    return read_documents(SAMPLE)


@pytest.fixture
def encoded(monkeypatch):
    """Every text the models encode (not served from the cache), in order."""
    seen: list[str] = []
    real = CachedEncoder._encode_missing

    def spy(self, missing, originals, *args, **kwargs):
        seen.extend(f"{self.name}|{t}" for t in missing)
        return real(self, missing, originals, *args, **kwargs)

    monkeypatch.setattr(CachedEncoder, "_encode_missing", spy)
    return seen


def upgraded(tmp_path, docs, *, backend="exact", **kwargs) -> Index:
    ix = Index.build(tmp_path / "ix", docs, ["hash"], backend=backend)
    U.upgrade(ix, NEW, anchors=40, map_kind="affine", queries=SAMPLE, **kwargs)
    return ix


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_the_rule_accepts_at_or_above_the_old_model_and_prefers_the_best():
    figs = {
        "old": {"ndcg@10": 0.5, "mrr@10": 0.4},
        "mapped-docs": {"ndcg@10": 0.5, "mrr@10": 0.3},
        "mapped-queries": {"ndcg@10": 0.49, "mrr@10": 0.9},
        "hybrid": {"ndcg@10": 0.5, "mrr@10": 0.45},
    }
    assert U.decide(figs) == (["mapped-docs", "hybrid"], "hybrid")  # ties on nDCG go to MRR
    figs["hybrid"]["mrr@10"] = 0.3
    assert U.decide(figs)[1] == "mapped-docs"  # then to the order of MODES
    figs["mapped-docs"]["ndcg@10"] = figs["hybrid"]["ndcg@10"] = 0.4999
    assert U.decide(figs) == ([], None)


def test_pseudo_queries_are_first_sentences_searched_for_the_rest():
    assert U.pseudo_query("Title here. Body one. Body two.") == ("Title here.", "Body one. Body two.")
    assert U.pseudo_query("only one sentence") == ("only one sentence", "")
    assert U.pseudo_query(" ".join(["w"] * 50) + ". rest")[0] == " ".join(["w"] * U.PSEUDO_QUERY_WORDS)


def test_a_map_below_the_old_model_is_refused_and_nothing_changes(tmp_path, sample_docs, run):
    root = tmp_path / "ix"
    Index.build(root, sample_docs, ["hash"])
    before = snapshot(root)
    with pytest.raises(UpgradeRefused, match="no serving mode validates at or above the old model") as exc:
        U.upgrade(Index.open(root), NEW, anchors=40, map_kind="procrustes", holdout=0.3)
    v = exc.value.validation
    assert v.chosen is None and not v.accepted and v.n_queries > 0
    assert all(v.figures[m]["ndcg@10"] < v.figures["old"]["ndcg@10"] for m in U.MODES)
    assert snapshot(root) == before  # not a byte written
    assert Index.open(root).upgrade is None
    # the CLI: one error line with the figures, exit 2, nothing changed
    from keff.cli import main

    with pytest.raises(SystemExit) as code:
        main(["index", "upgrade", str(root), "--to", NEW, "--anchors", "40", "--map", "procrustes", "--holdout", "0.3"])
    assert code.value.code == 2
    assert snapshot(root) == before


def test_an_accepted_upgrade_serves_new_encoder_queries_through_the_maps(tmp_path, sample_docs):
    ix = upgraded(tmp_path, sample_docs)
    up = ix.upgrade
    v = ix.manifest.extra["upgrade"]["validation"]
    assert up.mode == v["chosen"] and up.mode in v["accepted"]
    assert v["figures"][up.mode]["ndcg@10"] >= v["figures"]["old"]["ndcg@10"]
    for entry in ix.manifest.extra["upgrade"]["maps"].values():  # the maps are committed files with SHA-256
        assert (ix.root / entry["path"]).is_file() and len(entry["sha256"]) == 64
    # what is served is exactly the mode's arithmetic
    old_key, new_key = up.source_key, up.target_key
    q_old = get_encoder("hash").encode(QUERIES, kind="query")
    q_new = get_encoder(NEW).encode(QUERIES, kind="query")
    old_docs = ix.vectors[old_key]
    mapped_docs = l2_normalize(up.maps["old->new"].transform(old_docs))
    expected = {
        "mapped-docs": q_new @ mapped_docs.T,
        "mapped-queries": l2_normalize(up.maps["new->old"].transform(q_new)) @ old_docs.T,
        "hybrid": 0.5 * (q_old @ old_docs.T) + 0.5 * (q_new @ mapped_docs.T),
    }
    queries = {old_key: q_old, new_key: q_new}
    for mode, scores in expected.items():
        top, rows = up.search(queries, 5, mode=mode)
        want_s, want_r = topk_rows(scores.astype(np.float32), 5)
        np.testing.assert_array_equal(rows, want_r)
        np.testing.assert_allclose(top, want_s, rtol=1e-5, atol=1e-6)
    hits = ix.search(QUERIES, k=5)  # text queries go through the chosen mode
    want = topk_rows(expected[up.mode].astype(np.float32), 5)[1]
    assert [[h.id for h in row] for row in hits] == [[ix.documents.ids[r] for r in row] for row in want]
    # reopened from disk: the same answers; old-encoder vectors alone still get the old model
    again = Index.open(ix.root)
    assert [[h.id for h in r] for r in again.search(QUERIES, k=5)] == [[h.id for h in r] for r in hits]
    _, rows = again.search_vectors({old_key: q_old}, 5)
    np.testing.assert_array_equal(rows, topk_rows((q_old @ old_docs.T).astype(np.float32), 5)[1])
    assert again.info()["upgrade"]["mode"] == up.mode and again.info()["upgrade"]["reembedded"] == 0


def test_a_tampered_map_is_refused(tmp_path, sample_docs):
    ix = upgraded(tmp_path, sample_docs)
    path = ix.root / ix.manifest.extra["upgrade"]["maps"]["new->old"]["path"]
    path.write_bytes(path.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(FormatError, match="SHA-256 mismatch"):
        Index.open(ix.root)


def test_validation_never_sees_test_queries(tmp_path, sample_docs, encoded):
    ix = Index.build(tmp_path / "ix", sample_docs, ["hash"])
    before = snapshot(ix.root)
    encoded.clear()
    with pytest.raises(KeffError, match="never uses test queries"):
        U.upgrade(ix, NEW, anchors=40, queries=SAMPLE, split="test")
    assert snapshot(ix.root) == before and not encoded
    report = U.upgrade(ix, NEW, anchors=40, queries=SAMPLE, split="train")
    ds = load_beir(SAMPLE)
    test_texts = set(ds.split_queries("test")[1])
    assert report.validation.n_queries == len(ds.qrels["train"])
    assert not [t for t in encoded if t.split("|", 1)[1] in test_texts]
    # a training query whose text is a test query's is dropped
    copy = tmp_path / "beir"
    copy.mkdir()
    for name in ("corpus.jsonl", "queries.jsonl"):
        (copy / name).write_text((SAMPLE / name).read_text())
    (copy / "qrels").mkdir()
    (copy / "qrels" / "test.tsv").write_text((SAMPLE / "qrels" / "test.tsv").read_text())
    test_qid = ds.split_queries("test")[0][0]
    train = (SAMPLE / "qrels" / "train.tsv").read_text()
    with open(copy / "queries.jsonl", "a") as fh:
        fh.write(json.dumps({"_id": "dup", "text": ds.query_texts[ds.query_ids.index(test_qid)]}) + "\n")
    (copy / "qrels" / "train.tsv").write_text(train + "dup\tt01\t1\n")
    vq = U.labelled_queries(ix, copy, "train")
    assert "dup" not in vq.ids and "1 identical to a test query dropped" in vq.description


def test_pseudo_queries_come_from_anchors_the_maps_never_saw(tmp_path, sample_docs, monkeypatch):
    ix = Index.build(tmp_path / "ix", sample_docs, ["hash"])
    held, fitted = [], []
    real_pseudo, real_fit = U.pseudo_queries, U.Map.fit

    def pseudo(index, rows):
        held.extend(int(r) for r in rows)
        return real_pseudo(index, rows)

    def fit(self, X, Y):
        fitted.append(np.asarray(X if X.shape[1] == 64 else Y))  # the old (hash, 64-d) side of the pairs
        return real_fit(self, X, Y)

    monkeypatch.setattr(U, "pseudo_queries", pseudo)
    monkeypatch.setattr(U.Map, "fit", fit)
    try:
        U.upgrade(ix, NEW, anchors=40, map_kind="affine", holdout=0.3)
    except UpgradeRefused as exc:
        assert "pseudo-queries" in exc.validation.queries and 0 < exc.validation.n_queries <= 12
    assert len(held) == 12 and len(fitted) == 2 and all(len(X) == 28 for X in fitted)
    old = ix.vectors[ix.encoder_keys[0]]
    for X in fitted:
        assert not any(np.all(X == old[r], axis=1).any() for r in held)


CRASH = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, {src!r})
    import keff.docindex.upgrade as U
    real, calls = U._commit, []
    def dying(root, manifest, **kw):
        calls.append(1)
        if len(calls) == 2:
            os._exit(9)  # killed after writing its second chunk, before committing it
        return real(root, manifest, **kw)
    U._commit = dying
    U.reembed(sys.argv[1], chunk=10)
    """
)


def test_reembed_resumes_after_a_crash_and_switches_to_what_a_fresh_build_gives(
    tmp_path, sample_docs, encoded, monkeypatch, isolated_cache
):
    ix = upgraded(tmp_path, sample_docs)
    up_before = ix.upgrade
    # 1. an injected failure after two committed chunks
    real, calls = U._write_chunk, []

    def failing(*args):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return real(*args)

    monkeypatch.setattr(U, "_write_chunk", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        U.reembed(ix.root, chunk=10)
    monkeypatch.setattr(U, "_write_chunk", real)
    ix = Index.open(ix.root)
    assert ix.upgrade.done == 20 and ix.upgrade.mode == up_before.mode
    true = get_encoder(NEW).encode(ix.documents.texts(), kind="doc")
    np.testing.assert_array_equal(ix.upgrade.new_side[:20], true[:20])  # true vectors for re-embedded rows
    mapped = l2_normalize(ix.upgrade.maps["old->new"].transform(ix.vectors[ix.upgrade.source_key][20:]))
    np.testing.assert_array_equal(ix.upgrade.new_side[20:], mapped)  # mapped ones for the rest
    # 2. a hard kill (in another process) after writing the third chunk, before its commit
    script = tmp_path / "crash.py"
    script.write_text(CRASH.format(src=str(Path(keff.__file__).parents[1])))
    env = {**os.environ, "KEFF_CACHE_DIR": str(isolated_cache)}
    proc = subprocess.run([sys.executable, str(script), str(ix.root)], env=env, capture_output=True)
    assert proc.returncode == 9, proc.stderr.decode()
    assert Index.open(ix.root).upgrade.done == 30  # one more chunk committed, the killed one not
    chunks = ix.root / "vectors" / up_before.target_key
    assert len(list(chunks.glob("reembed-*.npy"))) == 4  # three committed chunks, the killed run's uncommitted one
    # 3. resume: finishes and switches over; nothing encoded before (here or by the killed run) is encoded again
    texts = ix.documents.texts()
    n_before = len(encoded)
    report = U.reembed(ix.root, chunk=10)
    assert report.switched and report.encoded == 18 and report.rows == 48
    again = {t.split("|", 1)[1] for t in encoded[n_before:]}
    assert not again & set(texts[:40]) and not [t for t in encoded if encoded.count(t) > 1]
    ix = Index.open(ix.root)
    fresh = Index.build(tmp_path / "fresh", sample_docs, [NEW])
    assert ix.upgrade is None and "upgrade" not in ix.manifest.extra
    assert ix.encoder_keys == fresh.encoder_keys
    key = fresh.encoder_keys[0]
    np.testing.assert_array_equal(ix.vectors[key], fresh.vectors[key])
    assert ix.manifest.encoders[key]["segments"] == fresh.manifest.encoders[key]["segments"]  # same files, bytes
    a, b = ix.search(QUERIES, k=10), fresh.search(QUERIES, k=10)
    assert [[(h.id, h.score) for h in r] for r in a] == [[(h.id, h.score) for h in r] for r in b]
    # the old encoder's vectors, the maps and the chunks are gone
    left = {p.relative_to(ix.root).parts[0] for p in ix.root.rglob("*") if p.is_file()}
    assert not list((ix.root / "upgrade").rglob("*.*")) and not list(chunks.glob("reembed-*"))
    assert not list((ix.root / "vectors" / up_before.source_key).glob("*"))
    assert left == {"docs", "vectors", MANIFEST, ".lock"}
    assert ix.manifest.history[-1]["action"] == "switch"


def test_adds_and_removes_during_an_upgrade_are_served_and_re_embedded(tmp_path, sample_docs):
    ix = upgraded(tmp_path, sample_docs[:40], backend="flat")
    U.reembed(ix, chunk=16, max_rows=16)
    extra = sample_docs[40:]
    ix.add(extra)
    ix.remove([sample_docs[3].id])
    assert ix.upgrade.done == 16 and ix.documents.n_rows == 48
    hits = ix.search(["git rebase"], k=48)[0]
    assert len(hits) == 47 and sample_docs[3].id not in {h.id for h in hits}
    report = U.reembed(ix, chunk=16)
    assert report.switched
    kept = [d for d in sample_docs if d.id != sample_docs[3].id]
    fresh = Index.build(tmp_path / "fresh", kept, [NEW], backend="flat")
    key = fresh.encoder_keys[0]
    mine = {i: ix.vectors[key][r] for i, r in ix.documents.row_of.items()}
    theirs = {i: fresh.vectors[key][r] for i, r in fresh.documents.row_of.items()}
    assert mine.keys() == theirs.keys() and all(np.array_equal(mine[i], theirs[i]) for i in mine)
    a, b = ix.search(QUERIES, k=10), fresh.search(QUERIES, k=10)
    assert [[h.id for h in r] for r in a] == [[h.id for h in r] for r in b]
    assert ix.manifest.encoders[key]["ann"] is not None


def test_one_upgrade_at_a_time_and_cancel(tmp_path, sample_docs):
    ix = upgraded(tmp_path, sample_docs)
    with pytest.raises(KeffError, match="in progress"):
        U.upgrade(ix, NEW, anchors=40, queries=SAMPLE)
    with pytest.raises(KeffError, match="already the encoder"):
        U.upgrade(Index.build(tmp_path / "other", sample_docs, [NEW]), NEW, anchors=40)
    assert U.cancel_upgrade(ix.root) and Index.open(ix.root).upgrade is None
    assert not list((ix.root / "upgrade").rglob("*.*"))
    with pytest.raises(KeffError, match="no upgrade in progress"):
        U.reembed(ix.root)
    assert not U.cancel_upgrade(ix.root)


def test_cli_upgrade_reembed_info(run, tmp_path):
    idx = str(tmp_path / "ix")
    run("index", "build", idx, "--from", str(SAMPLE), "-e", "hash")
    res = run("index", "upgrade", idx, "--to", NEW, "--anchors", "40", "--queries", str(SAMPLE))
    text = " ".join(res.output.split())
    assert res.exit_code == 0 and "serves" in text and "keff index reembed" in text, res.output
    info = json.loads(run("index", "info", idx, "--json").output)
    assert info["upgrade"]["target"]["name"] == NEW and info["upgrade"]["reembedded"] == 0
    res = run("index", "reembed", idx, "--chunk", "20", "--max-rows", "20")
    assert "20/48 rows" in res.output, res.output
    res = run("index", "reembed", idx, "--chunk", "20")
    assert f"switched {idx} over to {NEW}" in " ".join(res.output.split()), res.output
    info = json.loads(run("index", "info", idx, "--json").output)
    assert info["upgrade"] is None and [e["name"] for e in info["encoders"]] == [NEW]


def test_cli_refuses_test_queries_in_one_line(tmp_path, capsys, sample_docs):
    from keff.cli import main

    Index.build(tmp_path / "ix", sample_docs, ["hash"])
    with pytest.raises(SystemExit) as exc:
        main(["index", "upgrade", str(tmp_path / "ix"), "--to", NEW, "--queries", str(SAMPLE), "--split", "test"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "never uses test queries" in err[-1]


def test_new_documents_rows_serve_mapped_until_reembedded(tmp_path, sample_docs):
    ix = upgraded(tmp_path, sample_docs)
    ix.add([Document("new1", "rebasing a feature branch onto main with git")])
    row = ix.documents.row_of["new1"]
    want = l2_normalize(ix.upgrade.maps["old->new"].transform(ix.vectors[ix.upgrade.source_key][row : row + 1]))
    np.testing.assert_allclose(ix.upgrade.new_side[row], want[0], rtol=1e-5, atol=1e-6)

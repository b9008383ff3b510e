"""The persistent index: build, open, search, add, remove; every update atomic; damage refused."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from keff.docindex import Document, Index
from keff.docindex.manifest import MANIFEST
from keff.errors import DataError, FormatError, KeffError
from keff.index import ExactIndex


def test_build_open_search_round_trip(tmp_path, docs):
    ix = Index.build(tmp_path / "ix", docs, ["hash"])
    assert ix.n_docs == 40 and ix.manifest.generation == 1
    hits = ix.search(["git rebase"], k=4)[0]
    assert len(hits) == 4 and all("git rebase" in h.text for h in hits)
    assert hits[0].meta["n"] % 4 == 1
    again = Index.open(tmp_path / "ix")
    assert [h.id for h in again.search(["git rebase"], k=4)[0]] == [h.id for h in hits]


def test_search_equals_exact_search_over_the_same_vectors(tmp_path, docs):
    from keff.encoders import get_encoder

    ix = Index.build(tmp_path / "ix", docs, ["hash"])
    enc = get_encoder("hash")
    D = enc.encode([d.text for d in docs], kind="doc")
    Q = enc.encode(["chocolate", "python env"], kind="query")
    s, i = ExactIndex(D).search(Q, 5)
    hits = ix.search(["chocolate", "python env"], k=5)
    assert [[h.id for h in row] for row in hits] == [[docs[j].id for j in row] for row in i]
    np.testing.assert_allclose([[h.score for h in row] for row in hits], s, rtol=1e-6)


def test_add_and_remove_commit_new_generations(tmp_path, docs):
    ix = Index.build(tmp_path / "ix", docs[:30], ["hash"])
    assert ix.add(docs[30:]) == 10 and ix.n_docs == 40 and ix.manifest.generation == 2
    with pytest.raises(DataError, match="ids are already in the index"):
        ix.add([Document("d3", "again")])
    ix.add([Document("d3", "replaced text about tempering")], replace=True)
    assert ix.n_docs == 40 and ix.documents.get([ix.documents.row_of["d3"]])[0].text.startswith("replaced")
    assert ix.remove(["d0", "d1"]) == 2 and ix.n_docs == 38
    assert all(h.id not in ("d0", "d1") for h in ix.search(["bread dough kneading"], k=38)[0])
    with pytest.raises(DataError, match="not in the index"):
        ix.remove(["nope"])
    reopened = Index.open(tmp_path / "ix")
    assert reopened.n_docs == 38 and reopened.manifest.generation == ix.manifest.generation


def test_existing_index_is_never_replaced_without_overwrite(tmp_path, docs):
    Index.build(tmp_path / "ix", docs[:5], ["hash"])
    with pytest.raises(DataError, match="an index already exists here"):
        Index.build(tmp_path / "ix", docs, ["hash"])
    assert Index.open(tmp_path / "ix").n_docs == 5
    assert Index.build(tmp_path / "ix", docs, ["hash"], overwrite=True).n_docs == 40
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("mine")
    with pytest.raises(DataError, match="not an empty folder"):
        Index.build(tmp_path / "other", docs, ["hash"])


@pytest.mark.parametrize("backend", ["flat", "hnsw", "ivf"])
def test_faiss_backends_agree_with_exact_and_filter_removed(tmp_path, unit_vectors, backend):
    pytest.importorskip("faiss", reason="needs keff[faiss]")
    V = unit_vectors(600, d=64)
    docs = [Document(f"v{i}", f"vector {i}") for i in range(600)]
    ix = Index.build(tmp_path / backend, docs, ["hash"], backend=backend, vectors={"hash": V})
    key = ix.encoder_keys[0]
    _, rows = ix.search_vectors({key: V[:20]}, 1)
    assert (rows[:, 0] == np.arange(20)).mean() >= 0.95  # each vector finds itself
    ix.remove(["v0", "v1"])
    _, rows = ix.search_vectors({key: V[:2]}, 5)
    assert not np.isin(rows, [0, 1]).any()
    ix.add([Document("late", "a late arrival")])
    assert Index.open(tmp_path / backend).n_docs == 599


@pytest.mark.parametrize("backend", ["exact", "hnsw"])
def test_several_encoders_combine_their_cosines(tmp_path, docs, unit_vectors, backend):
    pytest.importorskip("onnxruntime", reason="the second encoder is minilm-l3-onnx (keff[onnx])")
    if backend != "exact":
        pytest.importorskip("faiss", reason="needs keff[faiss]")
    A, B = unit_vectors(40, 64, seed=1), unit_vectors(40, 384, seed=2)
    ix = Index.build(tmp_path / backend, docs, ["hash", "minilm-l3-onnx"], backend=backend,
                     vectors={"hash": A, "minilm-l3-onnx": B})  # fmt: skip
    ka, kb = ix.encoder_keys
    qa, qb = A[:3], B[5:8]
    expected = 0.25 * (qa @ A.T) + 0.75 * (qb @ B.T)
    with pytest.raises(KeffError, match="has no encoder"):
        ix.search_vectors({"nope": qa}, 3)
    scores, rows = ix.search_vectors({ka: qa, kb: qb}, 3, weights=np.array([0.25, 0.75]))
    assert (rows == np.argsort(-expected, axis=1)[:, :3]).all()
    np.testing.assert_allclose(scores, np.sort(expected, axis=1)[:, ::-1][:, :3], rtol=1e-5)
    _, even = ix.search_vectors({ka: qa, kb: qb}, 3)  # default: equal weights
    assert (even == np.argsort(-(qa @ A.T + qb @ B.T), axis=1)[:, :3]).all()


def test_damaged_files_are_refused_never_served(tmp_path, docs):
    root = tmp_path / "ix"
    Index.build(root, docs, ["hash"])
    vec = next((root / "vectors").rglob("*.npy"))
    data = bytearray(vec.read_bytes())
    data[-4:] = b"\x00\x00\xc0\x7f"  # a NaN in the last entry
    vec.write_bytes(bytes(data))
    with pytest.raises(FormatError, match="SHA-256 mismatch"):
        Index.open(root)
    (root / MANIFEST).write_text("{not json")
    with pytest.raises(FormatError, match="manifest is not valid JSON"):
        Index.open(root)


def test_manifest_paths_cannot_leave_the_index(tmp_path, docs):
    root = tmp_path / "ix"
    Index.build(root, docs, ["hash"])
    doc = json.loads((root / MANIFEST).read_text())
    doc["documents"]["segments"][0]["text"]["path"] = "../../etc/passwd"
    (root / MANIFEST).write_text(json.dumps(doc))
    with pytest.raises(FormatError, match="leaves the index folder"):
        Index.open(root)


def test_an_encoder_whose_fingerprint_changed_is_refused(tmp_path, docs):
    root = tmp_path / "ix"
    Index.build(root, docs, ["hash"])
    doc = json.loads((root / MANIFEST).read_text())
    key = next(iter(doc["encoders"]))
    doc["encoders"][key]["fingerprint"] = "0" * 64
    (root / MANIFEST).write_text(json.dumps(doc))
    with pytest.raises(KeffError, match="fingerprint"):
        Index.open(root)


CRASH = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, {src!r})
    import keff.docindex.index as index_module
    from keff.docindex import Document, Index
    import keff.docindex.vectors as vectors_module

    where = sys.argv[1]
    if where == "before-commit":
        index_module.write_manifest = lambda *a, **k: os._exit(9)
    else:  # die half-way through writing a vector file
        real = vectors_module.write_vectors
        def half(root, key, stem, vecs):
            path = root / "vectors" / key / (stem + ".npy")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"\\x93NUMPY" + b"\\x00" * 10)
            os._exit(9)
        index_module.write_vectors = half
    docs = [Document("n%d" % i, "new text %d" % i) for i in range(5)]
    if sys.argv[2] == "add":
        Index.open(sys.argv[3]).add(docs)
    else:
        Index.build(sys.argv[3], docs, ["hash"])
    """
)


@pytest.mark.parametrize("where", ["before-commit", "mid-write"])
def test_a_killed_add_or_build_leaves_the_last_good_state(tmp_path, docs, where, isolated_cache):
    import keff

    root = tmp_path / "ix"
    Index.build(root, docs, ["hash"])
    before = Index.open(root).search(["git rebase"], k=5)
    script = tmp_path / "crash.py"
    script.write_text(CRASH.format(src=str(__import__("pathlib").Path(keff.__file__).parents[1])))
    env = {**__import__("os").environ, "KEFF_CACHE_DIR": str(isolated_cache)}
    for action, target in (("add", root), ("build", tmp_path / "fresh")):
        proc = subprocess.run([sys.executable, str(script), where, action, str(target)], env=env, capture_output=True)
        assert proc.returncode == 9, proc.stderr.decode()
    ix = Index.open(root)  # the killed add changed nothing visible
    assert ix.n_docs == 40 and [h.id for h in ix.search(["git rebase"], k=5)[0]] == [h.id for h in before[0]]
    assert not (tmp_path / "fresh").exists()  # a killed build leaves no index
    assert ix.add([Document("after", "the next add works")]) == 1  # and cleans what the crash left
    leftovers = [p for p in root.rglob("*") if p.is_file() and "n0" in p.read_bytes().decode("latin-1")]
    assert not [p for p in leftovers if p.suffix == ".jsonl"]
    Index.build(tmp_path / "fresh", docs[:3], ["hash"])  # a new build removes the killed one's staging
    assert not list(tmp_path.glob(".fresh.building-*"))


def test_one_writer_at_a_time(tmp_path, docs):
    import fcntl

    root = tmp_path / "ix"
    ix = Index.build(root, docs, ["hash"])
    with open(root / ".lock", "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        with pytest.raises(KeffError, match="another keff process is writing this index"):
            ix.add([Document("x", "y")])
    assert ix.add([Document("x", "y")]) == 1

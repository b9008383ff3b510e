"""Embedding engines: ``--engine ray`` gives byte-identical vectors to the in-process build.

One local Ray instance (2 CPUs, no dashboard) serves the whole module and is shut down at its
end; the teardown checks that none of its processes are left. Tests that need Ray are marked
slow (starting the instance and its actors takes tens of seconds on 2 cores).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from keff.docindex import Document, Index, read_documents
from keff.docindex import engines as engines_mod
from keff.docindex.engines import InProcessEngine, RayEngine, get_engine, plan_batches
from keff.docindex.manifest import read_manifest
from keff.encoders import CachedEncoder, EmbeddingCache, get_encoder
from keff.encoders.base import encode_in_batches
from keff.errors import KeffError, MissingExtra, ModelNotAvailable


def _ray_pids(marker: str) -> set[int]:
    """Pids of live processes whose command line names ``marker`` or that are Ray workers of ours."""
    found = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (proc / "stat").read_text().split(") ", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and marker in cmd:
            found.add(int(proc.name))
    return found


def _descendants(pids: set[int]) -> set[int]:
    """``pids`` and every process below them (Ray's workers are children of its raylet)."""
    out = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True).stdout
    children: dict[int, set[int]] = {}
    for line in out.splitlines():
        pid, ppid = map(int, line.split())
        children.setdefault(ppid, set()).add(pid)
    found, todo = set(), list(pids)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return found


@pytest.fixture(scope="module")
def ray_local():
    """A local Ray instance for this module, shut down after it; asserts no stray processes."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'keff[ray]')")
    temp = tempfile.mkdtemp(prefix="keff-ray-test-")
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, log_to_driver=False, configure_logging=False)
    yield ray
    ours = _descendants(_ray_pids(temp))  # the instance's processes name its temp folder
    assert ours, "found no process of the local Ray instance"
    ray.shutdown()
    deadline = time.monotonic() + 30
    left = set(ours)
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = {p for p in left if _state(p) != "Z"}
    shutil.rmtree(temp, ignore_errors=True)
    assert not left, f"Ray processes left after shutdown: {sorted(left)}"


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].split()[0]
    except OSError:
        return "Z"


def _vectors(ix: Index) -> dict[str, np.ndarray]:
    return {k: v for k, v in ix.vectors.items()}


def _same_bytes(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype == np.float32
        assert a[key].shape == b[key].shape
        assert a[key].tobytes() == b[key].tobytes(), f"vectors of {key} differ"


def _manifest_without_run(root: Path) -> dict:
    doc = read_manifest(root).to_dict()
    for record in doc["history"]:
        for field in ("time", "command", "engine"):
            record.pop(field, None)
    return doc


@pytest.fixture
def small_chunks(monkeypatch):
    """The embedding cache's chunks of 32 texts instead of 512, so 150 texts make several."""
    import functools

    from keff.encoders import CachedEncoder

    monkeypatch.setattr("keff.encoders.registry.CachedEncoder", functools.partial(CachedEncoder, chunk_size=32))
    return 32


def _many_docs(n: int) -> list[Document]:
    words = ["bread", "dough", "git", "rebase", "chocolate", "python", "venv", "kernel", "tensor", "cache"]
    rng = np.random.default_rng(0)
    docs = []
    for i in range(n):
        k = int(rng.integers(1, 30))
        docs.append(Document(f"d{i}", " ".join(words[j] for j in rng.integers(0, len(words), k)) + f" n{i}"))
    docs.append(Document("dup", docs[0].text))  # a repeated text: encoded once, as in-process
    return docs


# -- no Ray needed --------------------------------------------------------------------------------
def test_plan_is_the_in_process_batching():
    """The planned model batches are exactly the batches encode_in_batches runs."""
    rng = np.random.default_rng(1)
    texts = ["x" * int(n) for n in rng.integers(1, 60, size=150)]
    seen: list[list[str]] = []

    def record(batch):
        seen.append(list(batch))
        return np.zeros((len(batch), 2), dtype=np.float32)

    encode_in_batches(record, texts, 2, batch_size=32, description="t", show_progress=False)
    plan = plan_batches(texts, texts, chunk_size=len(texts), batch_size=32)
    assert [[texts[i] for i in b] for b in plan.batches] == seen
    chunked = plan_batches(texts, texts, chunk_size=64, batch_size=32)
    assert chunked.chunks == [(0, 64), (64, 128), (128, 150)]
    assert all(
        set(b.tolist()) <= set(range(*chunked.chunks[c])) for b, c in zip(chunked.batches, chunked.chunk_of_batch)
    )
    assert sorted(np.concatenate(chunked.batches).tolist()) == list(range(150))


def test_engine_names_and_options():
    assert isinstance(get_engine(None), InProcessEngine) and isinstance(get_engine("inprocess"), InProcessEngine)
    ray_engine = get_engine("ray", actors=3, batches_per_call=2)
    assert isinstance(ray_engine, RayEngine) and ray_engine.describe() == {"name": "ray", "actors": 3,
                                                                            "batches_per_call": 2}  # fmt: skip
    with pytest.raises(KeffError, match="unknown engine 'spark'"):
        get_engine("spark")
    with pytest.raises(KeffError, match="only apply to the ray engine"):
        get_engine("inprocess", actors=2)
    with pytest.raises(KeffError, match="actors must be an integer >= 1"):
        RayEngine(actors=0)


def test_missing_ray_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(MissingExtra, match=r"pip install 'keff\[ray\]'"):
        engines_mod.import_ray()


def test_cli_refuses_ray_options_without_ray_engine(tmp_path, capsys):
    from keff.cli import main
    from keff.cli.demo_cmd import sample_corpus_dir

    argv = [
        "index",
        "build",
        str(tmp_path / "i"),
        "--from",
        str(sample_corpus_dir()),
        "-e",
        "hash",
        "--ray-actors",
        "2",
    ]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2 and "--engine ray" in capsys.readouterr().err


# -- on a local Ray instance ---------------------------------------------------------------------
@pytest.mark.slow
def test_ray_build_is_byte_identical_to_in_process(tmp_path, ray_local, monkeypatch, small_chunks):
    docs = _many_docs(150)  # five cache chunks
    monkeypatch.setenv("KEFF_CACHE_DIR", str(tmp_path / "cache-a"))
    a = Index.build(tmp_path / "a", docs, ["hash"])
    monkeypatch.setenv("KEFF_CACHE_DIR", str(tmp_path / "cache-b"))
    b = Index.build(tmp_path / "b", docs, ["hash"], engine="ray", engine_options={"actors": 2, "batches_per_call": 3})
    _same_bytes(_vectors(a), _vectors(b))
    assert _manifest_without_run(a.root) == _manifest_without_run(b.root)
    assert read_manifest(b.root).history[-1]["engine"] == {"name": "ray", "actors": 2, "batches_per_call": 3}
    assert read_manifest(a.root).history[-1]["engine"] == {"name": "inprocess"}
    # the Ray build filled the cache: an in-process encode of the same texts is all hits
    enc = get_encoder("hash")
    enc.encode([d.text for d in docs])
    assert enc.misses == 0 and enc.hits == 150
    # add through Ray, then the same add in process
    more = [Document(f"m{i}", f"more text number {i} about {i % 7} things") for i in range(40)]
    b.add(more, engine="ray")
    monkeypatch.setenv("KEFF_CACHE_DIR", str(tmp_path / "cache-a"))
    a.add(more)
    _same_bytes(_vectors(a), _vectors(b))


@pytest.mark.slow
def test_ray_build_resumes_from_the_cache(tmp_path, ray_local, monkeypatch, small_chunks):
    """An interrupted Ray build leaves whole chunks cached; the re-run sends only the rest to Ray
    and still gives the in-process vectors."""
    docs = _many_docs(165)
    monkeypatch.setenv("KEFF_CACHE_DIR", str(tmp_path / "cache-a"))
    want = _vectors(Index.build(tmp_path / "a", docs, ["hash"]))
    monkeypatch.setenv("KEFF_CACHE_DIR", str(tmp_path / "cache-b"))

    sent: list[int] = []
    real_run = RayEngine._run

    def counting_run(self, raw, plan, cached):
        sent.append(len(plan.prepared))
        return real_run(self, raw, plan, cached)

    monkeypatch.setattr(RayEngine, "_run", counting_run)
    real_add = engines_mod._Gather.add

    def interrupted_add(self, rows, vectors):
        n = real_add(self, rows, vectors)
        if any(left == 0 for left in self.left):
            raise KeyboardInterrupt  # killed once a first chunk is complete and cached
        return n

    monkeypatch.setattr(engines_mod._Gather, "add", interrupted_add)
    with pytest.raises(KeyboardInterrupt):
        Index.build(tmp_path / "b", docs, ["hash"], engine="ray", engine_options={"actors": 2})
    assert not (tmp_path / "b").exists()
    enc = get_encoder("hash")
    texts = enc.prepare([d.text for d in docs])
    cached = sum(enc.cache.has_entry(enc.fingerprint, t) for t in dict.fromkeys(texts))
    assert cached > 0 and cached % small_chunks == 0 and cached < 165  # whole chunks only

    monkeypatch.setattr(engines_mod._Gather, "add", real_add)
    got = Index.build(tmp_path / "b", docs, ["hash"], engine="ray", engine_options={"actors": 2})
    assert sent == [165, 165 - cached]
    _same_bytes(want, _vectors(got))


@pytest.mark.slow
def test_worker_with_another_fingerprint_is_refused(ray_local):
    raw = get_encoder("hash", cache=False)
    raw.__dict__["fingerprint"] = "0" * 64  # the driver's model differs from the one a worker loads
    with pytest.raises(KeffError, match=r"Ray worker on .* fingerprint .* but the driver's has 000000000000"):
        RayEngine(actors=1).encode(raw, ["some text", "another text"])


@pytest.mark.slow
def test_cli_build_with_ray_engine(run, tmp_path, ray_local):
    from keff.cli.demo_cmd import sample_corpus_dir

    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    res = run("index", "build", b, "--from", str(sample_corpus_dir()), "-e", "hash", "--engine", "ray",
              "--ray-actors", "1", "--ray-batch", "2")  # fmt: skip
    assert res.exit_code == 0 and "48 documents" in res.output, res.output
    assert run("index", "build", a, "--from", str(sample_corpus_dir()), "-e", "hash").exit_code == 0
    _same_bytes(_vectors(Index.open(a)), _vectors(Index.open(b)))


# -- real models (slow) -------------------------------------------------------------------------
def _model_or_skip(name: str):
    try:
        enc = get_encoder(name, cache=False)
        enc.dim  # noqa: B018 - loads the model
    except ModelNotAvailable as exc:
        pytest.skip(f"{name} is not installed: {exc}")
    return enc


@pytest.mark.slow
def test_ray_matches_in_process_with_padding_sensitive_minilm(tmp_path, ray_local, shared_data):
    """minilm pads each batch, so its vectors depend on batch composition: Ray must run the same
    batches. Short texts of varied length keep this fast."""
    folder = shared_data / "beir" / "scifact"
    if not (folder / "corpus.jsonl").is_file():
        pytest.skip(f"SciFact is not under {shared_data}")
    raw = _model_or_skip("minilm")  # loaded once here, shared by both caches
    rng = np.random.default_rng(0)
    texts = [d.text[: int(rng.integers(20, 300))] for d in read_documents(folder)[:40]]  # batches of 32 and 8
    want = InProcessEngine().encode(CachedEncoder(raw, EmbeddingCache(tmp_path / "a")), texts)
    got = RayEngine(actors=1).encode(CachedEncoder(raw, EmbeddingCache(tmp_path / "b")), texts)
    assert got.dtype == want.dtype == np.float32 and got.tobytes() == want.tobytes()
    # the test can fail: other batches (here: each text alone) give other bytes
    alone = np.vstack([raw.encode([t], show_progress=False) for t in texts[:4]])
    assert alone.tobytes() != want[:4].tobytes()

"""Scale of the persistent index (:mod:`keff.docindex`): build time, memory, size on disk, query
latency and recall@10 of the exact and approximate backends at growing sizes, plus the latency of
a search with and without query encoding on a real SciFact index.

**Synthetic vectors.** Random isotropic vectors have no neighbourhood structure (every point is
about equally far from every other), which makes any approximate search look far worse than on
real embeddings. So the documents and queries are drawn from a model fitted to real vectors
(SciFact's 5,183 abstracts embedded by minilm): a mixture of anisotropic Gaussians on the sphere,
one component per real vector, each centred on it and shaped by its neighbourhood. For a real
vector ``x_i``, the offsets ``x_j - x_i`` to its ``neighbours`` nearest real vectors give, by SVD,
a local basis ``V_i`` (the top ``rank`` directions) and the spread ``s_i`` along each (singular
values / sqrt(neighbours)). A draw picks ``i`` uniformly and returns
``normalise(x_i + (z * s_i) @ V_i)`` with ``z ~ N(0, I_rank)``. The cloud thus keeps the real
topics (the centres), their local directions and widths, and a low local dimension, the
properties that decide how hard a nearest-neighbour search is. Queries are fresh draws from the
same model (never documents). :func:`data_model_check` compares the model with the real vectors
(and with isotropic and single-Gaussian clouds) at the real size: nearest-neighbour cosines,
local intrinsic dimension, and the recall of small HNSW/IVF settings. The backends are also run on
the real SciFact vectors (real claims as queries) as a sanity check.

**Measurement.** Every (data, size, backend) runs in its own child process (``threads`` BLAS and
OpenMP threads, default 1, so exact and approximate search compare algorithms, not thread
scheduling on a shared machine): it builds through :meth:`Index.build` (``vectors=`` skips
encoding; the documents are tiny placeholder texts), reopens the index with every check, then
searches through :meth:`Index.search_vectors`. Peak memory is the child's peak RSS
(``getrusage``), reported with the RSS before loading data and with the data loaded. For each
search-time setting (HNSW ``ef_search``, IVF ``nprobe``; swept on one built structure through
:meth:`keff.docindex.backends.Searcher.tune`), recall@10 is measured against exact search
(:class:`keff.index.ExactIndex`) on the same queries, batched throughput with
:func:`keff.eval.measure_batch_throughput` and single-query p50/p95 with
:func:`keff.eval.measure_latency`.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from keff.docindex.documents import Document
from keff.docindex.index import Index
from keff.eval import measure_batch_throughput, measure_latency, run_metadata
from keff.index import ExactIndex
from keff.studies.common import log

#: Where the real vectors the model is fitted to live, under the shared data folder.
REAL_VECTORS = Path("embeddings") / "scifact" / "minilm"
APPROXIMATE = ("hnsw", "ivf")


@dataclass
class IndexScaleConfig:
    """What the index scale study runs.

    Attributes
    ----------
    sizes : tuple of int
        Numbers of synthetic documents.
    backends : tuple of str
        Index backends (:data:`keff.docindex.backends.KINDS`); ``exact`` is the reference.
    encoder : str
        Encoder the index records (its width must be the real vectors'); nothing is encoded.
    n_queries : int
        Held-out synthetic queries (recall and batched throughput).
    k : int
        Results per query (recall@k).
    hnsw_m, hnsw_ef_construction : int
        HNSW build parameters.
    ef_search : tuple of int
        HNSW search-time settings swept.
    ivf_nlist : int
        IVF lists (0: the backend's default, 4 sqrt(n)).
    nprobe : tuple of int
        IVF search-time settings swept.
    model_neighbours, model_rank : int
        Neighbourhood size and rank of the data model's local components (module docstring).
    latency_n : int
        Timed single queries per setting.
    batch_repeats : int
        Timed whole-batch searches per setting (median reported).
    threads : int
        BLAS and OpenMP threads of every measuring child process.
    real : bool
        Also run the backends on the real vectors (sanity check).
    encoding_latency : bool
        Measure search latency with and without encoding on a SciFact index (needs the encoder).
    target_recall, target_speedup : float
        The target at the largest size: an approximate backend with recall@k >= target_recall and
        batched queries/s >= target_speedup x exact's.
    seed : int
        Seed of the data draws and of the timed query draws.
    workdir : Path, optional
        Where indexes are built (default: a temporary folder, removed at the end).
    """

    sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    backends: tuple[str, ...] = ("exact", "flat", "hnsw", "ivf")
    encoder: str = "minilm"
    n_queries: int = 1000
    k: int = 10
    hnsw_m: int = 32
    hnsw_ef_construction: int = 80
    ef_search: tuple[int, ...] = (16, 32, 64, 128, 256)
    ivf_nlist: int = 0
    nprobe: tuple[int, ...] = (8, 16, 32, 64, 128, 256)
    model_neighbours: int = 20
    model_rank: int = 16
    latency_n: int = 200
    batch_repeats: int = 3
    threads: int = 1
    real: bool = True
    encoding_latency: bool = True
    target_recall: float = 0.95
    target_speedup: float = 10.0
    seed: int = 0
    workdir: Path | None = field(default=None)

    def plan(self, kind: str) -> tuple[dict[str, int], list[dict[str, int]]]:
        """Build parameters and the search-time settings swept for backend ``kind``."""
        if kind == "hnsw":
            build = {"M": self.hnsw_m, "ef_construction": self.hnsw_ef_construction, "ef_search": self.ef_search[0]}
            return build, [{"ef_search": e} for e in self.ef_search]
        if kind == "ivf":
            return {"nlist": self.ivf_nlist, "nprobe": self.nprobe[0]}, [{"nprobe": p} for p in self.nprobe]
        return {}, [{}]


# -- the data model ---------------------------------------------------------------------------
@dataclass
class LocalGaussianModel:
    """The fitted data model (module docstring): centres (N, d), local bases (N, r, d) and
    spreads (N, r), float32."""

    centres: np.ndarray
    bases: np.ndarray
    spreads: np.ndarray

    @classmethod
    def fit(cls, real: np.ndarray, neighbours: int = 20, rank: int = 16) -> LocalGaussianModel:
        """Fit to unit ``real`` vectors (n, d): one component per vector, from its neighbours."""
        X = np.ascontiguousarray(real, dtype=np.float32)
        neighbours = min(neighbours, len(X) - 1)
        rank = min(rank, neighbours, X.shape[1])
        nearest = _nearest(X, X, neighbours + 1)[1][:, 1:]  # drop the point itself
        offsets = (X[nearest] - X[:, None, :]).astype(np.float64)  # (n, neighbours, d)
        _, sing, vt = np.linalg.svd(offsets, full_matrices=False)
        return cls(X, vt[:, :rank].astype(np.float32), (sing[:, :rank] / np.sqrt(neighbours)).astype(np.float32))

    def describe(self) -> dict[str, Any]:
        return {
            "components": int(len(self.centres)),
            "dim": int(self.centres.shape[1]),
            "rank": int(self.bases.shape[1]),
            "median_component_spread": float(np.median(np.sqrt((self.spreads**2).sum(axis=1)))),
        }

    def sample(self, n: int, rng: np.random.Generator, out: np.ndarray | None = None, chunk: int = 32768):
        """``n`` unit vectors (n, d) drawn from the model (into ``out`` when given)."""
        d = self.centres.shape[1]
        out = np.empty((n, d), dtype=np.float32) if out is None else out
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            comp = rng.integers(0, len(self.centres), stop - start)
            z = rng.standard_normal((stop - start, self.bases.shape[1]), dtype=np.float32) * self.spreads[comp]
            x = self.centres[comp] + np.einsum("nr,nrd->nd", z, self.bases[comp])
            x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
            out[start:stop] = x
        return out


def _nearest(docs: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` (scores, rows) of ``queries`` among ``docs`` (inner product)."""
    return ExactIndex(docs).search(queries, k)


def cloud_stats(docs: np.ndarray, queries: np.ndarray, *, k: int = 10, lid_k: int = 20) -> dict[str, float]:
    """Neighbourhood statistics of a cloud seen from ``queries``: median cosine to the 1st and
    ``k``-th nearest document, mean cosine to any document, median local intrinsic dimension
    (the maximum-likelihood estimate over the ``lid_k`` nearest chordal distances), and the
    participation ratio of the documents' covariance spectrum (an effective global dimension)."""
    scores, _ = _nearest(docs, queries, max(k, lid_k))
    dist = np.sqrt(np.maximum(2.0 - 2.0 * scores[:, :lid_k].astype(np.float64), 1e-12))
    lid = -1.0 / np.mean(np.log(dist[:, :-1] / dist[:, -1:]), axis=1)
    ev = np.clip(np.linalg.eigvalsh(np.cov(docs.T.astype(np.float64))), 0, None)
    return {
        "nn1_cos": float(np.median(scores[:, 0])),
        f"nn{k}_cos": float(np.median(scores[:, k - 1])),
        "mean_cos": float(np.mean(queries @ docs.mean(axis=0))),
        "lid": float(np.median(lid)),
        "participation_ratio": float(ev.sum() ** 2 / (ev**2).sum()),
    }


def _bare_recalls(docs: np.ndarray, queries: np.ndarray, k: int) -> dict[str, float]:
    """Recall@k of small bare-FAISS settings (HNSW M 16, ef 16; IVF 64 lists, 4 probed), where
    differences between clouds show."""
    import faiss

    truth = _nearest(docs, queries, k)[1]
    d = docs.shape[1]
    hnsw = faiss.IndexHNSWFlat(d, 16, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 40
    hnsw.add(docs)
    hnsw.hnsw.efSearch = 16
    nlist = max(1, min(64, len(docs) // 39))
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.train(docs)
    ivf.add(docs)
    ivf.nprobe = max(1, nlist // 16)
    return {
        "hnsw_m16_ef16_recall": recall_at(hnsw.search(queries, k)[1], truth),
        f"ivf_{nlist}_nprobe{ivf.nprobe}_recall": recall_at(ivf.search(queries, k)[1], truth),
    }


def data_model_check(real: np.ndarray, model: LocalGaussianModel, *, seed: int = 0, held_out: int = 500,
                     k: int = 10) -> list[dict[str, Any]]:  # fmt: skip
    """The model against the real vectors at the real size: ``held_out`` real vectors query the
    rest; the same numbers of documents and queries drawn from the model, from one Gaussian with
    the real mean and covariance, and from the isotropic distribution."""
    rng = np.random.default_rng([seed, 3])
    held_out = min(held_out, len(real) // 5)
    perm = rng.permutation(len(real))
    n_docs = len(real) - held_out
    X = np.ascontiguousarray(real, dtype=np.float32)
    clouds = {"real vectors (held-out vectors as queries)": (X[perm[held_out:]], X[perm[:held_out]])}
    synth = model.sample(len(real), rng)
    clouds["the model (fresh draws as queries)"] = (synth[held_out:], synth[:held_out])
    mean, cov = X.mean(axis=0).astype(np.float64), np.cov(X.T.astype(np.float64))
    gauss = rng.multivariate_normal(mean, cov, size=len(real), method="eigh").astype(np.float32)
    iso = rng.standard_normal((len(real), X.shape[1])).astype(np.float32)
    for name, cloud in (("one Gaussian, real mean and covariance", gauss), ("isotropic", iso)):
        cloud /= np.linalg.norm(cloud, axis=1, keepdims=True)
        clouds[name] = (cloud[held_out:], cloud[:held_out])
    rows = []
    for name, (docs, queries) in clouds.items():
        rows.append({"cloud": name, "docs": n_docs, "queries": held_out, **cloud_stats(docs, queries, k=k),
                     **_bare_recalls(docs, queries, k)})  # fmt: skip
    return rows


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of each query's true rows among the found ones (-1 rows never count)."""
    k = truth.shape[1]
    hits = [np.intersect1d(f[f >= 0], t).size for f, t in zip(found, truth)]
    return float(np.mean(hits) / k)


# -- one measured index (a child process) ------------------------------------------------------
def _status_mb(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")  # pragma: no cover - Linux only


def _rss_mb() -> float:
    return _status_mb("VmRSS")


def _peak_mb() -> float:
    """Peak RSS of this process. ``VmHWM``, not ``getrusage``'s ``ru_maxrss``: Linux carries the
    parent's peak at the fork into a spawned child's ``ru_maxrss``, ``VmHWM`` is this process's own."""
    peak = _status_mb("VmHWM")
    return peak if peak == peak else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _disk_mb(root: Path) -> float:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 2**20


def measure_index(job: dict[str, Any]) -> dict[str, Any]:
    """Build, reopen and search one index as :func:`run` describes; ``job`` is the child's spec."""
    threads = int(job["threads"])
    if job["backend"] != "exact":
        import faiss

        faiss.omp_set_num_threads(threads)
    base = _rss_mb()
    n = int(job["n"])
    vectors = np.array(np.load(job["vectors"], mmap_mode="r")[:n], dtype=np.float32)
    queries = np.load(job["queries"])
    truth = np.load(job["truth"])
    docs = [Document(f"doc{i}", f"placeholder text of document {i}") for i in range(n)]
    loaded = _rss_mb()
    root = Path(job["index"])
    start = time.perf_counter()
    index = Index.build(root, docs, [job["encoder"]], backend=job["backend"], backend_params=job["build_params"],
                        vectors={job["encoder"]: vectors})  # fmt: skip
    build_s = time.perf_counter() - start
    build_peak = _peak_mb()
    index.close()
    del index, vectors, docs
    gc.collect()
    start = time.perf_counter()
    index = Index.open(root)
    open_s = time.perf_counter() - start
    serving = _rss_mb()
    key = index.encoder_keys[0]
    searcher = index._searchers[key]  # the study sweeps search-time settings on one structure
    k = int(job["k"])

    def search(q: np.ndarray):
        return index.search_vectors({key: q}, k)

    spec = dict(index.manifest.backend)
    sweep = job["sweep"]
    if spec["kind"] == "ivf":  # probing more lists than there are is probing them all
        sweep = [s for s in sweep if s["nprobe"] < spec["nlist"]] + [{"nprobe": spec["nlist"]}]
        sweep = [s for s in sweep if s["nprobe"] <= max(x["nprobe"] for x in job["sweep"])] or sweep[-1:]
    settings = []
    for setting in sweep:
        searcher.tune(**setting)
        scores, rows = search(queries)  # also the warm-up of the timings
        settings.append({
            "params": setting,
            f"recall@{k}": recall_at(rows, truth),
            "batch": measure_batch_throughput(search, queries, repeats=int(job["batch_repeats"]), warmup=0),
            "single": measure_latency(search, queries, n=int(job["latency_n"]), warmup=10, seed=int(job["seed"])),
        })  # fmt: skip
        log(f"  {job['backend']} {setting or ''}: recall@{k} {settings[-1][f'recall@{k}']:.4f}, "
            f"{settings[-1]['batch']['queries_per_s']:,.0f} q/s batched, "
            f"p50 {settings[-1]['single']['p50_us']:,.0f} us")  # fmt: skip
    index.close()
    return {
        "backend": job["backend"],
        "n": n,
        "build_params": spec,
        "build_s": build_s,
        "open_s": open_s,
        "rss_base_mb": base,
        "rss_loaded_mb": loaded,
        "peak_build_mb": build_peak,
        "rss_serving_mb": serving,
        "peak_total_mb": _peak_mb(),
        "vectors_mb": n * int(queries.shape[1]) * 4 / 2**20,
        "disk_mb": _disk_mb(root),
        "settings": settings,
    }


def child_main(job_path: str) -> int:
    """Entry point of a measuring child process: reads the job, writes its result JSON."""
    job = json.loads(Path(job_path).read_text())
    result = measure_index(job)
    Path(job["out"]).write_text(json.dumps(result, default=float))
    return 0


def _run_child(job: dict[str, Any], folder: Path, threads: int, target: str = "child_main") -> dict[str, Any]:
    """Run ``target`` of this module on ``job`` in a fresh process with ``threads`` threads."""
    folder.mkdir(parents=True, exist_ok=True)
    job = {**job, "threads": threads, "out": str(folder / "result.json")}
    spec = folder / "job.json"
    spec.write_text(json.dumps(job))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads)}  # fmt: skip
    code = f"import sys; from keff.studies.index_scale import {target}; sys.exit({target}(sys.argv[1]))"
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, str(spec)], env=env, stderr=subprocess.PIPE, text=True)
    sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-3:]
        why = "killed (out of memory?)" if proc.returncode < 0 else f"exit {proc.returncode}"
        log(f"  FAILED after {time.perf_counter() - start:.0f} s: {why}")
        return {"error": f"{why}: {' | '.join(tail)}", "wall_s": time.perf_counter() - start}
    return json.loads(Path(job["out"]).read_text())


def measure_cloud(name: str, vectors: Path, queries: np.ndarray, n: int, config: IndexScaleConfig,
                  work: Path) -> dict[str, Any]:  # fmt: skip
    """Every backend on the first ``n`` rows of ``vectors`` (a .npy file) with ``queries``."""
    docs = np.load(vectors, mmap_mode="r")[:n]
    start = time.perf_counter()
    truth_scores, truth = _nearest(np.asarray(docs), queries, config.k)
    log(f"{name}, {n:,} documents: exact truth of {len(queries):,} queries in {time.perf_counter() - start:.0f} s")
    folder = work / f"{name.split()[0]}-{n}"
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "queries.npy", queries)
    np.save(folder / "truth.npy", truth)
    runs = []
    for kind in config.backends:
        build, sweep = config.plan(kind)
        log(f"{name}, {n:,} documents, {kind} {build or ''}")
        job = {"backend": kind, "n": n, "vectors": str(vectors), "queries": str(folder / "queries.npy"),
               "truth": str(folder / "truth.npy"), "encoder": config.encoder, "build_params": build, "sweep": sweep,
               "k": config.k, "latency_n": config.latency_n, "batch_repeats": config.batch_repeats,
               "threads": config.threads, "seed": config.seed, "index": str(folder / kind / "index")}  # fmt: skip
        result = _run_child(job, folder / kind, config.threads)
        shutil.rmtree(folder / kind / "index", ignore_errors=True)
        runs.append({"backend": kind, "n": n, **result})
        if "error" not in result:
            log(f"  built in {result['build_s']:.1f} s, peak RSS {result['peak_build_mb']:,.0f} MB, "
                f"{result['disk_mb']:,.0f} MB on disk")  # fmt: skip
    return {
        "cloud": name,
        "n": n,
        "queries": int(len(queries)),
        "median_nn1_cos": float(np.median(truth_scores[:, 0])),
        f"median_nn{config.k}_cos": float(np.median(truth_scores[:, -1])),
        "runs": runs,
    }


# -- search latency with and without encoding (SciFact) ---------------------------------------
def encoding_child(job_path: str) -> int:
    """Child entry point of :func:`encoding_latency`."""
    job = json.loads(Path(job_path).read_text())
    Path(job["out"]).write_text(json.dumps(encoding_latency(job), default=float))
    return 0


def encoding_latency(job: dict[str, Any]) -> dict[str, Any]:
    """Single-query latency of ``Index.search(texts)`` (encoding included) against
    ``Index.search_vectors`` (vectors given) on a SciFact index built with ``job["encoder"]``;
    queries are SciFact's test claims.

    Three ways in: a claim the embedding cache has never seen (the model encodes it and the cache
    stores it: a new user query), the same claims again (cache hits), and vectors given. The new
    claims are each timed once, in a fresh cache folder; a claim repeated in the pool is skipped.
    """
    from keff.data import load_beir
    from keff.docindex.ingest import beir_documents
    from keff.encoders import get_encoder
    from keff.precomputed import seed_beir_vectors

    data, name, n, seed = Path(job["data"]), job["encoder"], int(job["latency_n"]), int(job["seed"])
    folder = data / "beir" / "scifact"
    ds = load_beir(folder)
    enc = get_encoder(name)
    prepared = enc.prepare(ds.doc_texts, "doc")
    missing = sum(v is None for v in enc.cache.get_many(enc.fingerprint, prepared, enc.dim))
    seeded = None
    if missing:
        log(f"seeding keff's cache with {name}'s SciFact vectors ({missing} documents missing)")
        seeded = [r.message for r in seed_beir_vectors(enc, ds, data / REAL_VECTORS.parent / name, seed=seed)]
    root = Path(job["index"])
    start = time.perf_counter()
    index = Index.build(root, beir_documents(folder), [name], overwrite=True)
    build_s = time.perf_counter() - start
    key = index.encoder_keys[0]
    _, claims = ds.split_queries("test")
    claims = list(dict.fromkeys(claims))
    qvecs = index.encode_queries(claims)[key]

    def vectors_given(q: np.ndarray):
        return index.hits(*index.search_vectors({key: q}, 10))

    given = measure_latency(vectors_given, qvecs, n=n, warmup=10, seed=seed)

    # a fresh cache: every claim is new to it once
    os.environ["KEFF_CACHE_DIR"] = str(root.parent / "fresh-cache")
    fresh = Index.open(root)
    order = iter(np.random.default_rng(seed).permutation(len(claims)))
    pool = np.arange(len(claims), dtype=np.float64)[:, None]

    def new_claim(_: np.ndarray):
        return fresh.search([claims[next(order)]], 10)

    # loading the model sets torch to every core (keff's sentence-transformers encoder does);
    # on a shared machine that costs far more than it gives to one short query: back to `threads`
    fresh.encoder(key).encoder.encode(["load the model"], kind="query")
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(int(job["threads"]))
    n_new = min(n, len(claims) - 10)
    new = measure_latency(new_claim, pool, n=n_new, warmup=10, seed=seed)
    fresh.encode_queries(claims)  # every claim now in the fresh cache
    repeated = measure_latency(lambda q: fresh.search([claims[int(q[0, 0])]], 10), pool, n=n, warmup=10, seed=seed)
    model = fresh.encoder(key).encoder  # the encoder without its cache

    def model_only(q: np.ndarray):
        return model.encode([claims[int(q[0, 0])]], kind="query")

    encode = measure_latency(model_only, pool, n=n, warmup=10, seed=seed)
    return {
        "encoder": name,
        "documents": index.n_docs,
        "claims": len(claims),
        "build_s": build_s,
        "seeded": seeded,
        "torch_threads": int(job["threads"]),
        "search_vectors": given,
        "search_new_text": new,
        "search_cached_text": repeated,
        "encode_only": encode,
    }


# -- the study ----------------------------------------------------------------------------------
def target_verdict(cloud: dict[str, Any], config: IndexScaleConfig) -> dict[str, Any]:
    """Whether an approximate backend reaches the target at this cloud's size (see the config)."""
    k = config.k
    ok = {r["backend"]: r for r in cloud["runs"] if "error" not in r}
    exact = ok.get("exact")
    if exact is None:
        return {"n": cloud["n"], "met": None, "why": "exact search was not measured"}
    exact_qps = exact["settings"][0]["batch"]["queries_per_s"]
    exact_p50 = exact["settings"][0]["single"]["p50_us"]
    candidates = []
    for kind in APPROXIMATE:
        for s in ok.get(kind, {}).get("settings", []):
            candidates.append({
                "backend": kind, "params": s["params"], f"recall@{k}": s[f"recall@{k}"],
                "qps": s["batch"]["queries_per_s"], "speedup_batched": s["batch"]["queries_per_s"] / exact_qps,
                "speedup_single_p50": exact_p50 / s["single"]["p50_us"],
            })  # fmt: skip
    good = [c for c in candidates if c[f"recall@{k}"] >= config.target_recall]
    best = max(good, key=lambda c: c["qps"], default=None)
    by_backend = {}
    for kind in APPROXIMATE:
        mine = [c for c in good if c["backend"] == kind]
        by_backend[kind] = max(mine, key=lambda c: c["qps"], default=None)
    return {
        "n": cloud["n"],
        "exact_qps": exact_qps,
        "exact_p50_us": exact_p50,
        "best": best,
        "best_per_backend": by_backend,
        "met": bool(best is not None and best["speedup_batched"] >= config.target_speedup),
    }


def run(config: IndexScaleConfig, *, data: Path | None = None) -> dict[str, Any]:
    """Run the study (module docstring); ``data`` is the shared data folder (real vectors, and
    SciFact for the encoding latency)."""
    from keff.studies.common import shared_data

    data = shared_data(data)
    real_dir = data / REAL_VECTORS
    real = np.load(real_dir / "corpus.npy").astype(np.float32)
    real_queries = np.load(real_dir / "queries.npy").astype(np.float32)
    log(f"fitting the data model to {real_dir} ({real.shape[0]:,} x {real.shape[1]})")
    model = LocalGaussianModel.fit(real, config.model_neighbours, config.model_rank)
    check = data_model_check(real, model, seed=config.seed, k=config.k)
    for row in check:
        log(f"  {row['cloud']}: nn1 {row['nn1_cos']:.3f}, LID {row['lid']:.1f}, "
            f"HNSW recall {row['hnsw_m16_ef16_recall']:.3f}")  # fmt: skip
    own = config.workdir is None
    work = Path(tempfile.mkdtemp(prefix="keff-index-scale-")) if own else Path(config.workdir)
    work.mkdir(parents=True, exist_ok=True)
    try:
        clouds = []
        if config.real:
            np.save(work / "real.npy", real)
            clouds.append(measure_cloud("scifact real minilm vectors", work / "real.npy", real_queries, len(real),
                                        config, work))  # fmt: skip
        sizes = sorted(config.sizes)
        if sizes:
            path = work / "synthetic.npy"
            docs = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(sizes[-1], real.shape[1]))
            model.sample(sizes[-1], np.random.default_rng([config.seed, 1]), out=docs)
            docs.flush()
            del docs
            queries = model.sample(config.n_queries, np.random.default_rng([config.seed, 2]))
            for n in sizes:
                clouds.append(measure_cloud("synthetic", path, queries, n, config, work))
        encoding = None
        if config.encoding_latency:
            log(f"SciFact index with {config.encoder}: search latency with and without encoding")
            job = {"data": str(data), "encoder": config.encoder, "latency_n": config.latency_n, "seed": config.seed,
                   "index": str(work / "scifact-encoding" / "index")}  # fmt: skip
            encoding = _run_child(job, work / "scifact-encoding", config.threads, target="encoding_child")
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)
    return {
        "benchmark": "index_scale",
        "meta": run_metadata(seed=config.seed, threads=config.threads, cpus=os.cpu_count()),
        "config": {**asdict(config), "workdir": None},
        "data_model": {
            "fitted_to": str(REAL_VECTORS / "corpus.npy"),
            "neighbours": config.model_neighbours,
            **model.describe(),
            "check": check,
        },
        "clouds": clouds,
        "targets": [target_verdict(c, config) for c in clouds],
        "encoding_latency": encoding,
    }


__all__ = ["IndexScaleConfig", "LocalGaussianModel", "cloud_stats", "data_model_check", "recall_at", "run"]

"""Milvus (Lite) as the index's search backend on real data, against keff's own FAISS and exact search.

Two parts, each rendered on its own (``benchmarks/render.py``):

- ``single``: SciFact's 5,183 abstracts with one encoder (minilm), the 300 test claims, top 10,
  for the backends ``exact`` (numpy), ``flat`` (FAISS ``IndexFlatIP``) and ``milvus`` (Milvus Lite,
  FLAT/IP): agreement of each top 10 with exact search (identical lists; lists that differ only
  in the order of documents of equal cosine, i.e. ties; lists that differ beyond ties), nDCG@10,
  build time (median of repeats, vectors from keff's cache so encoding is not timed) and
  single-query search latency (p50/p95, queries already encoded).
- ``fused``: an index of two encoders (minilm + mpnet) with fusion weights fitted on the train
  claims (:func:`keff.docindex.evaluate.fit_fusion_weights`, on the exact index). keff's fused
  search (exact: every row; ``flat``: exact re-scoring of the union of each encoder's top
  ``max(4k, 100)``) against Milvus's multi-vector hybrid search (``WeightedRanker`` with the same
  weights): at keff's candidate depth with ``norm_score=False`` (the backend's default); at an
  oracle depth per query (the deepest rank either encoder gives to a document of keff's exact
  fused top 10, so each such document gets its full score: shows the candidate depth is the only
  difference, and how deep it must go); and with pymilvus's default ``norm_score=True`` (each
  cosine squashed through ``0.5 + arctan(s)/pi`` before weighting). Unequal weights (0.2/0.8) are
  run as well, since the fitted ones may be equal. Every document as a candidate (depth = all)
  is timed on a few queries only: Milvus Lite builds each hit in Python.

Agreement is judged by keff's own cosines of the returned rows: two top-10 lists that differ
only by ties hold the same cosines rank by rank (within ``tol``). nDCG@10 scores each system's
returned order (rank-based run scores, so a tie broken differently counts as it is shown).
Document vectors come from the shipped precomputed ones after keff's seeding checks; an encoder
without shipped vectors is refused rather than encoded (mpnet encodes about 1.6 abstracts/s here).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from keff.data import load_beir
from keff.docindex import Index, read_documents
from keff.docindex.evaluate import fit_fusion_weights
from keff.encoders import get_encoder
from keff.errors import DataError
from keff.eval import evaluate_run, judged_queries, measure_latency, run_metadata
from keff.paths import shipped_vectors
from keff.precomputed import seed_beir_vectors
from keff.studies.common import log
from keff.tasks import beir_task

METRIC = "ndcg@10"


@dataclass
class MilvusStudyConfig:
    """What the Milvus study runs.

    Attributes
    ----------
    dataset : str
        BEIR data set under the shared data's ``beir/``.
    single : str
        Encoder of the single-encoder part.
    fused : tuple of str
        Encoders of the fused part (each needs shipped vectors).
    split, fit_split : str
        Queries searched; queries the fusion weights are fitted on.
    k : int
        Results compared per query.
    latency_queries : int
        Timed single-query searches per system.
    full_depth_queries : int
        Queries searched with every document as a candidate of each field (slow in Milvus Lite).
    build_repeats : int
        Builds per backend (the median is reported).
    tol : float
        Two cosines closer than this are a tie.
    seed : int
    workdir : Path, optional
        Where the indexes are built (default: a temporary folder, removed afterwards).
    """

    dataset: str = "scifact"
    single: str = "minilm"
    fused: tuple[str, ...] = ("minilm", "mpnet")
    split: str = "test"
    fit_split: str = "train"
    k: int = 10
    latency_queries: int = 200
    full_depth_queries: int = 3
    build_repeats: int = 3
    tol: float = 1e-6
    seed: int = 0
    workdir: Path | None = None


def compare_topk(
    rows: np.ndarray,
    reference: np.ndarray,
    vectors: dict[str, np.ndarray],
    queries: dict[str, np.ndarray],
    weights: np.ndarray,
    *,
    tol: float = 1e-6,
) -> dict[str, Any]:
    """Agreement of two top-k row matrices, ties told apart by keff's own (weighted) cosines.

    Parameters
    ----------
    rows, reference : ndarray of int, shape (n, k)
        Rows returned per query (-1 = none).
    vectors : dict of str to ndarray
        Encoder key -> (n_rows, d) document vectors.
    queries : dict of str to ndarray
        Encoder key -> (n, d) query vectors (the same keys, in the order of ``weights``).
    weights : ndarray, shape (S,) or (S, n)
        Encoder weights of the score (``[1.0]`` for one encoder).
    tol : float
        Cosines closer than this are equal.

    Returns
    -------
    dict
        ``n_queries``; ``identical`` (same rows, same order), ``same_set``, ``differs_only_by_ties``
        (differing lists whose cosines agree rank by rank), ``differs_beyond_ties`` (counts of
        queries); ``mean_overlap`` (|A & B| / k); ``examples`` (up to 3 queries differing beyond ties).
    """
    keys = list(queries)
    n, k = reference.shape
    w = np.asarray(weights, dtype=np.float64)
    w = np.repeat(w[:, None], n, axis=1) if w.ndim == 1 else w

    def cosines(r: np.ndarray) -> np.ndarray:
        out = np.full(r.shape, -np.inf)
        for i in range(n):
            ok = r[i] >= 0
            out[i, ok] = sum(w[j, i] * (vectors[key][r[i, ok]] @ queries[key][i]) for j, key in enumerate(keys))
        return out

    got, want = cosines(rows), cosines(reference)
    identical = same_set = ties = beyond = 0
    overlap, examples = [], []
    for i in range(n):
        a, b = [int(x) for x in rows[i] if x >= 0], [int(x) for x in reference[i] if x >= 0]
        overlap.append(len(set(a) & set(b)) / k)
        if a == b:
            identical += 1
            continue
        same_set += set(a) == set(b)
        if len(a) == len(b) and np.allclose(got[i], want[i], rtol=0, atol=tol):
            ties += 1
        else:
            beyond += 1
            if len(examples) < 3:
                first = next(j for j in range(min(len(a), len(b))) if a[j] != b[j]) if a[: len(b)] != b else len(b)
                examples.append({"query": i, "first_rank": first, "got": a, "reference": b})
    return {
        "n_queries": int(n),
        "identical": identical,
        "same_set": identical + same_set,
        "differs_only_by_ties": ties,
        "differs_beyond_ties": beyond,
        "mean_overlap": float(np.mean(overlap)) if overlap else 1.0,
        "examples": examples,
    }


def ndcg(index: Index, rows: np.ndarray, task, judged) -> float:
    """nDCG@10 of the returned order (run scores by rank)."""
    ids = index.documents.ids
    k = rows.shape[1]
    run = {
        qid: {ids[int(r)]: float(k - j) for j, r in enumerate(row) if r >= 0} for qid, row in zip(task.query_ids, rows)
    }
    return float(evaluate_run(run, judged, (METRIC,))[0][METRIC])


def _seeded(name: str, folder: Path, dataset) -> list[dict]:
    vectors = shipped_vectors(folder, name)
    if vectors is None:
        raise DataError(f"no shipped {name} vectors for {folder.name}: the study never encodes a corpus itself")
    reports = seed_beir_vectors(get_encoder(name), dataset, vectors)
    for r in reports:
        log(f"{name}: {r.message}")
    return [{"file": Path(r.source).name, "min_cosine": r.min_cosine, "n_checked": r.n_checked} for r in reports]


def _build(workdir: Path, name: str, docs, encoders, backend: str, repeats: int) -> tuple[Index, dict]:
    seconds = []
    ix = None
    for _ in range(repeats):
        if ix is not None:
            ix.close()
        start = time.perf_counter()
        ix = Index.build(workdir / name, docs, list(encoders), backend=backend, overwrite=True)
        seconds.append(time.perf_counter() - start)
    log(f"built {name} ({backend}): {', '.join(f'{s:.2f}' for s in seconds)} s")
    return ix, {"median_s": round(statistics.median(seconds), 3), "runs_s": [round(s, 3) for s in seconds]}


def _latency(search, queries: dict[str, np.ndarray], n: int, seed: int) -> dict:
    def one(row: np.ndarray) -> object:
        i = int(row[0, 0])
        return search({key: q[i : i + 1] for key, q in queries.items()}, i)

    n_queries = next(iter(queries.values())).shape[0]
    lat = measure_latency(one, np.arange(n_queries, dtype=np.float32)[:, None], n=n, warmup=3, seed=seed)
    return {name: (round(value, 1) if isinstance(value, float) else value) for name, value in lat.items()}


def _timed(search, queries) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    rows = search(queries, None)
    return rows, round(time.perf_counter() - start, 3)


def single(config: MilvusStudyConfig, data: Path, workdir: Path) -> dict:
    """The ``single`` part (see the module docstring)."""
    folder = data / "beir" / config.dataset
    dataset = load_beir(folder)
    task = beir_task(dataset, config.split)
    judged = judged_queries(task.qrels)
    seeding = _seeded(config.single, folder, dataset)
    docs = read_documents(folder)
    indexes, builds = {}, {}
    for backend in ("exact", "flat", "milvus"):
        indexes[backend], builds[backend] = _build(workdir, f"single-{backend}", docs, [config.single], backend,
                                                   config.build_repeats)  # fmt: skip
    ref = indexes["exact"]
    queries = ref.encode_queries(task.query_texts)
    rows = {}
    out = []
    for backend, ix in indexes.items():

        def search(q, _i, ix=ix):
            return ix.search_vectors(q, config.k)[1]

        rows[backend], batch_s = _timed(search, queries)
        agreement = compare_topk(rows[backend], rows["exact"], ref.vectors, queries, np.ones(1), tol=config.tol)
        out.append({
            "system": backend,
            "backend": ix.manifest.backend["kind"],
            METRIC: ndcg(ix, rows[backend], task, judged),
            "agreement_with_exact": agreement,
            "build": builds[backend],
            "batch_search_s": batch_s,
            "latency": _latency(search, queries, config.latency_queries, config.seed),
        })  # fmt: skip
        log(f"{backend}: nDCG@10 {out[-1][METRIC]:.4f}, identical top-10 {agreement['identical']}/300")
    milvus_vs_flat = compare_topk(rows["milvus"], rows["flat"], ref.vectors, queries, np.ones(1), tol=config.tol)
    return {
        "dataset": config.dataset,
        "split": config.split,
        "encoder": config.single,
        "n_queries": len(task.query_ids),
        "n_docs": ref.n_docs,
        "k": config.k,
        "rows": out,
        "milvus_vs_flat": milvus_vs_flat,
        "seeding": seeding,
    }


def fused(config: MilvusStudyConfig, data: Path, workdir: Path) -> dict:
    """The ``fused`` part (see the module docstring)."""
    folder = data / "beir" / config.dataset
    dataset = load_beir(folder)
    task, fit_task = beir_task(dataset, config.split), beir_task(dataset, config.fit_split)
    judged = judged_queries(task.qrels)
    seeding = {name: _seeded(name, folder, dataset) for name in config.fused}
    docs = read_documents(folder)
    indexes, builds = {}, {}
    for backend in ("exact", "flat", "milvus"):
        indexes[backend], builds[backend] = _build(workdir, f"fused-{backend}", docs, config.fused, backend, 1)
    ref, mil = indexes["exact"], indexes["milvus"]
    log(f"fitting fusion weights on {fit_task.name} ({len(fit_task.query_ids)} queries)")
    fw = fit_fusion_weights(ref, fit_task)
    queries = ref.encode_queries(task.query_texts)
    n_docs = ref.n_docs
    settings = [("fitted", np.asarray(fw.weights, dtype=np.float32)), ("0.2/0.8", np.array([0.2, 0.8], np.float32))]
    parts = []
    for label, w in settings:
        wq = np.repeat(w[:, None], len(task.query_ids), axis=1)
        systems = _fused_systems(ref, indexes["flat"], mil, w, config.k, config.tol)
        rows, out = {}, []
        for name, search in systems.items():
            rows[name], batch_s = _timed(search, queries)
            agreement = compare_topk(rows[name], next(iter(rows.values())), ref.vectors, queries, wq, tol=config.tol)
            row = {"system": name, METRIC: ndcg(ref, rows[name], task, judged), "agreement_with_exact": agreement,
                   "batch_search_s": batch_s}  # fmt: skip
            if label == "fitted":
                if "oracle" not in name:
                    row["latency"] = _latency(search, queries, config.latency_queries, config.seed)
            out.append(row)
            log(f"[{label}] {name}: nDCG@10 {row[METRIC]:.4f}, identical top-10 {agreement['identical']}/"
                f"{agreement['n_queries']}, beyond ties {agreement['differs_beyond_ties']}")  # fmt: skip
        need = needed_depth(ref, queries, w, config.k, tol=config.tol)
        depth = {"median": float(np.median(need)), "p95": float(np.percentile(need, 95)), "max": int(need.max()),
                 "share_within_default": float(np.mean(need <= max(4 * config.k, 100))),
                 "default": max(4 * config.k, 100)}  # fmt: skip
        part = {"weights_label": label, "weights": dict(zip(config.fused, w.tolist())), "rows": out,
                "needed_depth": depth}  # fmt: skip
        if label == "fitted" and config.full_depth_queries:
            part["full_depth"] = _full_depth(mil, queries, w, config, rows["keff exact (every row)"])
        parts.append(part)
    return {
        "dataset": config.dataset,
        "split": config.split,
        "fit_split": config.fit_split,
        "encoders": list(config.fused),
        "n_queries": len(task.query_ids),
        "n_docs": n_docs,
        "k": config.k,
        "fitted_weights": dict(zip(config.fused, np.asarray(fw.weights).tolist())),
        "builds": builds,
        "settings": parts,
        "seeding": seeding,
    }


def _full_depth(mil: Index, queries: dict[str, np.ndarray], w: np.ndarray, config, exact_rows) -> dict:
    """Every document a candidate of each field, on the first few queries (timed)."""
    n = min(config.full_depth_queries, exact_rows.shape[0])
    sub = {key: q[:n] for key, q in queries.items()}
    keys = list(sub)
    start = time.perf_counter()
    _, rows = mil.milvus.hybrid_search(keys, [sub[key] for key in keys], np.repeat(w[:, None], n, axis=1), config.k,
                                       depth=mil.n_docs)  # fmt: skip
    seconds = time.perf_counter() - start
    log(f"full depth ({mil.n_docs}) on {n} queries: {seconds:.1f} s")
    return {"n_queries": n, "depth": mil.n_docs, "seconds_per_query": round(seconds / n, 2),
            "identical": int(sum((rows[i] == exact_rows[i]).all() for i in range(n)))}  # fmt: skip


def needed_depth(
    index: Index, queries: dict[str, np.ndarray], w: np.ndarray, k: int, *, tol: float = 1e-6
) -> np.ndarray:
    """Per query, the deepest rank (1-based) any encoder alone gives to a document of the exact
    fused top ``k``, counting every document within ``tol`` of its cosine as ahead of it (a tie at
    the boundary may go either way, and float32 sums in another order move cosines by ~1e-8): a
    hybrid search with at least this many candidates per field scores each of those documents in
    full."""
    keys = list(queries)
    per_key = [queries[key] @ index.vectors[key].T for key in keys]
    fused = sum(float(wj) * s for wj, s in zip(w, per_key))
    top = np.argsort(-fused, axis=1, kind="stable")[:, :k]
    need = np.zeros(fused.shape[0], dtype=np.int64)
    for s in per_key:
        at = np.take_along_axis(s, top, axis=1)  # cosines of the top documents in this encoder
        ranks = (s[:, None, :] >= at[:, :, None] - tol).sum(axis=2)  # itself and every tie included
        need = np.maximum(need, ranks.max(axis=1))
    return need


def _fused_systems(ref: Index, flat: Index, mil: Index, w: np.ndarray, k: int, tol: float) -> dict[str, Any]:
    """The fused searches compared, each ``search(queries, i) -> rows`` with the weights ``w``."""
    keys, depth = ref.encoder_keys, max(4 * k, 100)

    def wq(q: dict[str, np.ndarray]) -> np.ndarray:
        return np.repeat(w[:, None], next(iter(q.values())).shape[0], axis=1)

    def hybrid(q, **kw):
        return mil.milvus.hybrid_search(keys, [q[key] for key in keys], wq(q), k, **kw)[1]

    def flat_fused(q, _i):
        return flat.search_vectors(q, k, weights=w)[1]

    def oracle(q, _i):
        need = needed_depth(ref, q, w, k, tol=tol)
        return np.concatenate([hybrid({key: v[i : i + 1] for key, v in q.items()}, depth=int(d))
                               for i, d in enumerate(need)])  # fmt: skip

    return {
        "keff exact (every row)": lambda q, _i: ref.search_vectors(q, k, weights=w)[1],
        f"keff flat (union of top {depth} per encoder, rescored)": flat_fused,
        f"milvus hybrid, depth {depth}, norm_score=False": lambda q, _i: mil.search_vectors(q, k, weights=w)[1],
        "milvus hybrid, oracle depth per query, norm_score=False": oracle,
        f"milvus hybrid, depth {depth}, norm_score=True (pymilvus default)": lambda q, _i: hybrid(q, norm_score=True),
    }


def run(config: MilvusStudyConfig, *, data: Path) -> dict:
    """Both parts of the study on the shared data folder ``data``."""
    import milvus_lite
    import pymilvus

    with tempfile.TemporaryDirectory(prefix="keff-milvus-study-") as tmp:
        workdir = Path(config.workdir) if config.workdir is not None else Path(tmp)
        start = time.perf_counter()
        one = single(config, data, workdir)
        one["seconds"] = round(time.perf_counter() - start, 1)
        start = time.perf_counter()
        two = fused(config, data, workdir)
        two["seconds"] = round(time.perf_counter() - start, 1)
    dataset = load_beir(data / "beir" / config.dataset)
    names = sorted({config.single, *config.fused})
    return {
        "benchmark": "index_milvus",
        "meta": run_metadata(
            seed=config.seed,
            encoders={name: get_encoder(name).fingerprint for name in names},
            data_hashes={config.dataset: dict(dataset.file_hashes)},
            pymilvus=pymilvus.__version__,
            milvus_lite=getattr(milvus_lite, "__version__", "?"),
        ),
        "single": one,
        "fused": two,
    }

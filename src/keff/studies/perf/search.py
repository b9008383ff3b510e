"""Search timings against their floors: batch top-k, single-query search, thread settings.

Every figure is a median of interleaved repeats within one run, reported with its reference's
median and the ratio keff / reference (the machines are shared: absolute times drift, ratios
measured side by side hold better).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import numpy as np

from keff.index import ExactIndex
from keff.index.exact import exact_batch_size
from keff.index.numpy_backend import topk_rows


def unit_rows(n: int, d: int, seed: int) -> np.ndarray:
    """``n`` seeded random unit rows of width ``d`` (float32)."""
    x = np.random.default_rng(seed).standard_normal((n, d), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def interleaved(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Median seconds of each function, the functions called in turn ``repeats`` times."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: float(np.median(ts)) for name, ts in times.items()}


def peak_bytes(fn: Callable[[], Any]) -> int:
    """Peak bytes numpy allocated while ``fn`` ran (numpy reports to tracemalloc)."""
    tracemalloc.start()
    try:
        fn()
        return int(tracemalloc.get_traced_memory()[1])
    finally:
        tracemalloc.stop()


def faiss_flat(vectors: np.ndarray):
    """A FAISS ``IndexFlatIP`` over ``vectors``, or None when FAISS is not installed."""
    try:
        import faiss
    except ImportError:
        return None
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    return index


def batch_topk(n: int = 200_000, d: int = 384, n_queries: int = 1000, k: int = 100, repeats: int = 3,
               seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """Batch search of ``n_queries`` over ``n`` random unit rows: keff's exact search against
    FAISS ``IndexFlatIP``, and keff's top-k selection against the argpartition floor on the same
    score blocks (the blocks keff's search uses); keff's peak memory of the whole search."""
    vectors, queries = unit_rows(n, d, seed), unit_rows(n_queries, d, seed + 1)
    index = ExactIndex(vectors)
    block = exact_batch_size(n)
    scores = queries[:block] @ vectors.T  # one block of scores, shared by both selections
    fns: dict[str, Callable[[], Any]] = {
        "keff_search": lambda: index.search(queries, k),
        "keff_topk_block": lambda: topk_rows(scores, k),
        "argpartition_block": lambda: np.argpartition(scores, n - k, axis=1)[:, n - k :],
    }
    flat = faiss_flat(vectors)
    if flat is not None:
        fns["faiss_search"] = lambda: flat.search(queries, k)
    med = interleaved(fns, repeats)
    out: dict[str, Any] = {
        "n": n, "d": d, "n_queries": n_queries, "k": k, "block_queries": block, "repeats": repeats,
        "seconds": med, "topk_vs_argpartition": med["keff_topk_block"] / med["argpartition_block"],
        "keff_peak_bytes": peak_bytes(lambda: index.search(queries, k)),
        "keff_vs_faiss": None,
    }  # fmt: skip
    if flat is not None:
        out["keff_vs_faiss"] = med["keff_search"] / med["faiss_search"]
        same = np.mean(index.search(queries[:50], 10)[1] == flat.search(queries[:50], 10)[1])
        out["agreement_top10_with_faiss"] = float(same)
    return out


@contextmanager
def background_load(processes: int = 1):
    """``processes`` busy Python processes for the duration of the block (a shared machine's
    neighbours), killed after it."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        time.sleep(0.2)
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def single_query(n: int = 200_000, d: int = 384, n_queries: int = 200, k: int = 10, load: int = 1,
                 seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """Median per-query latency of one-query searches over ``n`` rows under ``load`` busy
    neighbour processes: keff's exact search (one BLAS thread for a single query,
    :mod:`keff.threads`) against FAISS ``IndexFlatIP`` (its own thread settings), and the bare
    product with the BLAS pool at its default size and at one thread."""
    from threadpoolctl import threadpool_limits

    vectors, queries = unit_rows(n, d, seed), unit_rows(n_queries, d, seed + 1)
    index, flat = ExactIndex(vectors), faiss_flat(vectors)
    default_threads = max((p["num_threads"] for p in _blas_info()), default=1)

    def each(fn: Callable[[np.ndarray], Any]) -> Callable[[], None]:
        def run() -> None:
            for q in queries[:20]:
                fn(q[None, :])

        return run

    fns = {
        "keff_search": each(lambda q: index.search(q, k)),
        "gemm_default_threads": each(lambda q: q @ vectors.T),
    }
    if flat is not None:
        fns["faiss_search"] = each(lambda q: flat.search(q, k))

    def one_thread_gemm() -> None:
        with threadpool_limits(1, user_api="blas"):
            for q in queries[:20]:
                q[None, :] @ vectors.T

    fns["gemm_one_thread"] = one_thread_gemm
    with background_load(load):
        med = interleaved(fns, max(1, n_queries // 20))
    per_query = {name: s / 20 for name, s in med.items()}
    return {
        "n": n, "d": d, "k": k, "queries": n_queries, "background_processes": load,
        "blas_threads_default": default_threads, "seconds_per_query": per_query,
        "keff_vs_faiss": per_query["keff_search"] / per_query["faiss_search"] if flat is not None else None,
        "gemm_default_vs_one_thread": per_query["gemm_default_threads"] / per_query["gemm_one_thread"],
    }  # fmt: skip


def _blas_info() -> list[dict]:
    from threadpoolctl import threadpool_info

    return [p for p in threadpool_info() if p["user_api"] == "blas"]


def cluster_fit_threads(n: int = 10_000, d: int = 384, n_clusters: int = 64, repeats: int = 3,
                        seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """Fit seconds of a :class:`keff.maps.ClusterRouted` map (``n_clusters`` small SVDs) with its
    one-thread loop against the BLAS pool's default size (``KEFF_THREADS=default``)."""
    from keff.maps import make_map

    X, Y = unit_rows(n, d, seed), unit_rows(n, d, seed + 1)

    def fit(limit: bool) -> Callable[[], Any]:
        def run() -> None:
            old = os.environ.get("KEFF_THREADS")
            os.environ["KEFF_THREADS"] = "keff" if limit else "default"
            try:
                make_map("cluster-routed", n_clusters=n_clusters, rank=32, seed=seed).fit(X, Y)
            finally:
                if old is None:
                    os.environ.pop("KEFF_THREADS", None)
                else:
                    os.environ["KEFF_THREADS"] = old

        return run

    med = interleaved({"one_thread": fit(True), "default_threads": fit(False)}, repeats)
    return {"n": n, "d": d, "n_clusters": n_clusters, "seconds": med,
            "one_thread_vs_default": med["one_thread"] / med["default_threads"]}  # fmt: skip

"""Throughput of an index build's embedding stage: in-process against Ray Data, same machine.

Each repeat builds an index of the first ``n_docs`` SciFact abstracts twice with the same encoder,
once with the in-process engine and once with ``engine="ray"`` (:mod:`keff.docindex.engines`;
a local Ray instance of :data:`~keff.docindex.engines.LOCAL_RAY_CPUS` CPUs that the engine starts
and stops itself, as ``keff index build --engine ray`` does), each with a fresh, empty embedding
cache so that both really encode every text. The order of the two builds alternates between
repeats. A build's time is the wall time of :meth:`keff.docindex.Index.build` (documents given,
model loading, encoding, writing the index; for Ray also starting the local instance and its
actors), and docs/s is ``n_docs`` over it; the report gives medians over the repeats. The time
to start and stop an empty local Ray instance is measured once on its own. Every repeat checks
that the two indexes hold byte-identical vectors (same dtype, same bytes). The machine is shared,
so the load average before and after is recorded too.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from keff.docindex import Index, read_documents
from keff.docindex.engines import LOCAL_RAY_CPUS, ray_session
from keff.encoders import get_encoder
from keff.eval import run_metadata
from keff.studies.common import log


@dataclass
class IndexRayConfig:
    """What the study runs.

    Attributes
    ----------
    n_docs : int
        SciFact abstracts indexed (the first ``n_docs`` of the corpus).
    encoder : str
        Encoder name.
    repeats : int
        Builds per engine.
    actors : int
        Ray encoder actors.
    batches_per_call : int
        Model batches per Ray actor call.
    """

    n_docs: int = 1000
    encoder: str = "minilm"
    repeats: int = 3
    actors: int = 2
    batches_per_call: int = 1


def _timed_build(folder: Path, docs: list, config: IndexRayConfig, engine: str) -> tuple[float, np.ndarray]:
    """Build with a fresh, empty embedding cache; returns (seconds, the vectors)."""
    cache = Path(tempfile.mkdtemp(prefix="keff-ray-bench-cache-"))
    saved = os.environ.get("KEFF_CACHE_DIR")
    os.environ["KEFF_CACHE_DIR"] = str(cache)
    try:
        options = {"actors": config.actors, "batches_per_call": config.batches_per_call} if engine == "ray" else None
        start = time.perf_counter()
        ix = Index.build(folder, docs, [config.encoder], overwrite=True, engine=engine, engine_options=options)
        seconds = time.perf_counter() - start
        (vectors,) = ix.vectors.values()
        vectors = np.array(vectors)
        ix.close()
    finally:
        if saved is None:
            os.environ.pop("KEFF_CACHE_DIR", None)
        else:
            os.environ["KEFF_CACHE_DIR"] = saved
        shutil.rmtree(cache, ignore_errors=True)
    return seconds, vectors


def _ray_overhead() -> float:
    start = time.perf_counter()
    with ray_session():
        pass
    return time.perf_counter() - start


def run(config: IndexRayConfig, *, data: Path) -> dict[str, Any]:
    """Run the study (see the module docstring); returns the results as a JSON-able dict."""
    import ray

    folder = data / "beir" / "scifact"
    docs = read_documents(folder)[: config.n_docs]
    enc = get_encoder(config.encoder, cache=False)
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="keff-ray-bench-"))
    runs: list[dict[str, Any]] = []
    try:
        overhead = _ray_overhead()
        log(f"empty local Ray instance: start + stop {overhead:.1f} s")
        for rep in range(config.repeats):
            order = ("inprocess", "ray") if rep % 2 == 0 else ("ray", "inprocess")
            got: dict[str, tuple[float, np.ndarray]] = {}
            for engine in order:
                log(f"repeat {rep + 1}/{config.repeats}: {engine} build of {len(docs)} documents")
                got[engine] = _timed_build(work / engine, docs, config, engine)
                log(f"  {engine}: {got[engine][0]:.1f} s, {len(docs) / got[engine][0]:.2f} docs/s")
            a, b = got["inprocess"][1], got["ray"][1]
            identical = a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
            runs.append({
                "repeat": rep, "order": list(order), "inprocess_s": got["inprocess"][0], "ray_s": got["ray"][0],
                "byte_identical": bool(identical), "max_abs_diff": float(np.abs(a - b).max()),
            })  # fmt: skip
            log(f"  byte-identical: {identical}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    inproc = float(np.median([r["inprocess_s"] for r in runs]))
    ray_s = float(np.median([r["ray_s"] for r in runs]))
    return {
        "benchmark": "index_ray",
        "config": asdict(config),
        "dataset": "scifact",
        "n_docs": len(docs),
        "runs": runs,
        "median": {
            "inprocess_s": inproc,
            "ray_s": ray_s,
            "inprocess_docs_per_s": len(docs) / inproc,
            "ray_docs_per_s": len(docs) / ray_s,
            "ray_over_inprocess_throughput": inproc / ray_s,
        },  # fmt: skip
        "ray_start_stop_s": overhead,
        "all_byte_identical": all(r["byte_identical"] for r in runs),
        "meta": run_metadata(
            seed=None,
            encoders={config.encoder: enc.fingerprint},
            ray=ray.__version__,
            cpus=os.cpu_count(),
            local_ray_cpus=LOCAL_RAY_CPUS,
            load_average_before=list(load_before),
            load_average_after=list(os.getloadavg()),
        ),  # fmt: skip
    }

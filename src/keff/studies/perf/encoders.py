"""Is ``minilm-int8-onnx`` a real int8 encoder, faster than fp32 MiniLM and as good on SciFact?

:func:`int8_check` answers with three measurements:

- the int8 graph's operators (:func:`keff.encoders.int8.op_counts`): the integer ones must be
  there (``MatMulInteger`` and onnxruntime's fused forms);
- speed: the same SciFact abstracts (``(title + " " + text).strip()``, corpus order) encoded by
  torch MiniLM (``minilm``) and by the int8 graph, both on one thread (``torch.set_num_threads(1)``,
  an onnxruntime session with ``intra_op_num_threads=1``), same batch size, alternating which goes
  first; the median of the repeats, in wall and in process CPU seconds (the fairer figure on a
  busy machine: both encoders use one thread);
- quality: SciFact nDCG@10 of both through :func:`keff.tasks.evaluate_encoder` (exact search,
  keff's metrics), on one thread too. The fp32 vectors come from the shared precomputed ones when keff's seeding
  check proves them (:func:`keff.precomputed.seed_beir_vectors`); the int8 vectors are encoded
  (minutes for the 5,183 documents) and kept in keff's embedding cache, so a rerun is quick.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from keff.data import load_beir
from keff.encoders import CachedEncoder, EmbeddingCache, OnnxEncoder, get_encoder
from keff.encoders.int8 import integer_ops, op_counts
from keff.errors import KeffError
from keff.eval import run_metadata
from keff.paths import cache_dir
from keff.precomputed import seed_beir_vectors
from keff.studies.common import log
from keff.tasks import beir_task, evaluate_encoder


def _seconds(fn: Callable[[], Any]) -> tuple[float, float]:
    """Wall and process CPU seconds of one call of ``fn`` (after a garbage collection)."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def one_thread_session(encoder: OnnxEncoder) -> None:
    """Give ``encoder`` an onnxruntime session of the same graph that runs on one thread.

    :class:`keff.encoders.OnnxEncoder` sizes its session to every core; a speed comparison with
    one torch thread needs one onnxruntime thread too.
    """
    import onnxruntime as ort

    encoder._ensure_loaded()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(encoder.model_path), sess_options=opts, providers=["CPUExecutionProvider"])
    encoder._session = session  # same graph and inputs; only the thread pool differs


def _ndcg(task, encoder: CachedEncoder, data: Path, vectors: str | None) -> tuple[float, list[dict]]:
    """nDCG@10 of ``encoder`` on ``task``, its cache first seeded from the shared precomputed
    vectors ``data/embeddings/scifact/<vectors>`` when they exist and keff's check proves them."""
    reports = []
    folder = None if vectors is None else data / "embeddings" / "scifact" / vectors
    if folder is not None and folder.is_dir():
        reports = [r.__dict__ for r in seed_beir_vectors(encoder, load_beir(data / "beir" / "scifact"), folder)]
    log(f"{encoder.name}: SciFact {task.name}, {len(task.doc_ids)} documents, {len(task.query_ids)} queries")
    result = evaluate_encoder(task, encoder)
    return float(result.metrics["ndcg@10"]), reports


def _cosines(task, a: CachedEncoder, b: CachedEncoder) -> dict[str, float]:
    """Mean and least cosine between the two encoders' vectors of the task's texts (from their caches)."""
    out = {}
    for key, kind, texts in (("docs", "doc", task.doc_texts), ("queries", "query", task.query_texts)):
        va, vb = (e.encode(texts, kind=kind, show_progress=False) for e in (a, b))
        cos = np.sum(va * vb, axis=1)
        out[f"{key}_mean"], out[f"{key}_min"] = float(cos.mean()), float(cos.min())
    return out


def int8_check(
    data: str | Path,
    *,
    n_docs: int = 512,
    repeats: int = 3,
    batch_size: int = 32,
    quality: bool = True,
    fp32: str = "minilm",
    int8: str = "minilm-int8-onnx",
    split: str = "test",
    cache: str | Path | None = None,
) -> dict[str, Any]:
    """Operators, one-thread speed and SciFact nDCG@10 of ``int8`` against ``fp32``.

    Parameters
    ----------
    data : path
        The shared data folder (holding ``beir/scifact`` and, optionally,
        ``embeddings/scifact/<fp32>``).
    n_docs : int
        Timed documents: the first ``n_docs`` of the SciFact corpus.
    repeats : int
        Timed encodings of each encoder (after an untimed batch each); medians are reported.
    batch_size : int
        Texts per model call, the same for both.
    quality : bool
        Also evaluate both on SciFact ``split`` (False: speed and operators only; the nDCG fields
        are None).
    fp32, int8 : str
        Registry names of the reference (a sentence-transformers model) and the ONNX encoder.
    split : str
        SciFact qrels split of the quality check.
    cache : path, optional
        Embedding cache of the quality check (default ``cache_dir()/embeddings``, as
        :func:`keff.encoders.get_encoder` uses).

    Everything, the quality check included, runs on one thread (torch's and onnxruntime's).

    Returns
    -------
    dict
        JSON-ready: ``fp32_docs_per_s``, ``int8_docs_per_s`` and ``speedup`` (their quotient), from
        median wall seconds; the same from median process CPU seconds (``*_cpu``); ``ndcg_fp32``,
        ``ndcg_int8``, ``ndcg_diff`` (int8 minus fp32); ``cosine_to_fp32`` (mean and least cosine
        between the two encoders' vectors of the task's documents and queries); ``n_docs_timed``; ``int8_ops`` (integer
        operator counts) and ``ops`` (every operator of the int8 graph); the encoders'
        fingerprints, the int8 graph's path, the settings and :func:`keff.eval.run_metadata`.
    """
    import torch

    data = Path(data)
    if repeats < 1 or n_docs < 1:
        raise KeffError(f"repeats and n_docs must be >= 1; got {repeats} and {n_docs}")
    dataset = load_beir(data / "beir" / "scifact")
    texts = list(dataset.doc_texts[:n_docs])
    ref = get_encoder(fp32, cache=False)
    fast = get_encoder(int8, cache=False)
    if not isinstance(fast, OnnxEncoder):
        raise KeffError(f"{int8!r} is not an ONNX encoder ({type(fast).__name__})")
    counts = op_counts(fast.model_path)

    threads = torch.get_num_threads()
    try:
        ref.encode(texts[:batch_size], show_progress=False)  # loads the model (which sets its threads)
        torch.set_num_threads(1)
        one_thread_session(fast)
        calls = {
            "fp32": lambda: ref.encode(texts, batch_size=batch_size, show_progress=False),
            "int8": lambda: fast.encode(texts, batch_size=batch_size, show_progress=False),
        }
        fast.encode(texts[:batch_size], show_progress=False)  # warm-up: first-call allocations
        wall: dict[str, list[float]] = {k: [] for k in calls}
        cpu: dict[str, list[float]] = {k: [] for k in calls}
        for i in range(repeats):
            for key in list(calls)[:: 1 if i % 2 == 0 else -1]:  # in turn first
                w, c = _seconds(calls[key])
                wall[key].append(w)
                cpu[key].append(c)
                log(f"{key}: {len(texts)} documents in {w:.2f} s wall, {c:.2f} s CPU")
        ndcg_fp32 = ndcg_int8 = None
        seeded: list[dict] = []
        cosine: dict[str, float] = {}
        if quality:
            task = beir_task(dataset, split)
            root = Path(cache) if cache is not None else cache_dir() / "embeddings"
            ref_cached = CachedEncoder(ref, EmbeddingCache(root))
            fast_cached = CachedEncoder(fast, EmbeddingCache(root))
            ndcg_fp32, seeded = _ndcg(task, ref_cached, data, vectors=fp32)
            ndcg_int8, _ = _ndcg(task, fast_cached, data, vectors=None)
            cosine = _cosines(task, ref_cached, fast_cached)
    finally:
        torch.set_num_threads(threads)
    med = {k: statistics.median(v) for k, v in wall.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    fingerprints = {fp32: ref.fingerprint, int8: fast.fingerprint}
    return {
        "fp32": fp32,
        "int8": int8,
        "fp32_docs_per_s": len(texts) / med["fp32"],
        "int8_docs_per_s": len(texts) / med["int8"],
        "speedup": med["fp32"] / med["int8"],
        "fp32_docs_per_cpu_s": len(texts) / med_cpu["fp32"],
        "int8_docs_per_cpu_s": len(texts) / med_cpu["int8"],
        "speedup_cpu": med_cpu["fp32"] / med_cpu["int8"],
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "ndcg_fp32": ndcg_fp32,
        "ndcg_int8": ndcg_int8,
        "ndcg_diff": None if ndcg_int8 is None or ndcg_fp32 is None else ndcg_int8 - ndcg_fp32,
        "cosine_to_fp32": cosine,
        "split": split if quality else None,
        "n_docs_timed": len(texts),
        "batch_size": batch_size,
        "repeats": repeats,
        "threads": 1,
        "int8_ops": integer_ops(counts),
        "ops": counts,
        "int8_model": str(fast.model_path),
        "fp32_seeded_from_precomputed": seeded,
        "meta": run_metadata(seed=None, encoders=fingerprints, data_hashes=dict(dataset.file_hashes)),
    }

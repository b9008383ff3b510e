"""How much :func:`keff.eval.evaluate_run` costs over a bare pytrec_eval call on the same input.

``evaluate_run`` validates the run and qrels, computes every metric in one pytrec_eval
``RelevanceEvaluator`` call and turns the per-query values into keff's layout (mrr@k's cutoff,
0 for a judged query without results, the means). :func:`metrics_vs_pytrec_eval` times it
against ``pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)`` for the same
measures, alternating the two (and which goes first) so that a change of machine load hits
both alike; :func:`scifact_input` builds the SciFact-sized input (300 test queries x top 100
documents, MiniLM vectors).
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from keff.eval.metric_names import DEFAULT_METRICS


def _seconds(fn: Callable[[], Any]) -> tuple[float, float]:
    """Wall and CPU seconds of one call of ``fn`` (after a garbage collection)."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def metrics_vs_pytrec_eval(
    run: Mapping[str, Mapping[str, float]],
    qrels: Mapping[str, Mapping[str, int]],
    metrics: Sequence[str] = DEFAULT_METRICS,
    repeats: int = 21,
) -> dict[str, Any]:
    """Median seconds of ``evaluate_run(run, qrels, metrics)`` and of a bare pytrec_eval
    evaluation of the same measures (evaluator built and run each time, as evaluate_run does).

    Parameters
    ----------
    run, qrels : mappings
        As :func:`keff.eval.evaluate_run` takes them.
    metrics : sequence of str
        keff metric names.
    repeats : int
        Timed calls of each (after one untimed call of each), alternating the two.

    Returns
    -------
    dict
        JSON-ready: ``evaluate_run_s`` and ``pytrec_eval_s`` (median wall seconds), ``ratio``
        (their quotient), ``paired_ratio`` (median of the per-repeat quotients, steadier under a
        changing load); the same of process CPU time (``evaluate_run_cpu_s``,
        ``pytrec_eval_cpu_s``, ``cpu_ratio``, ``cpu_paired_ratio``: both calls are
        single-threaded, so on a busy machine these are the fairer figures); the measures, the
        input's size and the repeats.
    """
    import pytrec_eval

    from keff.eval.metrics import evaluate_run, trec_measures

    if repeats < 1:
        raise ValueError(f"repeats must be >= 1; got {repeats}")
    measures = trec_measures(metrics)

    def keff_call() -> None:
        evaluate_run(run, qrels, metrics)

    def bare_call() -> None:
        pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)

    keff_call(), bare_call()  # imports, first-call costs
    keff_t, bare_t = [], []
    for i in range(repeats):  # in turn first: neither always meets the caches the other warmed
        if i % 2:
            bare_t.append(_seconds(bare_call))
            keff_t.append(_seconds(keff_call))
        else:
            keff_t.append(_seconds(keff_call))
            bare_t.append(_seconds(bare_call))
    out: dict[str, Any] = {}
    for prefix, col in (("", 0), ("cpu_", 1)):
        keff_s, bare_s = [t[col] for t in keff_t], [t[col] for t in bare_t]
        keff_med, bare_med = statistics.median(keff_s), statistics.median(bare_s)
        seconds = "s" if col == 0 else "cpu_s"
        out[f"evaluate_run_{seconds}"], out[f"pytrec_eval_{seconds}"] = keff_med, bare_med
        out[f"{prefix}ratio"] = keff_med / bare_med
        out[f"{prefix}paired_ratio"] = statistics.median(k / b for k, b in zip(keff_s, bare_s))
    return {
        **out,
        "metrics": list(metrics),
        "pytrec_eval_measures": measures,
        "n_queries": len(run),
        "n_scored": sum(len(docs) for docs in run.values()),
        "n_judged_queries": len(qrels),
        "repeats": repeats,
    }


def scifact_input(
    data: str | Path, *, encoder: str = "minilm", k: int = 100, split: str = "test"
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, int]]]:
    """(run, qrels) of SciFact's ``split``: each judged query's top ``k`` documents by cosine of
    the precomputed ``encoder`` vectors (``data``/embeddings/scifact/ENCODER/{corpus,queries}.npy,
    rows in corpus.jsonl / queries.jsonl order), and the split's qrels.

    ``data`` is the shared data folder (holding ``beir/scifact`` and ``embeddings/``).
    """
    import numpy as np

    from keff.data import load_beir
    from keff.errors import DataError
    from keff.eval.metrics import run_from_topk

    data = Path(data)
    ds = load_beir(data / "beir" / "scifact", splits=[split])
    folder = data / "embeddings" / "scifact" / encoder
    doc_vecs = np.load(folder / "corpus.npy")
    all_queries = np.load(folder / "queries.npy", mmap_mode="r")
    if len(doc_vecs) != len(ds.doc_ids) or len(all_queries) != len(ds.query_ids):
        raise DataError(
            f"{len(doc_vecs)} corpus and {len(all_queries)} query vectors for {len(ds.doc_ids)} documents and "
            f"{len(ds.query_ids)} queries",
            path=folder,
        )
    qids, _ = ds.split_queries(split)
    row = {q: i for i, q in enumerate(ds.query_ids)}
    query_vecs = np.asarray(all_queries[[row[q] for q in qids]], dtype=np.float32)
    scores = query_vecs @ doc_vecs.astype(np.float32).T
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    top_scores = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-top_scores, axis=1, kind="stable")
    indices = np.take_along_axis(top, order, axis=1)
    run = run_from_topk(qids, ds.doc_ids, np.take_along_axis(top_scores, order, axis=1), indices)
    return run, {q: dict(ds.qrels[split][q]) for q in qids}

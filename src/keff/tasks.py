"""Retrieval tasks: what an evaluation needs, whatever the data set it came from.

A :class:`RetrievalTask` is queries, documents and judgements as plain lists, plus the hashes of
the files they came from. BEIR splits and Q/A pair sets both become one, so every encoder is
scored by the same code on both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from keff.data import BeirDataset, QAPairs, qa_retrieval_task, sample_groups
from keff.encoders.base import Encoder
from keff.eval import DEFAULT_METRICS, QA_METRICS, Result, evaluate_retrieval, run_metadata


@dataclass(frozen=True)
class RetrievalTask:
    """Queries, documents and relevance judgements of one evaluation.

    Attributes
    ----------
    name : str
        Data set and split, e.g. ``"scifact/test"``.
    query_ids, query_texts : list of str
        The evaluated queries.
    doc_ids, doc_texts : list of str
        The whole retrieval pool.
    qrels : dict
        ``qid -> docid -> relevance``.
    metrics : tuple of str
        The metrics this kind of task is reported with.
    data_hashes : dict
        SHA-256 of every source file.
    note : str, optional
        How the task was drawn, when it is a sample (size and seed).
    """

    name: str
    query_ids: list[str]
    query_texts: list[str]
    doc_ids: list[str]
    doc_texts: list[str]
    qrels: dict[str, dict[str, int]]
    metrics: tuple[str, ...] = DEFAULT_METRICS
    data_hashes: dict[str, str] = field(default_factory=dict)
    note: str | None = None


def beir_task(dataset: BeirDataset, split: str = "test") -> RetrievalTask:
    """The judged queries of one split of a BEIR data set, against its full corpus."""
    qids, qtexts = dataset.split_queries(split)
    return RetrievalTask(
        name=f"{dataset.name}/{split}",
        query_ids=qids,
        query_texts=qtexts,
        doc_ids=list(dataset.doc_ids),
        doc_texts=list(dataset.doc_texts),
        qrels=dataset.qrels[split],
        data_hashes=dict(dataset.file_hashes),
    )


def qa_task(
    pairs: QAPairs,
    name: str,
    *,
    sample_n_groups: int | None = None,
    seed: int = 0,
) -> RetrievalTask:
    """Every question against the pool of distinct answers, relevance at group level.

    With ``sample_n_groups``, only the questions and answers of that many seeded groups are
    used (for encoders too slow for the full set); the task's ``note`` says so.
    """
    rows = None
    note = None
    if sample_n_groups is not None:
        rows = sample_groups(pairs.groups, sample_n_groups, seed=seed)
        n_all = int(np.unique(pairs.groups).size)
        note = (
            f"seeded sample: {sample_n_groups} of {n_all} groups, {rows.size} of {len(pairs.ids)} pairs (seed {seed})"
        )
    qa = qa_retrieval_task(pairs, query_rows=rows, pool_rows=rows)
    return RetrievalTask(
        name=name,
        query_ids=list(qa.query_ids),
        query_texts=list(qa.query_texts),
        doc_ids=list(qa.pool_ids),
        doc_texts=list(qa.pool_texts),
        qrels=qa.qrels,
        metrics=QA_METRICS,
        data_hashes={pairs.path.name: pairs.sha256},
        note=note,
    )


def evaluate_encoder(
    task: RetrievalTask,
    encoder: Encoder,
    *,
    system: str | None = None,
    k: int = 100,
    metrics: Sequence[str] | None = None,
    seed: int = 0,
    backend: str = "numpy",
) -> Result:
    """Encode a task's queries and documents with ``encoder`` and score the exact top-k search.

    The result's ``meta`` records the encoder fingerprint, the data hashes, the seed, the
    command line, encode times and search latency.
    """
    import time

    t0 = time.perf_counter()
    doc_vecs = encoder.encode(task.doc_texts, kind="doc")
    t1 = time.perf_counter()
    query_vecs = encoder.encode(task.query_texts, kind="query")
    t2 = time.perf_counter()
    meta = run_metadata(
        seed=seed,
        encoders={encoder.name: encoder.fingerprint},
        data_hashes=task.data_hashes,
        n_queries=len(task.query_ids),
        n_docs=len(task.doc_ids),
        encode_seconds={"docs": round(t1 - t0, 3), "queries": round(t2 - t1, 3)},
    )
    if task.note:
        meta["sample"] = task.note
    return evaluate_retrieval(
        query_vecs,
        doc_vecs,
        task.query_ids,
        task.doc_ids,
        task.qrels,
        system=system or encoder.name,
        dataset=task.name,
        k=k,
        metrics=tuple(metrics or task.metrics),
        backend=backend,
        meta=meta,
        seed=seed,
    )

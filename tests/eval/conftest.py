"""Fixtures for the eval tests: the shared SciFact test split with precomputed vectors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from keff.data import load_beir


@dataclass
class SciFactSlice:
    """SciFact test queries (rows aligned with ``query_ids``), full corpus and test qrels."""

    query_vecs: np.ndarray
    doc_vecs: np.ndarray
    query_ids: list[str]
    doc_ids: list[str]
    qrels: dict[str, dict[str, int]]


@pytest.fixture(scope="session")
def scifact_minilm(shared_data: Path) -> SciFactSlice:
    ds = load_beir(shared_data / "beir" / "scifact", splits=["test"])
    emb = shared_data / "embeddings" / "scifact" / "minilm"
    qids, _ = ds.split_queries("test")
    row = {q: i for i, q in enumerate(ds.query_ids)}
    queries = np.load(emb / "queries.npy", mmap_mode="r")
    return SciFactSlice(
        query_vecs=np.ascontiguousarray(queries[[row[q] for q in qids]]),
        doc_vecs=np.load(emb / "corpus.npy"),
        query_ids=qids,
        doc_ids=list(ds.doc_ids),
        qrels=ds.qrels["test"],
    )

"""Fixtures for the eval tests: the shared SciFact test split with precomputed vectors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from keff.paths import find_shared_data


@dataclass
class SciFactSlice:
    """SciFact test queries (rows aligned with ``query_ids``), full corpus and test qrels."""

    query_vecs: np.ndarray
    doc_vecs: np.ndarray
    query_ids: list[str]
    doc_ids: list[str]
    qrels: dict[str, dict[str, int]]


def _ids(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line)["_id"] for line in fh if line.strip()]


def _qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8") as fh:
        next(fh)  # header
        for line in fh:
            qid, did, rel = line.rstrip("\n").split("\t")
            qrels.setdefault(qid, {})[did] = int(rel)
    return qrels


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = find_shared_data()
    if root is None:
        pytest.skip("shared real data not found: set KEFF_DATA_DIR or place it at ../shared/data")
    return root


@pytest.fixture(scope="session")
def scifact_minilm(shared_data: Path) -> SciFactSlice:
    beir = shared_data / "beir" / "scifact"
    emb = shared_data / "embeddings" / "scifact" / "minilm"
    qrels = _qrels(beir / "qrels" / "test.tsv")
    all_qids = _ids(beir / "queries.jsonl")
    rows = [i for i, q in enumerate(all_qids) if q in qrels]
    queries = np.load(emb / "queries.npy", mmap_mode="r")
    return SciFactSlice(
        query_vecs=np.ascontiguousarray(queries[rows]),
        doc_vecs=np.load(emb / "corpus.npy"),
        query_ids=[all_qids[i] for i in rows],
        doc_ids=_ids(beir / "corpus.jsonl"),
        qrels=qrels,
    )

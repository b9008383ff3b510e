"""Fixtures for keff.data tests: tiny BEIR folders written on the fly, and the real shared data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

DOCS = [
    {"_id": "d1", "title": "Cats", "text": "Cats purr."},
    {"_id": "d2", "title": "", "text": "Dogs bark."},
    {"_id": "d3", "text": "Fish swim."},
]
QUERIES = [
    {"_id": "q1", "text": "what purrs"},
    {"_id": "q2", "text": "what barks"},
    {"_id": "q3", "text": "what swims"},
]
QRELS = {
    "test": "query-id\tcorpus-id\tscore\nq1\td1\t1\nq3\td3\t2\n",
    "train": "q2\td2\t1\n",
}


def jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def write_beir(
    root: Path,
    *,
    corpus: str | None = None,
    queries: str | None = None,
    qrels: dict[str, str] | None = None,
) -> Path:
    """Write a small valid BEIR folder at ``root``; any file can be replaced by raw text."""
    (root / "qrels").mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text(jsonl(DOCS) if corpus is None else corpus, encoding="utf-8")
    (root / "queries.jsonl").write_text(jsonl(QUERIES) if queries is None else queries, encoding="utf-8")
    for split, text in (QRELS if qrels is None else qrels).items():
        (root / "qrels" / f"{split}.tsv").write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def make_beir():
    """The :func:`write_beir` factory (fixtures are importable where a helper module may not be)."""
    return write_beir


@pytest.fixture
def make_jsonl():
    """The :func:`jsonl` formatter: list of dicts -> JSONL text."""
    return jsonl


@pytest.fixture
def tiny_beir(tmp_path: Path) -> Path:
    """A valid three-document BEIR folder named ``tiny``."""
    return write_beir(tmp_path / "tiny")

"""Tests for keff.data.qa_task: pools of distinct answers and key-based relevance."""

from __future__ import annotations

import json

import numpy as np
import pytest

from keff.data.qa import load_qa
from keff.data.qa_task import answer_id, qa_retrieval_task
from keff.data.splits import grouped_split
from keff.errors import DataError

RECORDS = [
    {"id": "p0", "question": "how to a", "answer": "A", "cluster": "c1"},
    {"id": "p1", "question": "how to a again", "answer": "A2", "cluster": "c1"},
    {"id": "p2", "question": "how to b", "answer": "B", "cluster": "c2"},
    {"id": "p3", "question": "b, other cluster", "answer": "B", "cluster": "c3"},
    {"id": "p4", "question": "how to d", "answer": "D", "cluster": "c4"},
]


@pytest.fixture
def pairs(tmp_path, make_jsonl):
    path = tmp_path / "p.jsonl"
    path.write_text(make_jsonl(RECORDS), encoding="utf-8")
    return load_qa(path, relevance_fields=["cluster"])


def test_pool_is_distinct_answers_in_first_appearance_order(pairs):
    task = qa_retrieval_task(pairs)
    assert task.pool_texts == ["A", "A2", "B", "D"]
    assert task.pool_ids == [answer_id(t) for t in task.pool_texts]
    assert all(pid.startswith("a") and len(pid) == 17 for pid in task.pool_ids)
    assert task.query_ids == ["p0", "p1", "p2", "p3", "p4"]
    assert task.query_rows.dtype == np.int64


def test_relevance_by_shared_key(pairs):
    task = qa_retrieval_task(pairs)
    a, a2, b, d = task.pool_ids
    assert task.qrels["p0"] == {a: 1, a2: 1}  # same cluster
    assert task.qrels["p1"] == {a: 1, a2: 1}
    # "B" is the answer of p2 (c2) and p3 (c3): its key set is the union, relevant to both
    assert task.qrels["p2"] == {b: 1}
    assert task.qrels["p3"] == {b: 1}
    assert task.qrels["p4"] == {d: 1}


def test_pool_rows_restrict_pool_and_keep_whole_text_keys(pairs):
    # pool from p3 only: answer "B" still carries c2 through p2, so p2 finds it relevant
    task = qa_retrieval_task(pairs, query_rows=[2], pool_rows=[3])
    assert task.pool_texts == ["B"]
    assert task.qrels == {"p2": {answer_id("B"): 1}}
    assert task.query_rows.tolist() == [2]
    assert task.query_texts == ["how to b"]


def test_query_without_relevant_answer_is_an_error(pairs):
    with pytest.raises(DataError, match=r"no relevant answer in the pool.*\(id 'p4'\)"):
        qa_retrieval_task(pairs, query_rows=[0, 4], pool_rows=[0, 1])


def test_bad_rows(pairs):
    with pytest.raises(DataError, match="outside"):
        qa_retrieval_task(pairs, query_rows=[9])
    with pytest.raises(DataError, match="repeated"):
        qa_retrieval_task(pairs, query_rows=[0, 0])
    with pytest.raises(DataError, match="pool_rows is empty"):
        qa_retrieval_task(pairs, pool_rows=[])
    with pytest.raises(DataError, match="integer row indices"):
        qa_retrieval_task(pairs, query_rows=[0.5])


def test_real_skills_relevance_matches_brute_force(shared_data):
    path = shared_data / "qa" / "skills_qa.jsonl"
    pairs = load_qa(path, preset="skills")
    raw = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    split = grouped_split(pairs.groups, seed=3)
    rows = split.test[:60]
    task = qa_retrieval_task(pairs, query_rows=rows, pool_rows=split.test)
    pool_set = set(task.pool_texts)
    for qid, i in zip(task.query_ids, rows):
        expected = {
            answer_id(r["answer"])
            for r in raw
            if r["answer"] in pool_set
            and (
                r["cluster_id"] == raw[i]["cluster_id"]
                or r["original_answer"] == raw[i]["original_answer"]
                or r["answer"] == raw[i]["answer"]
            )
        }
        assert set(task.qrels[qid]) == expected
        assert answer_id(raw[i]["answer"]) in expected

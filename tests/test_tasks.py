"""keff.tasks: BEIR and Q/A data as one RetrievalTask, seeded group samples, encoder evaluation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from keff.cli.demo_cmd import sample_corpus_dir
from keff.data import load_beir, load_qa, sample_groups
from keff.encoders.hash_encoder import HashEncoder
from keff.errors import DataError
from keff.eval import QA_METRICS
from keff.tasks import beir_task, evaluate_encoder, qa_task


def test_beir_task_uses_split_queries_and_full_corpus():
    ds = load_beir(sample_corpus_dir())
    task = beir_task(ds, "test")
    assert task.name == "two_domains/test"
    assert len(task.doc_ids) == 48
    assert set(task.query_ids) == set(ds.qrels["test"])
    assert set(task.data_hashes) == {"corpus.jsonl", "queries.jsonl", "qrels/test.tsv", "qrels/train.tsv"}


def test_sample_groups_takes_whole_groups_and_is_seeded():
    groups = np.repeat(np.arange(10), 3)
    rows = sample_groups(groups, 4, seed=1)
    assert len(np.unique(groups[rows])) == 4
    assert rows.size == 12
    assert np.array_equal(rows, sample_groups(groups, 4, seed=1))
    assert not np.array_equal(rows, sample_groups(groups, 4, seed=2))
    with pytest.raises(DataError, match="cannot sample 11 groups"):
        sample_groups(groups, 11)


def test_qa_task_sample_is_stated_and_pool_restricted(tmp_path):
    lines = []
    for g in range(6):
        for j in range(2):
            lines.append({"id": f"{g}-{j}", "question": f"question {g} {j}", "answer": f"answer {g}", "grp": str(g)})
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    pairs = load_qa(path, relevance_fields=["grp"])
    full = qa_task(pairs, "pairs")
    assert full.note is None and len(full.doc_ids) == 6 and full.metrics == QA_METRICS
    part = qa_task(pairs, "pairs", sample_n_groups=2, seed=0)
    assert len(part.query_ids) == 4 and len(part.doc_ids) == 2
    assert "2 of 6 groups" in part.note and "seed 0" in part.note


def test_evaluate_encoder_records_provenance():
    task = beir_task(load_beir(sample_corpus_dir()), "test")
    enc = HashEncoder(dim=256)
    result = evaluate_encoder(task, enc, seed=3)
    assert result.meta["encoders"] == {enc.name: enc.fingerprint}
    assert result.meta["data_hashes"] == task.data_hashes
    assert result.meta["seed"] == 3
    assert set(result.metrics) == set(task.metrics)
    assert set(result.per_query["ndcg@10"]) == set(task.query_ids)
    # a bag-of-words hash of these texts is far from random on shared words, but not perfect
    assert 0.0 < result.metrics["ndcg@10"] < 1.0

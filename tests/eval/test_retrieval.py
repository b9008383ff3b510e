import importlib.util

import numpy as np
import pytest

from keff.errors import DataError, KeffError
from keff.eval.retrieval import evaluate_retrieval


@pytest.fixture
def toy():
    """Each query is a noisy copy of its one relevant document."""
    rng = np.random.default_rng(0)
    docs = rng.standard_normal((200, 16)).astype(np.float32)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    target = rng.choice(200, size=40, replace=False)
    queries = docs[target] + 0.05 * rng.standard_normal((40, 16)).astype(np.float32)
    qids = [f"q{i}" for i in range(40)]
    dids = [f"d{j}" for j in range(200)]
    qrels = {q: {dids[t]: 1} for q, t in zip(qids, target)}
    return queries, docs, qids, dids, qrels


def test_toy_retrieval_result(toy):
    queries, docs, qids, dids, qrels = toy
    r = evaluate_retrieval(
        queries,
        docs,
        qids,
        dids,
        qrels,
        system="toy",
        dataset="toy/test",
        latency_queries=10,
        meta={"encoders": {"toy": "fp"}},
        seed=3,
    )
    assert (r.system, r.dataset) == ("toy", "toy/test")
    assert r.metrics["ndcg@10"] > 0.95 and r.metrics["recall@100"] == 1.0
    assert set(r.per_query["mrr@10"]) == set(qids)
    assert r.meta["seed"] == 3 and r.meta["encoders"] == {"toy": "fp"}
    assert r.meta["search"] == {
        "k": 100,
        "backend": "numpy",
        "n_queries": 40,
        "n_judged_queries": 40,
        "n_docs": 200,
        "dim": 16,
    }
    assert r.meta["latency"]["single"]["n"] == 10 and r.meta["latency"]["single"]["p50_us"] > 0
    assert r.meta["latency"]["batch"]["n_queries"] == 40


def test_latency_can_be_skipped(toy):
    queries, docs, qids, dids, qrels = toy
    r = evaluate_retrieval(
        queries, docs, qids, dids, qrels, system="t", dataset="d", latency_queries=0, metrics=["hit@1"], k=5
    )
    assert "latency" not in r.meta and list(r.metrics) == ["hit@1"]


def test_validation(toy):
    queries, docs, qids, dids, qrels = toy
    kw = dict(system="t", dataset="d", latency_queries=0)
    with pytest.raises(KeffError, match="40 query vectors but 39 query ids"):
        evaluate_retrieval(queries, docs, qids[:-1], dids, qrels, **kw)
    with pytest.raises(KeffError, match="200 document vectors but 199"):
        evaluate_retrieval(queries, docs, qids, dids[:-1], qrels, **kw)
    with pytest.raises(KeffError, match="16-d but document vectors are 8-d"):
        evaluate_retrieval(queries, docs[:, :8], qids, dids, qrels, **kw)
    with pytest.raises(DataError, match=r"1 judged queries have no query vector.*'missing'"):
        evaluate_retrieval(queries, docs, qids, dids, {**qrels, "missing": {"d0": 1}}, **kw)
    with pytest.raises(KeffError, match="k=10 is shallower than the deepest metric cutoff \\(100\\)"):
        evaluate_retrieval(queries, docs, qids, dids, qrels, k=10, **kw)


def test_scifact_minilm_reproduces_the_published_ndcg(scifact_minilm):
    data = scifact_minilm
    r = evaluate_retrieval(
        data.query_vecs,
        data.doc_vecs,
        data.query_ids,
        data.doc_ids,
        data.qrels,
        system="minilm",
        dataset="scifact/test",
        latency_queries=20,
    )
    assert len(data.query_ids) == 300
    assert r.metrics["ndcg@10"] == pytest.approx(0.6451, abs=5e-4)
    assert r.meta["latency"]["single"]["n"] == 20
    if importlib.util.find_spec("faiss"):
        f = evaluate_retrieval(
            data.query_vecs,
            data.doc_vecs,
            data.query_ids,
            data.doc_ids,
            data.qrels,
            system="minilm",
            dataset="scifact/test",
            backend="faiss",
            latency_queries=0,
        )
        for m, v in r.metrics.items():
            assert f.metrics[m] == pytest.approx(v, abs=1e-9), m

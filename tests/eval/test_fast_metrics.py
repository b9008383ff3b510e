import math

import numpy as np
import pytest

from keff.errors import KeffError
from keff.eval.fast_metrics import gains_from_topk, topk_metrics
from keff.eval.metric_names import DEFAULT_METRICS, QA_METRICS
from keff.eval.metrics import evaluate_run, run_from_topk
from keff.index import ExactIndex

ALL_METRICS = list(DEFAULT_METRICS) + [m for m in QA_METRICS if m not in DEFAULT_METRICS]


def random_benchmark(seed: int, nq: int = 3000, n: int = 1500, depth: int = 100):
    """Random rankings with distinct scores and graded qrels (0/1/2) of varied size."""
    rng = np.random.default_rng(seed)
    qids = [f"q{i}" for i in range(nq)]
    dids = [f"d{j}" for j in range(n)]
    scores = rng.random((nq, n))
    indices = np.argsort(-scores, axis=1)[:, :depth]
    top = np.take_along_axis(scores, indices, axis=1)
    qrels = {}
    for i, q in enumerate(qids):
        judged = {}
        many = i % 7 == 0  # some queries with many relevant documents
        for d in rng.choice(n, size=rng.integers(20, 60) if many else rng.integers(1, 5), replace=False):
            judged[dids[d]] = int(rng.integers(0, 3))  # often outside the top 100: not retrieved
        for r in rng.choice(depth, size=rng.integers(0, 6), replace=False):
            judged[dids[indices[i, r]]] = int(rng.integers(0, 3))  # some inside the ranking
        qrels[q] = judged
    return qids, dids, top, indices, qrels


def test_fast_path_equals_ir_measures_per_query():
    qids, dids, top, indices, qrels = random_benchmark(seed=11)
    _, reference = evaluate_run(run_from_topk(qids, dids, top, indices), qrels, ALL_METRICS)
    gains, ideal, n_rel = gains_from_topk(indices, qids, dids, qrels, 100)
    fast = topk_metrics(gains, ideal, n_rel, ALL_METRICS)
    judged = n_rel > 0
    assert judged.sum() > 2500 and (~judged).sum() > 0  # both kinds of query are exercised
    assert [q for q, j in zip(qids, judged) if j] == list(reference["ndcg@10"])
    for m in ALL_METRICS:
        ref = np.array([reference[m][q] for q, j in zip(qids, judged) if j])
        np.testing.assert_allclose(fast[m][judged], ref, rtol=0, atol=1e-6, err_msg=m)
        assert np.all(fast[m][~judged] == 0.0)
        assert ref.max() > 0  # the comparison is not all zeros
    assert fast["ndcg@10"].mean() > 0 and 0 < fast["recall@100"].mean() < 1


def test_hand_made_example():
    # One query; ranked items: [x (rel 0), a (rel 2), y (unjudged), b (rel 1)]; c (rel 1) not retrieved.
    qrels = {"q": {"a": 2, "b": 1, "c": 1, "x": 0}}
    gains, ideal, n_rel = gains_from_topk(np.array([[3, 0, 4, 1]]), ["q"], ["a", "b", "c", "x", "y"], qrels, 6)
    assert gains.tolist() == [[0.0, 2.0, 0.0, 1.0, 0.0, 0.0]]
    assert ideal.tolist() == [[2.0, 1.0, 1.0, 0.0, 0.0, 0.0]]
    assert n_rel.tolist() == [3]
    out = topk_metrics(gains, ideal, n_rel, ["ndcg@4", "mrr@1", "mrr@4", "recall@4", "map@4", "hit@1", "hit@2"])
    dcg = 2 / math.log2(3) + 1 / math.log2(5)
    idcg = 2 + 1 / math.log2(3) + 1 / math.log2(4)
    assert out["ndcg@4"][0] == pytest.approx(dcg / idcg)
    assert out["mrr@1"][0] == 0.0 and out["mrr@4"][0] == pytest.approx(0.5)
    assert out["recall@4"][0] == pytest.approx(2 / 3)
    assert out["map@4"][0] == pytest.approx((1 / 2 + 2 / 4) / 3)
    assert (out["hit@1"][0], out["hit@2"][0]) == (0.0, 1.0)


def test_unjudged_query_row_and_shallow_ranking_are_zero_padded():
    gains, ideal, n_rel = gains_from_topk(np.array([[0], [1]]), ["q", "other"], ["a", "b"], {"q": {"a": 1}}, 3)
    assert gains.tolist() == [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    assert n_rel.tolist() == [1, 0]


def test_depth_and_shape_errors():
    gains = np.zeros((2, 5))
    with pytest.raises(KeffError, match="ndcg@10 needs rankings of depth 10"):
        topk_metrics(gains, gains, np.ones(2), ["ndcg@10"])
    with pytest.raises(KeffError, match="n_relevant must have shape"):
        topk_metrics(gains, gains, np.ones(3), ["hit@1"])
    with pytest.raises(KeffError, match="indices must have shape"):
        gains_from_topk(np.zeros((3, 2), dtype=int), ["a", "b"], ["d"], {}, 2)


def test_fast_path_equals_evaluate_run_on_scifact(scifact_minilm):
    data = scifact_minilm
    scores, indices = ExactIndex(data.doc_vecs).search(data.query_vecs, 100)
    agg, _ = evaluate_run(run_from_topk(data.query_ids, data.doc_ids, scores, indices), data.qrels, ALL_METRICS)
    fast = topk_metrics(*gains_from_topk(indices, data.query_ids, data.doc_ids, data.qrels, 100), ALL_METRICS)
    for m in ALL_METRICS:
        assert fast[m].mean() == pytest.approx(agg[m], abs=1e-6), m

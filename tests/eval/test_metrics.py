import math

import numpy as np
import pytest

from keff.errors import DataError, KeffError
from keff.eval.metrics import evaluate_run, judged_queries, run_from_topk


def test_single_query_relevant_at_rank_two():
    run = {"q": {"a": 0.9, "b": 0.8, "c": 0.7}}
    qrels = {"q": {"b": 1}}
    metrics = ["mrr@10", "hit@1", "hit@5", "recall@1", "recall@5", "ndcg@10", "map@100"]
    agg, per = evaluate_run(run, qrels, metrics)
    assert agg["mrr@10"] == pytest.approx(0.5)
    assert agg["hit@1"] == 0.0 and agg["hit@5"] == 1.0
    assert agg["recall@1"] == 0.0 and agg["recall@5"] == 1.0
    assert agg["ndcg@10"] == pytest.approx(1 / math.log2(3))
    assert agg["map@100"] == pytest.approx(0.5)
    assert per["mrr@10"] == {"q": pytest.approx(0.5)}


def test_graded_ndcg_counts_unretrieved_relevant_docs_in_the_ideal():
    run = {"q": {"a": 3.0, "x": 2.0, "b": 1.0}}
    qrels = {"q": {"a": 2, "b": 1, "c": 1, "x": 0}}
    agg, _ = evaluate_run(run, qrels, ["ndcg@10", "recall@10", "map@10"])
    dcg = 2.0 + 1.0 / math.log2(4)
    idcg = 2.0 + 1.0 / math.log2(3) + 1.0 / math.log2(4)
    assert agg["ndcg@10"] == pytest.approx(dcg / idcg)
    assert agg["recall@10"] == pytest.approx(2 / 3)
    assert agg["map@10"] == pytest.approx((1.0 + 2 / 3) / 3)


def test_judged_query_missing_from_run_scores_zero():
    run = {"q1": {"a": 1.0}}
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 0}}
    agg, per = evaluate_run(run, qrels, ["ndcg@10", "mrr@10", "hit@1"])
    for m in ("ndcg@10", "mrr@10", "hit@1"):
        assert per[m] == {"q1": 1.0, "q2": 0.0}  # q3 has no relevant document: not averaged
        assert agg[m] == pytest.approx(0.5)


def test_run_queries_without_judgements_are_ignored():
    run = {"q1": {"a": 1.0}, "extra": {"a": 1.0}}
    agg, per = evaluate_run(run, {"q1": {"a": 1}}, ["hit@1"])
    assert per["hit@1"] == {"q1": 1.0}
    assert agg["hit@1"] == 1.0


def test_mrr_cutoff_is_applied():
    run = {"q": {f"d{i:02d}": 100.0 - i for i in range(20)}}
    qrels = {"q": {"d10": 1}}  # rank 11
    agg, _ = evaluate_run(run, qrels, ["mrr@10", "mrr@100", "hit@10", "hit@11"])
    assert agg["mrr@10"] == 0.0
    assert agg["mrr@100"] == pytest.approx(1 / 11)
    assert (agg["hit@10"], agg["hit@11"]) == (0.0, 1.0)


def test_ties_follow_trec_eval_order_for_every_metric():
    # Equal scores: trec_eval ranks doc ids in descending order, so "b" comes before "a".
    run = {"q": {"a": 1.0, "b": 1.0}}
    agg, _ = evaluate_run(run, {"q": {"a": 1}}, ["mrr@1", "hit@1", "mrr@10"])
    assert agg["mrr@1"] == agg["hit@1"] == 0.0
    assert agg["mrr@10"] == pytest.approx(0.5)


def test_mrr_at_k_matches_ir_measures_msmarco_provider_on_random_runs():
    ir_measures = pytest.importorskip("ir_measures")
    rng = np.random.default_rng(5)
    run, qrels = {}, {}
    for q in range(300):
        docs = rng.choice(200, size=30, replace=False)
        scores = rng.permutation(30) + rng.random()  # distinct within the query
        run[f"q{q}"] = {f"d{d}": float(s) for d, s in zip(docs, scores)}
        qrels[f"q{q}"] = {f"d{d}": 1 for d in rng.choice(200, size=rng.integers(1, 6), replace=False)}
    _, per = evaluate_run(run, qrels, ["mrr@5", "mrr@20"])
    provider = ir_measures.providers.registry["msmarco"]
    for k in (5, 20):
        ref = {m.query_id: m.value for m in provider.iter_calc([ir_measures.RR @ k], qrels, run)}
        for qid in qrels:
            assert per[f"mrr@{k}"][qid] == pytest.approx(ref.get(qid, 0.0), abs=1e-9)


def test_unknown_metric_lists_valid_forms():
    with pytest.raises(KeffError, match="valid forms"):
        evaluate_run({"q": {"a": 1.0}}, {"q": {"a": 1}}, ["P@10"])


def test_bad_qrels_and_runs_are_refused():
    with pytest.raises(DataError, match=r"integer >= 0.*id 'q'"):
        evaluate_run({"q": {"a": 1.0}}, {"q": {"a": -1}}, ["hit@1"])
    with pytest.raises(DataError, match=r"integer >= 0"):
        judged_queries({"q": {"a": 1.5}})
    with pytest.raises(DataError, match=r"non-finite.*id 'q'"):
        evaluate_run({"q": {"a": float("nan")}}, {"q": {"a": 1}}, ["hit@1"])
    with pytest.raises(KeffError, match="no query with a relevant document"):
        evaluate_run({"q": {"a": 1.0}}, {"q": {"a": 0}}, ["hit@1"])


def test_run_from_topk_maps_rows_and_items():
    scores = np.array([[0.9, 0.5], [0.7, 0.1]], dtype=np.float32)
    indices = np.array([[2, 0], [1, 2]])
    run = run_from_topk(["q1", "q2"], ["a", "b", "c"], scores, indices)
    assert run == {"q1": {"c": pytest.approx(0.9), "a": 0.5}, "q2": {"b": pytest.approx(0.7), "c": pytest.approx(0.1)}}
    assert all(isinstance(s, float) for docs in run.values() for s in docs.values())


def test_run_from_topk_refuses_inconsistent_input():
    s = np.zeros((2, 2), dtype=np.float32)
    with pytest.raises(DataError, match=r"out of range \[0, 3\) in row 1 \(id 'q2'\)"):
        run_from_topk(["q1", "q2"], ["a", "b", "c"], s, np.array([[0, 1], [2, 3]]))
    with pytest.raises(DataError, match="duplicate query_id"):
        run_from_topk(["q1", "q1"], ["a", "b", "c"], s, np.array([[0, 1], [1, 2]]))
    with pytest.raises(KeffError, match="3 query ids for 2 rows"):
        run_from_topk(["q1", "q2", "q3"], ["a", "b", "c"], s, np.array([[0, 1], [1, 2]]))
    with pytest.raises(DataError, match="twice in one result row"):
        run_from_topk(["q1", "q2"], ["a", "b", "c"], s, np.array([[0, 0], [1, 2]]))
    with pytest.raises(DataError, match="expected str"):
        run_from_topk(["q1", "q2"], ["a", 2, "c"], s, np.array([[0, 1], [1, 2]]))

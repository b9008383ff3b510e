"""``keff.studies.perf.metrics``: evaluate_run timed against a bare pytrec_eval call."""

from __future__ import annotations

import json

import pytest

from keff.studies.perf.metrics import metrics_vs_pytrec_eval, scifact_input


def test_timing_is_json_ready_and_names_what_it_timed():
    run = {f"q{q}": {f"d{d}": float((q * 7 + d * 3) % 11) for d in range(20)} for q in range(10)}
    qrels = {f"q{q}": {f"d{q}": 1, f"d{q + 5}": 2} for q in range(10)}
    out = metrics_vs_pytrec_eval(run, qrels, ["ndcg@10", "mrr@5", "hit@1"], repeats=3)
    assert json.loads(json.dumps(out)) == out
    assert out["pytrec_eval_measures"] == ["ndcg_cut.10", "recip_rank", "success.1"]
    assert out["evaluate_run_s"] > 0 and out["pytrec_eval_s"] > 0
    assert out["ratio"] == pytest.approx(out["evaluate_run_s"] / out["pytrec_eval_s"])
    assert out["cpu_ratio"] == pytest.approx(out["evaluate_run_cpu_s"] / out["pytrec_eval_cpu_s"])
    assert out["paired_ratio"] > 0 and out["cpu_paired_ratio"] > 0
    assert (out["n_queries"], out["n_scored"], out["repeats"]) == (10, 200, 3)
    with pytest.raises(ValueError, match="repeats"):
        metrics_vs_pytrec_eval(run, qrels, repeats=0)


def test_scifact_input_is_300_queries_by_100_documents(shared_data):
    from keff.eval import evaluate_run

    run, qrels = scifact_input(shared_data)
    assert len(run) == len(qrels) == 300
    assert {len(docs) for docs in run.values()} == {100}
    first = next(iter(run.values()))
    assert list(first.values()) == sorted(first.values(), reverse=True)
    agg, _ = evaluate_run(run, qrels, ["ndcg@10", "recall@100"])
    assert 0.5 < agg["ndcg@10"] < 0.8 and agg["recall@100"] > agg["ndcg@10"]  # MiniLM on SciFact: ~0.65

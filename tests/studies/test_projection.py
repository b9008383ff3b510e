"""The projection study: its SciFact setup never fits on test claims, and its pieces run small."""

from __future__ import annotations

import numpy as np

from keff.data import grouped_kfold
from keff.projection import ProjectionSetup
from keff.studies.projection import ProjectionConfig, evaluate, plot, routed_throughput


def synthetic(n=90, d=12):
    rng = np.random.default_rng(0)
    groups = np.arange(n) // 3
    Q = rng.standard_normal((n, d)).astype(np.float32)
    Q /= np.linalg.norm(Q, axis=1, keepdims=True)
    A = Q + 0.3 * rng.standard_normal((n, d)).astype(np.float32)
    A /= np.linalg.norm(A, axis=1, keepdims=True)
    ids, pids = [f"q{i}" for i in range(n)], [f"a{i}" for i in range(n)]
    qrels = {ids[i]: {pids[j]: 1 for j in np.flatnonzero(groups == groups[i])} for i in range(n)}
    return ProjectionSetup(Q, A, A, ids, pids, qrels, grouped_kfold(groups, 3, seed=0), groups)


def test_plans_and_quick():
    assert [p[:2] for p in ProjectionConfig(quick=True).plans()] == [("skills", "minilm")]
    assert ("medquad", "mpnet", 300) in ProjectionConfig().plans()


def test_evaluate_and_plot(tmp_path, monkeypatch):
    monkeypatch.setattr("keff.studies.projection.METHODS", {"identity": None, "procrustes": None})
    result = evaluate(synthetic(), "toy", "none", ProjectionConfig(quick=True))
    assert [r["method"] for r in result["rows"]] == ["identity", "procrustes"]
    assert result["fold_test_queries"] and sum(result["fold_test_queries"]) == 90
    assert result["largest_group"] == 3
    png = plot([result], tmp_path / "p.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_routed_throughput_is_measured_in_one_interleaved_run():
    s = synthetic(n=372, d=16)  # 124 clusters need enough answers
    out = routed_throughput(s, ProjectionConfig(throughput_batch=200, throughput_repeats=2))
    assert out["n_clusters"] == 124 and out["batch"] == 200 and out["dim"] == 16
    assert out["qps_centroid"] > 0 and out["qps_question"] > 0 and out["question_over_centroid_cost"] > 0

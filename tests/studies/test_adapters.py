"""The adapters study: its rows run small, with the do-no-harm defaults scored from the same fits."""

from __future__ import annotations

import numpy as np
import pytest

from keff.adapters import QueryAdapter
from keff.data import grouped_kfold
from keff.projection import ProjectionSetup
from keff.studies.adapters import AdaptersConfig, evaluate, plot

pytest.importorskip("torch", reason="adapters train with torch: pip install 'keff[st]'")


def synthetic(n=240, d=12):
    rng = np.random.default_rng(0)
    groups = np.arange(n) // 3
    Q = rng.standard_normal((n, d)).astype(np.float32)
    Q /= np.linalg.norm(Q, axis=1, keepdims=True)
    A = Q @ (np.eye(d) + 0.5 * rng.standard_normal((d, d))).astype(np.float32)
    A /= np.linalg.norm(A, axis=1, keepdims=True)
    ids, pids = [f"q{i}" for i in range(n)], [f"a{i}" for i in range(n)]
    qrels = {ids[i]: {pids[j]: 1 for j in np.flatnonzero(groups == groups[i])} for i in range(n)}
    return ProjectionSetup(Q, A, A, ids, pids, qrels, grouped_kfold(groups, 3, seed=0), groups)


def test_plans_follow_the_projection_study():
    assert [p[:2] for p in AdaptersConfig(quick=True).plans()] == [("skills", "minilm")]
    assert ("medquad", "mpnet", 300) in AdaptersConfig().plans()


def test_evaluate_and_plot(tmp_path, monkeypatch):
    monkeypatch.setattr(
        "keff.studies.adapters.METHODS",
        {"identity": None, "query linear": (QueryAdapter, {"epochs": 3, "hard_negatives": 0})},
    )
    monkeypatch.setattr("keff.studies.adapters.DEFAULTS", {"query default (do-no-harm)": "query linear"})
    result = evaluate(synthetic(), "toy", "none", seed=0)
    rows = {r["method"]: r for r in result["rows"]}
    assert list(rows) == ["identity", "query linear", "query default (do-no-harm)"]
    assert sum(result["fold_test_queries"]) == 240
    trained, default = rows["query linear"], rows["query default (do-no-harm)"]
    assert trained["parameters"] == 12 * 12 + 12 and trained["train_seconds"] > 0
    # a default row equals its trained row in the folds the rule accepted, the identity elsewhere
    if default["accepted_by_do_no_harm"] == 1.0:
        assert default["metrics"]["hit@1"]["mean"] == trained["metrics"]["hit@1"]["mean"]
    if default["accepted_by_do_no_harm"] == 0.0:
        assert default["metrics"]["hit@1"]["mean"] == rows["identity"]["metrics"]["hit@1"]["mean"]
    png = plot([result], tmp_path / "a.png")
    assert png.read_bytes()[:4] == b"\x89PNG"

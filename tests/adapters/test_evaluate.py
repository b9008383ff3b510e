"""Held-out evaluation of adapters: folds, fits on training rows only, do-no-harm rows."""

from __future__ import annotations

import numpy as np
import pytest

from keff.adapters import AsymAdapter, QueryAdapter
from keff.adapters.evaluate import domain_folds, evaluate_adapters, fit_method, searched
from keff.data import grouped_kfold
from keff.errors import KeffError
from keff.projection import ProjectionSetup

pytest.importorskip("torch", reason="adapters train with torch: pip install 'keff[st]'")


def _setup(n=180, d=8):
    rng = np.random.default_rng(1)
    groups = np.arange(n) // 2
    Q = rng.standard_normal((n, d)).astype(np.float32)
    Q /= np.linalg.norm(Q, axis=1, keepdims=True)
    A = Q + 0.4 * rng.standard_normal((n, d)).astype(np.float32)
    A /= np.linalg.norm(A, axis=1, keepdims=True)
    ids, pids = [f"q{i}" for i in range(n)], [f"a{i}" for i in range(n)]
    qrels = {ids[i]: {pids[j]: 1 for j in np.flatnonzero(groups == groups[i])} for i in range(n)}
    return ProjectionSetup(Q, A, A, ids, pids, qrels, grouped_kfold(groups, 3, seed=0), groups)


def test_domain_folds_hold_out_each_domain_once():
    names, folds = domain_folds(np.array(["b", "a", "b", "c", "a"]))
    assert names == ["a", "b", "c"]
    assert [test.tolist() for _, test in folds] == [[1, 4], [0, 2], [3]]
    for train, test in folds:
        assert not set(train) & set(test) and len(train) + len(test) == 5
    with pytest.raises(KeffError, match="at least two domains"):
        domain_folds(np.array(["a", "a"]))


def test_every_question_is_scored_once_by_adapters_fitted_without_it(monkeypatch):
    setup = _setup()
    seen_rows = []
    real = fit_method

    def spy(spec, Q, A, groups, domains, seed):
        seen_rows.append({tuple(q) for q in np.round(Q, 6)})
        return real(spec, Q, A, groups, domains, seed)

    monkeypatch.setattr("keff.adapters.evaluate.fit_method", spy)
    methods = {"identity": None, "q": (QueryAdapter, {"epochs": 2, "hard_negatives": 0})}
    out = evaluate_adapters(setup, setup.folds, methods, {"q (do-no-harm)": "q"}, seed=0)
    assert set(out) == {"identity", "q", "q (do-no-harm)"}
    assert sorted(out["q"].per_query["hit@1"]) == sorted(setup.query_ids)
    for (_, test), fitted_on in zip(setup.folds, seen_rows):
        held = {tuple(q) for q in np.round(setup.Q[test], 6)}
        assert not held & fitted_on  # no fold's adapter saw its own test questions
    assert len(out["q (do-no-harm)"].extra["accepted_by_do_no_harm"]) == len(setup.folds)


def test_identity_is_required_and_refused_adapters_search_unchanged():
    setup = _setup()
    with pytest.raises(KeffError, match="identity"):
        evaluate_adapters(setup, setup.folds, {"q": (QueryAdapter, {})})
    m = AsymAdapter(epochs=2, hard_negatives=0, do_no_harm=False).fit(setup.Q, setup.A, setup.groups)
    q, p = searched(m, setup.Q, setup.pool, refused=True)
    assert q is setup.Q and p is setup.pool
    q, p = searched(m, setup.Q, setup.pool)
    np.testing.assert_allclose(np.linalg.norm(p, axis=1), 1.0, atol=1e-5)

"""keff.projection: the K-fold protocol never fits on a fold's held-out pairs."""

from __future__ import annotations

import numpy as np
import pytest

from keff.data import grouped_kfold
from keff.errors import DataError
from keff.projection import ProjectionSetup, beir_setup, kfold_projection, summarise


def unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def setup(A_override=None):
    rng = np.random.default_rng(0)
    n, d = 120, 12
    groups = np.arange(n) // 3
    Q = unit(rng.standard_normal((n, d)))
    A = unit(Q + 0.3 * rng.standard_normal((n, d))) if A_override is None else A_override
    pool = A if A_override is None else setup().A  # the index stays the same
    ids = [f"q{i}" for i in range(n)]
    pids = [f"a{i}" for i in range(n)]
    qrels = {ids[i]: {pids[j]: 1 for j in np.flatnonzero(groups == groups[i])} for i in range(n)}
    return ProjectionSetup(Q, A, pool, ids, pids, qrels, grouped_kfold(groups, 3, seed=0), groups)


def test_held_out_answers_never_reach_the_fit():
    base = setup()
    first = kfold_projection(base, methods=["identity", "procrustes", "affine"], student=False)
    # scramble, fold by fold, the answers of the held-out pairs: a fit that used them would change
    for f, (_, test) in enumerate(base.folds):
        A = base.A.copy()
        A[test] = unit(np.random.default_rng(f).standard_normal(A[test].shape))
        scrambled = setup(A)
        again = kfold_projection(scrambled, methods=["identity", "procrustes", "affine"], student=False)
        test_ids = [base.query_ids[i] for i in test]
        for method in ("procrustes", "affine"):
            a = [first[method].per_query["hit@1"][q] for q in test_ids]
            b = [again[method].per_query["hit@1"][q] for q in test_ids]
            assert a == b, method


def test_summarise_on_a_slice_uses_only_its_queries():
    out = kfold_projection(setup(), methods=["identity", "procrustes"], student=False)
    some = [f"q{i}" for i in range(0, 120, 4)]
    whole = {r["method"]: r for r in summarise(out, ["hit@1", "mrr@100"], seed=0)}
    part = {r["method"]: r for r in summarise(out, ["hit@1", "mrr@100"], seed=0, query_ids=some)}
    assert whole["procrustes"]["n_queries"] == 120 and part["procrustes"]["n_queries"] == len(some)
    expected = np.mean([out["procrustes"].per_query["hit@1"][q] for q in some])
    assert part["procrustes"]["metrics"]["hit@1"]["mean"] == expected
    assert part["identity"]["metrics"]["hit@1"]["diff"] == 0.0


def test_trained_maps_report_their_best_epoch_per_fold():
    base = setup()
    out = kfold_projection(base, methods=["identity", "contrastive"], student=False)
    epochs = out["contrastive"].extra["best_epoch"]
    assert len(epochs) == len(base.folds) and all(isinstance(e, int) and e >= 0 for e in epochs)
    assert "best_epoch" not in out["identity"].extra


def test_beir_setup_never_fits_on_test_queries(shared_data):
    s = beir_setup(shared_data / "beir" / "scifact", "hash", log=lambda *a: None)
    ((train, test),) = s.folds
    test_ids = [s.query_ids[i] for i in test]
    assert set(test_ids) == set(s.qrels) and len(test_ids) == 300
    assert all(q.startswith("train:") for q in (s.query_ids[i] for i in train))
    assert not np.abs(s.A[test]).any()  # test rows carry no answer vector a fit could use
    seen, unseen = s.slices.values()
    assert sorted(seen + unseen) == sorted(test_ids)


def test_beir_setup_needs_the_fit_split(shared_data):
    with pytest.raises(DataError, match="dev"):
        beir_setup(shared_data / "beir" / "scifact", "hash", fit_split="dev", log=lambda *a: None)

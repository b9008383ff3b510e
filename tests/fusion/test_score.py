"""keff.fusion.score: RRF, convex score mixing, their validation-set tuners, concatenation."""

from __future__ import annotations

import numpy as np
import pytest

from keff.errors import KeffError
from keff.fusion.score import concat_vectors, convex_scores, rrf_scores, tune_convex_weights, tune_rrf_k


def test_rrf_matches_hand_computed_example():
    a = np.array([[2, 0]])
    b = np.array([[0, 3, 1]])
    out = rrf_scores([a, b], n_docs=5, k=1)
    assert out.shape == (1, 5) and out.dtype == np.float32
    # doc 0: ranks 2 and 1; doc 1: rank 3 in b; doc 2: rank 1 in a; doc 3: rank 2 in b; doc 4: unranked
    np.testing.assert_allclose(out[0], [1 / 3 + 1 / 2, 1 / 4, 1 / 2, 1 / 3, 0], rtol=1e-6)
    default = rrf_scores([a, b], n_docs=5)
    assert default[0, 0] == pytest.approx(1 / 62 + 1 / 61, rel=1e-6)


def test_rrf_is_vectorised_over_queries():
    rng = np.random.default_rng(0)
    rankings = [np.stack([rng.permutation(30)[:10] for _ in range(8)]) for _ in range(3)]
    full = rrf_scores(rankings, 30, k=10)
    for q in range(8):
        row = rrf_scores([r[q : q + 1] for r in rankings], 30, k=10)
        np.testing.assert_array_equal(full[q : q + 1], row)


@pytest.mark.parametrize(
    ("rankings", "match"),
    [
        ([np.array([[0, 5]])], r"ranking 0, query row 0, rank 2: doc index 5 outside \[0, 5\)"),
        ([np.array([[0, 1]]), np.array([[1, 1]])], "ranking 1, query row 0 lists a document more than once"),
        ([np.array([[0, 1]]), np.array([[1], [2]])], "ranking 1 has 2 query rows"),
        ([np.array([[0.0, 1.0]])], "2-D integer array"),
        ([], "at least one"),
    ],
)
def test_rrf_rejects_bad_rankings(rankings, match):
    with pytest.raises(KeffError, match=match):
        rrf_scores(rankings, 5)


def test_convex_scores_and_validation():
    m1, m2 = np.ones((2, 3)), np.zeros((2, 3))
    np.testing.assert_allclose(convex_scores([m1, m2], [0.25, 0.75]), np.full((2, 3), 0.25))
    with pytest.raises(KeffError, match="sum to 1"):
        convex_scores([m1, m2], [0.5, 0.6])
    with pytest.raises(KeffError, match="need 2 weights"):
        convex_scores([m1, m2], [1.0])
    with pytest.raises(KeffError, match="share one shape"):
        convex_scores([m1, np.zeros((2, 4))], [0.5, 0.5])


def test_equal_weight_convex_equals_concat_inner_products():
    rng = np.random.default_rng(1)
    dims = (8, 5, 12)
    queries = [rng.standard_normal((4, d)) for d in dims]
    docs = [rng.standard_normal((9, d)) for d in dims]
    unit = [
        (q / np.linalg.norm(q, axis=1, keepdims=True), x / np.linalg.norm(x, axis=1, keepdims=True))
        for q, x in zip(queries, docs)
    ]
    cosines = [q @ x.T for q, x in unit]
    expected = convex_scores(cosines, [1 / 3] * 3)
    cq, cx = concat_vectors(queries), concat_vectors(docs)
    assert cq.shape == (4, sum(dims)) and cq.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(cq, axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(cq @ cx.T, expected, atol=1e-6)


def test_concat_rejects_mismatched_rows_and_zero_vectors():
    with pytest.raises(KeffError, match="specialist 1 vectors must be numeric"):
        concat_vectors([np.ones((2, 3)), np.ones((3, 3))])
    with pytest.raises(KeffError, match="specialist 0 vector of query row 1 has zero norm"):
        concat_vectors([np.array([[1.0, 0.0], [0.0, 0.0]])])


def test_tune_rrf_k_picks_the_best_and_first_on_ties():
    # doc 0 is first for specialist a only; doc 1 is third for a and second for b.
    # k = 0: doc 0 scores 1, doc 1 scores 1/3 + 1/2; k >= 1: doc 1 wins.
    a, b = np.array([[0, 2, 1]]), np.array([[3, 1]])

    def doc0_on_top(scores):
        return float(np.argmax(scores[0]) == 0)

    k, table = tune_rrf_k([a, b], 4, doc0_on_top, ks=(5, 0, 1))
    assert k == 0
    assert [row["objective"] for row in table["evaluated"]] == [0.0, 1.0, 0.0]
    assert table["best_objective"] == 1.0
    k, _ = tune_rrf_k([a, b], 4, lambda s: 0.5, ks=(20, 60))
    assert k == 20
    with pytest.raises(KeffError, match="objective returned nan for k=20"):
        tune_rrf_k([a, b], 4, lambda s: float("nan"), ks=(20,))


def _target_objective(mats, target_w):
    target = sum(w * m for w, m in zip(target_w, mats))
    return lambda scores: -float(((scores - target) ** 2).sum())


def test_tune_convex_weights_grid_finds_planted_weights():
    rng = np.random.default_rng(2)
    mats = [rng.standard_normal((6, 10)) for _ in range(3)]
    w, table = tune_convex_weights(mats, _target_objective(mats, [0.2, 0.3, 0.5]), step=0.1)
    np.testing.assert_allclose(w, [0.2, 0.3, 0.5], atol=1e-9)
    assert table["method"] == "grid" and len(table["evaluated"]) == 66  # C(12, 2) grid points
    assert table["best_objective"] == pytest.approx(0.0, abs=1e-6)


def test_tune_convex_weights_ties_go_to_uniform():
    mats = [np.ones((2, 3)), np.zeros((2, 3))]
    w, _ = tune_convex_weights(mats, lambda s: 1.0, step=0.25)
    np.testing.assert_allclose(w, [0.5, 0.5])
    with pytest.raises(KeffError, match="1 / step a whole number"):
        tune_convex_weights(mats, lambda s: 1.0, step=0.3)


def test_tune_convex_weights_coordinate_ascent_for_many_specialists():
    rng = np.random.default_rng(3)
    mats = [rng.standard_normal((5, 8)) for _ in range(6)]
    target = [0.0, 0.6, 0.0, 0.4, 0.0, 0.0]
    w, table = tune_convex_weights(mats, _target_objective(mats, target), step=0.1)
    assert table["method"] == "coordinate_ascent"
    assert w.sum() == pytest.approx(1.0) and (w >= 0).all()
    assert table["best_objective"] > table["evaluated"][0]["objective"]  # beat the uniform start
    np.testing.assert_allclose(w, target, atol=0.1)

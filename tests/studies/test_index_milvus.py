"""The Milvus study's measures: top-k agreement with ties told apart, and the candidate depth a
hybrid search needs to score keff's fused top k in full."""

from __future__ import annotations

import numpy as np

from keff.studies.index_milvus import compare_topk, needed_depth


def test_compare_topk_tells_ties_from_real_differences():
    vectors = {"a": np.array([[1.0, 0.0], [0.6, 0.8], [0.6, 0.8], [0.0, 1.0]], dtype=np.float32)}
    queries = {"a": np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]], dtype=np.float32)}
    reference = np.array([[3, 1], [3, 1], [3, 1]])
    rows = np.array([[3, 1], [3, 2], [3, 0]])  # same; rows 1 and 2 tie (same vector); row 0 is worse
    got = compare_topk(rows, reference, vectors, queries, np.ones(1))
    assert (got["identical"], got["differs_only_by_ties"], got["differs_beyond_ties"]) == (1, 1, 1)
    assert got["same_set"] == 1 and abs(got["mean_overlap"] - 4 / 6) < 1e-12
    assert got["examples"] == [{"query": 2, "first_rank": 1, "got": [3, 0], "reference": [3, 1]}]


class _Index:
    def __init__(self, vectors):
        self.vectors = vectors


def test_needed_depth_is_the_deepest_single_encoder_rank_of_the_fused_top_k():
    # encoder a ranks documents 0 > 1 > 2 > 3, encoder b ranks 3 > 2 > 1 > 0
    a = np.array([[1.0], [0.9], [0.8], [0.1]], dtype=np.float32)
    b = np.array([[0.1], [0.5], [0.7], [1.0]], dtype=np.float32)
    idx = _Index({"a": a, "b": b})
    q = {"a": np.ones((1, 1), np.float32), "b": np.ones((1, 1), np.float32)}
    # equal weights: fused 1.1, 1.4, 1.5, 1.1 -> top 2 = docs 2 and 1, ranked 3rd and 2nd by a, 2nd and 3rd by b
    assert needed_depth(idx, q, np.array([0.5, 0.5]), 2).tolist() == [3]
    # all weight on a: its own top 2 need depth 2 in a, but b ranks doc 0 last
    assert needed_depth(idx, q, np.array([1.0, 0.0]), 2).tolist() == [4]
    tied = _Index({"a": np.array([[1.0], [0.5], [0.5]], np.float32)})
    assert needed_depth(tied, {"a": np.ones((1, 1), np.float32)}, np.array([1.0]), 2).tolist() == [3]  # tie counted

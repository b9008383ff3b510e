import numpy as np
import pytest

from keff.index.numpy_backend import NumpyBackend, topk_rows


def reference_topk(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Full sort by (score desc, index asc), row by row."""
    idx = np.stack([np.lexsort((np.arange(row.size), -row))[:k] for row in scores])
    return np.take_along_axis(scores, idx, axis=1), idx


@pytest.mark.parametrize("k", [1, 3, 7, 20])
def test_topk_rows_matches_full_sort_with_many_ties(k):
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=(200, 20)).astype(np.float32)  # heavy ties, incl. at the cut
    top_s, top_i = topk_rows(scores, k)
    ref_s, ref_i = reference_topk(scores, k)
    np.testing.assert_array_equal(top_i, ref_i)
    np.testing.assert_array_equal(top_s, ref_s)
    assert top_i.dtype == np.int64 and top_s.dtype == np.float32


def test_only_rows_with_a_tie_across_the_cut_pay_for_the_tie_work(monkeypatch):
    from keff.index import numpy_backend

    rng = np.random.default_rng(2)
    scores = rng.standard_normal((300, 500)).astype(np.float32)  # distinct scores
    scores[[3, 77], :] = np.round(scores[[3, 77], :])  # two rows with ties at every cut
    scores[150, 10:] = -np.inf  # a row whose cut falls among -inf (removed rows)
    seen = []
    real = numpy_backend._lowest_tied
    monkeypatch.setattr(numpy_backend, "_lowest_tied", lambda s, kth, k: seen.append(s.shape[0]) or real(s, kth, k))
    for k in (5, 50):
        top_s, top_i = topk_rows(scores, k)
        ref_s, ref_i = reference_topk(scores, k)
        np.testing.assert_array_equal(top_i, ref_i)
        np.testing.assert_array_equal(top_s, ref_s)
    assert seen == [2, 3]  # k = 50 also cuts row 150 among its -inf


@pytest.mark.parametrize("k", [1, 10, 100])
def test_wide_rows_go_through_the_sampled_bound_and_match_the_full_sort(k, monkeypatch):
    from keff.index import numpy_backend

    rng = np.random.default_rng(k)
    n = 30000  # at least 256 k wide
    scores = rng.standard_normal((12, n)).astype(np.float32)
    scores[1] = np.round(scores[1], 1)  # ties at every cut
    scores[2] = np.sort(scores[2])  # ascending: the sample's bound is far below the cut
    scores[3, ::2] = -np.inf  # half the row removed
    scores[4, : n // 2] = scores[4, n // 2 :]  # every score twice
    widths = []
    real = numpy_backend._partitioned
    monkeypatch.setattr(numpy_backend, "_partitioned", lambda s, k: widths.append(s.shape[1]) or real(s, k))
    top_s, top_i = topk_rows(scores, k)
    ref_s, ref_i = reference_topk(scores, k)
    np.testing.assert_array_equal(top_i, ref_i)
    np.testing.assert_array_equal(top_s, ref_s)
    assert widths and max(widths) < n  # only the candidates above the bound were partitioned
    np.testing.assert_array_equal(topk_rows(np.asfortranarray(scores), k)[1], ref_i)  # a non-contiguous matrix


def test_heavily_tied_wide_rows_fall_back_to_the_whole_rows(monkeypatch):
    from keff.index import numpy_backend

    scores = np.random.default_rng(0).integers(0, 3, size=(5, 5000)).astype(np.float32)
    widths = []
    real = numpy_backend._partitioned
    monkeypatch.setattr(numpy_backend, "_partitioned", lambda s, k: widths.append(s.shape[1]) or real(s, k))
    top_s, top_i = topk_rows(scores, 20)
    ref_s, ref_i = reference_topk(scores, 20)
    np.testing.assert_array_equal(top_i, ref_i)
    assert widths == [5000]


def test_topk_rows_boundary_tie_takes_lower_indices():
    scores = np.array([[1.0, 2.0, 2.0, 2.0, 0.0]], dtype=np.float32)
    assert topk_rows(scores, 2)[1].tolist() == [[1, 2]]
    assert topk_rows(scores, 4)[1].tolist() == [[1, 2, 3, 0]]


def test_batches_give_the_same_result_as_one_batch():
    rng = np.random.default_rng(1)
    vecs = rng.standard_normal((300, 16)).astype(np.float32)
    queries = rng.standard_normal((50, 16)).astype(np.float32)
    one = NumpyBackend(vecs, batch_size=1024).search(queries, 10)
    many = NumpyBackend(vecs, batch_size=7).search(queries, 10)
    np.testing.assert_array_equal(one[1], many[1])
    # BLAS may round a differently shaped product in the last bit.
    np.testing.assert_allclose(one[0], many[0], rtol=1e-6, atol=1e-6)

import numpy as np
import pytest

pytest.importorskip("faiss", reason="the faiss extra is not installed (pip install 'keff[faiss]')")

from keff.index.faiss_backend import FaissBackend  # noqa: E402
from keff.index.numpy_backend import NumpyBackend  # noqa: E402


def test_faiss_matches_numpy_on_random_data():
    rng = np.random.default_rng(2)
    vecs = rng.standard_normal((800, 32)).astype(np.float32)
    queries = rng.standard_normal((60, 32)).astype(np.float32)
    f_scores, f_idx = FaissBackend(vecs, batch_size=16).search(queries, 25)
    n_scores, n_idx = NumpyBackend(vecs, batch_size=1024).search(queries, 25)
    np.testing.assert_array_equal(f_idx, n_idx)
    np.testing.assert_allclose(f_scores, n_scores, rtol=1e-5, atol=1e-5)
    assert f_idx.dtype == np.int64 and f_scores.dtype == np.float32


def test_faiss_orders_equal_scores_by_lower_index():
    vecs = np.ones((6, 4), dtype=np.float32)
    _, idx = FaissBackend(vecs, batch_size=8).search(np.ones((2, 4), dtype=np.float32), 6)
    assert idx.tolist() == [list(range(6))] * 2

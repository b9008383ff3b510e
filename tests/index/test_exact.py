import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from keff.errors import KeffError
from keff.index import BACKENDS, ExactIndex

AVAILABLE = ["numpy"] + (["faiss"] if importlib.util.find_spec("faiss") else [])


@pytest.fixture
def data():
    rng = np.random.default_rng(3)
    vecs = rng.standard_normal((500, 24)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    queries = rng.standard_normal((40, 24)).astype(np.float32)
    return vecs, queries


@pytest.mark.parametrize("backend", AVAILABLE)
def test_search_equals_brute_force_argsort(data, backend):
    vecs, queries = data
    scores, idx = ExactIndex(vecs, backend=backend).search(queries, 10)
    full = queries.astype(np.float64) @ vecs.T.astype(np.float64)
    ref = np.argsort(-full, axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(idx, ref)
    np.testing.assert_allclose(scores, np.take_along_axis(full, ref, axis=1), rtol=1e-5, atol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 0)
    assert scores.dtype == np.float32 and idx.dtype == np.int64


@pytest.mark.parametrize("backend", AVAILABLE)
def test_k_is_capped_at_n(backend):
    vecs = np.eye(3, dtype=np.float32)
    scores, idx = ExactIndex(vecs, backend=backend).search(np.array([[0.0, 1.0, 0.5]], dtype=np.float32), 10)
    assert idx.tolist() == [[1, 2, 0]]
    assert scores.tolist() == [[1.0, 0.5, 0.0]]


def test_attributes_and_float64_input():
    index = ExactIndex(np.zeros((7, 5)) + 1.0)
    assert (index.n, index.dim, index.backend) == (7, 5, "numpy")
    assert "n=7" in repr(index)


def test_one_dimensional_query_is_refused_with_a_hint(data):
    vecs, queries = data
    with pytest.raises(KeffError, match=r"2-D.*\[None, :\]"):
        ExactIndex(vecs).search(queries[0], 5)


def test_dimension_mismatch_names_both_dims(data):
    vecs, _ = data
    with pytest.raises(KeffError, match=r"dimension 10 .* 24-d"):
        ExactIndex(vecs).search(np.zeros((2, 10), dtype=np.float32), 5)


@pytest.mark.parametrize(
    "vectors, message",
    [
        (np.array([[1.0, np.nan]], dtype=np.float32), "finite"),
        (np.zeros((0, 4), dtype=np.float32), "0 vectors"),
        (np.zeros((3, 4), dtype=np.int64), "floating-point"),
    ],
)
def test_bad_vectors_are_refused(vectors, message):
    with pytest.raises(KeffError, match=message):
        ExactIndex(vectors)


def test_bad_arguments_are_refused(data):
    vecs, queries = data
    with pytest.raises(KeffError, match="unknown index backend"):
        ExactIndex(vecs, backend="annoy")
    with pytest.raises(KeffError, match="batch_size"):
        ExactIndex(vecs, batch_size=0)
    with pytest.raises(KeffError, match="k must be a positive integer"):
        ExactIndex(vecs).search(queries, 0)
    with pytest.raises(KeffError, match="finite"):
        ExactIndex(vecs).search(np.full((1, 24), np.inf, dtype=np.float32), 3)


def test_empty_query_batch(data):
    vecs, _ = data
    scores, idx = ExactIndex(vecs).search(np.zeros((0, 24), dtype=np.float32), 4)
    assert scores.shape == (0, 4) and idx.shape == (0, 4)


def test_backends_registry():
    assert set(BACKENDS) == {"numpy", "faiss"}


def test_importing_the_index_does_not_import_faiss():
    code = "import keff.index, sys; print('faiss' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

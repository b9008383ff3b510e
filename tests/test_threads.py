"""Per-operation thread limits: one BLAS thread inside the block, the pools restored after it."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from keff import threads
from keff.index import numpy_backend


def blas_threads() -> list[int]:
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


@pytest.fixture
def two_blas_threads():
    if not blas_threads():
        pytest.skip("no BLAS pool found by threadpoolctl")
    with threadpool_limits(2, user_api="blas"):
        yield


def test_one_thread_limits_blas_inside_and_restores_after(two_blas_threads):
    before = blas_threads()
    with threads.one_thread():
        assert set(blas_threads()) == {1}
    assert blas_threads() == before


def test_one_thread_restores_after_an_error(two_blas_threads):
    before = blas_threads()
    with pytest.raises(ValueError), threads.one_thread():
        raise ValueError("boom")
    assert blas_threads() == before


def test_limits_can_be_turned_off(two_blas_threads, monkeypatch):
    monkeypatch.setenv("KEFF_THREADS", "default")
    before = blas_threads()
    with threads.one_thread():
        assert blas_threads() == before


def test_single_query_search_runs_on_one_thread_and_batches_do_not(two_blas_threads, monkeypatch):
    seen = []
    real = numpy_backend.topk_rows

    def recording(scores, k):
        seen.append((scores.shape[0], max(blas_threads())))
        return real(scores, k)

    monkeypatch.setattr(numpy_backend, "topk_rows", recording)
    rng = np.random.default_rng(0)
    backend = numpy_backend.NumpyBackend(rng.standard_normal((500, 16)).astype(np.float32), batch_size=64)
    backend.search(rng.standard_normal((1, 16)).astype(np.float32), 5)
    backend.search(rng.standard_normal((100, 16)).astype(np.float32), 5)
    assert seen[0] == (1, 1)
    assert [n for n, _ in seen[1:]] == [64, 36] and all(t == 2 for _, t in seen[1:])

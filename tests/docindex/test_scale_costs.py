"""Costs that matter at a million documents: no needless copies of the vectors, exact search in
bounded batches, search-time settings changed without a rebuild."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from keff.docindex.backends import Searcher, backend_spec
from keff.docindex.vectors import load_vectors, write_vectors
from keff.errors import KeffError
from keff.index import ExactIndex
from keff.index import exact as exact_module
from keff.index.exact import EXACT_BATCH_SCORES, exact_batch_size


def _peak(fn) -> tuple[object, int]:
    """``fn()``'s result and the peak bytes it allocated (numpy reports to tracemalloc)."""
    tracemalloc.start()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_exact_batches_hold_a_bounded_score_matrix():
    assert exact_batch_size(1_000) == 1024 and exact_batch_size(0) == 1024
    assert exact_batch_size(1_000_000) == EXACT_BATCH_SCORES // 1_000_000 >= 1
    assert exact_batch_size(10**12) == 1


def test_exact_searcher_neither_copies_the_vectors_nor_holds_every_score(monkeypatch, unit_vectors):
    vectors, queries = unit_vectors(20000, 32), unit_vectors(200, 32, seed=1)
    alive = np.ones(len(vectors), dtype=bool)
    searcher, built = _peak(lambda: Searcher(vectors, alive, backend_spec("exact")))
    assert built < vectors.nbytes / 2  # was a full copy; now the live rows and the finiteness check
    want = ExactIndex(vectors).search(queries, 10)
    (s, r), wide = _peak(lambda: searcher.search(queries, 10))
    monkeypatch.setattr(exact_module, "EXACT_BATCH_SCORES", 8 * len(vectors))  # 8 queries per product
    narrow_searcher = Searcher(vectors, alive, backend_spec("exact"))
    (s8, r8), narrow = _peak(lambda: narrow_searcher.search(queries, 10))
    np.testing.assert_array_equal(r, want[1])
    np.testing.assert_array_equal(r8, want[1])
    np.testing.assert_allclose(s8, want[0], rtol=1e-6)
    assert narrow < wide / 10


def test_exact_searcher_with_removed_rows_still_searches_only_live_ones(unit_vectors):
    vectors = unit_vectors(200, 8)
    alive = np.ones(200, dtype=bool)
    alive[::2] = False
    _, rows = Searcher(vectors, alive, backend_spec("exact")).search(vectors[:5], 10)
    assert (rows % 2 == 1).all()


def test_vector_segments_are_written_and_read_without_extra_copies(tmp_path, unit_vectors):
    vectors = unit_vectors(20000, 64)  # 5 MB
    entry, written = _peak(lambda: write_vectors(tmp_path, "enc", "g000001", vectors))
    assert written < vectors.nbytes / 2  # a buffered write held two copies (2x); now the hash's 1 MB chunks
    spec = {"segments": [entry], "dim": 64}
    loaded, read = _peak(lambda: load_vectors(tmp_path, "enc", spec, [20000]))
    np.testing.assert_array_equal(loaded, vectors)
    assert read < 1.5 * vectors.nbytes  # the array, and no concatenated second one


def test_tune_changes_search_time_settings_only(unit_vectors):
    pytest.importorskip("faiss", reason="needs keff[faiss]")
    import faiss

    vectors = unit_vectors(500, 16)
    manifest_backend = backend_spec("hnsw", {"M": 8, "ef_search": 16})
    ann = faiss.IndexHNSWFlat(16, 8, faiss.METRIC_INNER_PRODUCT)
    ann.add(vectors)
    searcher = Searcher(vectors, np.ones(500, dtype=bool), manifest_backend, ann)
    assert ann.hnsw.efSearch == 16
    searcher.tune(ef_search=64)
    assert ann.hnsw.efSearch == 64 and searcher.spec["ef_search"] == 64
    assert manifest_backend["ef_search"] == 16  # the committed state is untouched
    with pytest.raises(KeffError, match="no search-time parameter"):
        searcher.tune(M=16)
    with pytest.raises(KeffError, match="no search-time parameter"):
        Searcher(vectors, np.ones(500, dtype=bool), backend_spec("exact")).tune(nprobe=4)

"""Thread counts per operation: BLAS and OpenMP pools limited where more threads cost time.

keff leaves big batch work (a matrix product of many queries against a corpus, a map applied to
a corpus, an encoder's batches) to the libraries' default pools: one thread per core. Two kinds
of work run with one thread, because a second thread only adds hand-off and, on a busy machine,
waits for a core (measured here on 2 shared cores: a single-query product against 200,000 rows
took 20.6 ms with two OpenBLAS threads and 1.3-2.1 ms with one; 199 small SVDs took 1.4-24 s
with two against 0.30 s with one):

- single-query paths: a search of at most :data:`SMALL_BATCH` query rows (exact numpy search and
  FAISS search);
- loops of many small factorisations (the per-cluster maps of :class:`keff.maps.ClusterRouted`).

:func:`one_thread` limits the BLAS pools numpy uses (and, with ``openmp=True``, the OpenMP pools
FAISS uses) inside a ``with`` block and restores them after it; it costs a few microseconds.
Setting ``KEFF_THREADS=default`` turns the limits off (the libraries' own settings everywhere);
``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` still set the pools' sizes for batch work.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from functools import lru_cache

#: Query rows up to which a search counts as a single-query path (one thread).
SMALL_BATCH = 8


def limits_enabled() -> bool:
    """Whether keff limits threads per operation (``KEFF_THREADS`` is not ``default``)."""
    return os.environ.get("KEFF_THREADS", "").strip().lower() != "default"


@lru_cache(maxsize=8)
def _pools(api: str, loaded: frozenset[str]) -> tuple:
    """The library controllers of one threadpool API (``blas``, ``openmp``) loaded now; cached
    per set of loaded native extension owners (``loaded``: which of faiss/torch are imported)."""
    from threadpoolctl import ThreadpoolController

    return tuple(ThreadpoolController().select(user_api=api).lib_controllers)


def _loaded() -> frozenset[str]:
    import sys

    return frozenset(name for name in ("faiss", "torch", "onnxruntime") if name in sys.modules)


@contextmanager
def one_thread(*, openmp: bool = False) -> Iterator[None]:
    """Run the block with one BLAS thread (and one OpenMP thread with ``openmp``), then restore
    every pool's previous size. A no-op when limits are off (:func:`limits_enabled`)."""
    if not limits_enabled():
        yield
        return
    apis = ("blas", "openmp") if openmp else ("blas",)
    pools = [lib for api in apis for lib in _pools(api, _loaded())]
    before = [lib.get_num_threads() for lib in pools]
    for lib, n in zip(pools, before):
        if n != 1:
            lib.set_num_threads(1)
    try:
        yield
    finally:
        for lib, n in zip(pools, before):
            if n != 1:
                lib.set_num_threads(n)


def search_threads(n_rows: int, *, openmp: bool = False):
    """The thread setting of a search of ``n_rows`` query rows: :func:`one_thread` for a
    single-query path (at most :data:`SMALL_BATCH` rows), else the pools as they are."""
    return one_thread(openmp=openmp) if n_rows <= SMALL_BATCH else nullcontext()

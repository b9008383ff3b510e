"""The one timing harness: single-query latency percentiles, batched throughput, and interleaved
comparisons of several functions with paired ratios (:func:`compare_latency`). Every study times
with these."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import numpy as np

from keff.errors import KeffError


def _check_queries(queries: np.ndarray) -> np.ndarray:
    q = np.asarray(queries)
    if q.ndim != 2 or q.shape[0] == 0:
        raise KeffError(f"queries must be a non-empty 2-D array (nq, d); got shape {q.shape}")
    return q


def _check_count(value: int, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise KeffError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def measure_latency(
    fn: Callable[[np.ndarray], object],
    queries: np.ndarray,
    *,
    n: int = 200,
    warmup: int = 10,
    seed: int = 0,
) -> dict:
    """Time ``fn`` on single queries.

    Parameters
    ----------
    fn : callable
        Called as ``fn(q)`` with ``q`` of shape (1, d); its return value is ignored.
    queries : ndarray, shape (nq, d)
        Pool the timed queries are drawn from (uniformly, with replacement, seeded).
    n : int
        Timed calls.
    warmup : int
        Untimed calls made first (caches, lazy initialisation).
    seed : int
        Seed of the query draw.

    Returns
    -------
    dict
        ``{"n": int, "p50_us": float, "p95_us": float, "mean_us": float}``, microseconds per call
        measured with :func:`time.perf_counter_ns`.
    """
    q = _check_queries(queries)
    n = _check_count(n, "n", 1)
    warmup = _check_count(warmup, "warmup", 0)
    rows = np.random.default_rng(seed).integers(0, q.shape[0], size=warmup + n)
    for r in rows[:warmup]:
        fn(q[r : r + 1])
    elapsed = np.empty(n, dtype=np.float64)
    for i, r in enumerate(rows[warmup:]):
        single = q[r : r + 1]
        start = time.perf_counter_ns()
        fn(single)
        elapsed[i] = time.perf_counter_ns() - start
    elapsed /= 1000.0
    return {
        "n": n,
        "p50_us": float(np.percentile(elapsed, 50)),
        "p95_us": float(np.percentile(elapsed, 95)),
        "mean_us": float(elapsed.mean()),
    }


def measure_batch_throughput(
    fn: Callable[[np.ndarray], object],
    queries: np.ndarray,
    *,
    repeats: int = 5,
    warmup: int = 1,
) -> dict:
    """Time ``fn`` on the whole query batch, ``repeats`` times, and report the median.

    Parameters
    ----------
    fn : callable
        Called as ``fn(queries)``.
    queries : ndarray, shape (nq, d)
        The batch.
    repeats : int
        Timed calls; the median is reported.
    warmup : int
        Untimed calls made first.

    Returns
    -------
    dict
        ``{"n_queries": int, "median_total_ms": float, "per_query_us": float,
        "queries_per_s": float}``.
    """
    q = _check_queries(queries)
    repeats = _check_count(repeats, "repeats", 1)
    for _ in range(_check_count(warmup, "warmup", 0)):
        fn(q)
    totals = np.empty(repeats, dtype=np.float64)
    for i in range(repeats):
        start = time.perf_counter_ns()
        fn(q)
        totals[i] = time.perf_counter_ns() - start
    median_ns = max(float(np.median(totals)), 1.0)  # a clock tick, never a division by zero
    nq = q.shape[0]
    return {
        "n_queries": nq,
        "median_total_ms": median_ns / 1e6,
        "per_query_us": median_ns / 1e3 / nq,
        "queries_per_s": nq / (median_ns / 1e9),
    }


def compare_latency(
    fns: Mapping[str, Callable[[slice], object]],
    n: int,
    *,
    baseline: str,
    repeats: int = 31,
    single: int = 200,
    warmup: int = 1,
) -> dict:
    """Time several functions of one batch against each other, interleaved, in one run.

    Each function takes a slice of the batch's rows (``fn(slice(None))`` is the whole batch,
    ``fn(slice(j, j + 1))`` one query) and slices its own inputs, so any data layout works. The
    functions are called in turn within every repeat, so load that drifts during the run on a
    shared machine hits them alike; each call's time is divided by the ``baseline`` call just
    before it, and the median of those paired ratios is reported.

    Parameters
    ----------
    fns : mapping of str to callable
        The functions by name; ``baseline`` must be one of them.
    n : int
        Rows in the batch (single queries cycle through them).
    baseline : str
        The function the others are compared with (e.g. the plain matrix product).
    repeats : int
        Timed whole-batch calls of each function.
    single : int
        Timed single-query calls of each function.
    warmup : int
        Untimed whole-batch calls of each function first.

    Returns
    -------
    dict
        ``{"batch_us": {name: median us per query in batch}, "single_us": {name: median us of
        one query}, "batch_ratio": {name: median paired ratio to baseline}, "single_ratio":
        {...}, "n": n, "repeats": repeats, "single": single}``.
    """
    if baseline not in fns:
        raise KeffError(f"baseline {baseline!r} is not among the timed functions {list(fns)}")
    n = _check_count(n, "n", 1)
    repeats, single = _check_count(repeats, "repeats", 1), _check_count(single, "single", 0)
    order = [baseline, *(k for k in fns if k != baseline)]
    for _ in range(_check_count(warmup, "warmup", 0)):
        for name in order:
            fns[name](slice(None))

    def timed(rows: slice) -> dict[str, float]:
        out = {}
        for name in order:
            start = time.perf_counter_ns()
            fns[name](rows)
            out[name] = float(time.perf_counter_ns() - start)
        return out

    batch = [timed(slice(None)) for _ in range(repeats)]
    one = [timed(slice(i % n, i % n + 1)) for i in range(single)]

    def summary(runs: list[dict[str, float]], per: int) -> tuple[dict, dict]:
        if not runs:
            return {}, {}
        us = {k: float(np.median([r[k] for r in runs])) / 1e3 / per for k in order}
        ratio = {k: float(np.median([r[k] / max(r[baseline], 1.0) for r in runs])) for k in order}
        return us, ratio

    batch_us, batch_ratio = summary(batch, n)
    single_us, single_ratio = summary(one, 1)
    return {
        "batch_us": batch_us,
        "single_us": single_us,
        "batch_ratio": batch_ratio,
        "single_ratio": single_ratio,
        "n": n,
        "repeats": repeats,
        "single": single,
    }

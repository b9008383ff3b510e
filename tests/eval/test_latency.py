import time

import numpy as np
import pytest

from keff.errors import KeffError
from keff.eval.latency import compare_latency, measure_batch_throughput, measure_latency


def test_measure_latency_calls_single_queries():
    queries = np.arange(40, dtype=np.float32).reshape(10, 4)
    seen = []
    out = measure_latency(lambda q: seen.append(q.copy()), queries, n=25, warmup=5, seed=1)
    assert len(seen) == 30
    assert all(q.shape == (1, 4) for q in seen)
    assert all(any(np.array_equal(q[0], row) for row in queries) for q in seen)
    assert set(out) == {"n", "p50_us", "p95_us", "mean_us"} and out["n"] == 25
    assert 0 < out["p50_us"] <= out["p95_us"]


def test_measure_latency_measures_time():
    out = measure_latency(lambda q: time.sleep(0.002), np.zeros((3, 2), dtype=np.float32), n=5, warmup=0)
    assert out["p50_us"] >= 2000
    assert out["mean_us"] >= 2000


def test_measure_latency_is_seeded():
    queries = np.arange(20, dtype=np.float32).reshape(20, 1)
    draws = []
    for _ in range(2):
        seen = []
        measure_latency(lambda q, seen=seen: seen.append(float(q[0, 0])), queries, n=10, warmup=0, seed=5)
        draws.append(seen)
    assert draws[0] == draws[1]


def test_measure_batch_throughput():
    queries = np.zeros((50, 3), dtype=np.float32)
    shapes = []

    def fn(q):
        shapes.append(q.shape)
        time.sleep(0.001)

    out = measure_batch_throughput(fn, queries, repeats=3)
    assert shapes == [(50, 3)] * 4  # one warm-up call, then three timed
    assert set(out) == {"n_queries", "median_total_ms", "per_query_us", "queries_per_s"}
    assert out["n_queries"] == 50 and out["median_total_ms"] >= 1.0
    assert out["per_query_us"] == pytest.approx(out["median_total_ms"] * 1000 / 50)
    assert out["queries_per_s"] == pytest.approx(1e6 / out["per_query_us"])


def test_bad_arguments():
    with pytest.raises(KeffError, match="2-D"):
        measure_latency(lambda q: None, np.zeros(4), n=2)
    with pytest.raises(KeffError, match="n must be"):
        measure_latency(lambda q: None, np.zeros((2, 4)), n=0)
    with pytest.raises(KeffError, match="repeats"):
        measure_batch_throughput(lambda q: None, np.zeros((2, 4)), repeats=0)


def test_compare_latency_interleaves_and_pairs_ratios():
    calls = []
    rows = np.arange(10)

    def slow(s):
        calls.append(("slow", rows[s].tolist()))
        time.sleep(0.002 * len(rows[s]) / 10 + 0.0005)

    def fast(s):
        calls.append(("fast", rows[s].tolist()))

    out = compare_latency({"fast": fast, "slow": slow}, 10, baseline="fast", repeats=3, single=4, warmup=1)
    assert [c[0] for c in calls[:4]] == ["fast", "slow", "fast", "slow"]  # baseline first, in turn
    assert calls[-1] == ("slow", [3])  # single queries cycle through the rows
    assert out["batch_ratio"]["fast"] == 1.0 and out["batch_ratio"]["slow"] > 1.0
    assert out["single_us"]["slow"] > out["single_us"]["fast"]
    assert set(out["batch_us"]) == {"fast", "slow"} and out["n"] == 10


def test_compare_latency_needs_its_baseline():
    with pytest.raises(KeffError, match="baseline 'x' is not among"):
        compare_latency({"a": lambda s: None}, 3, baseline="x")

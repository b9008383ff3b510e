"""The performance study's search, thread and command-line timings, on tiny inputs (seconds)."""

from __future__ import annotations

import numpy as np
import pytest

from keff.cli.demo_cmd import sample_corpus_dir
from keff.studies.perf import cli, search

from .conftest import load_script


@pytest.fixture(scope="module")
def tiny_search():
    return {
        "batch_topk": search.batch_topk(n=3000, d=16, n_queries=40, k=10, repeats=1),
        "single_query": search.single_query(n=3000, d=16, n_queries=20, k=5),
    }


def test_batch_and_single_query_figures_are_ratios_of_their_medians(tiny_search):
    b, q = tiny_search["batch_topk"], tiny_search["single_query"]
    sec = b["seconds"]
    assert b["topk_vs_argpartition"] == pytest.approx(sec["keff_topk_block"] / sec["argpartition_block"])
    assert b["keff_peak_bytes"] > 3000 * 40 * 4  # at least the score block of the batch
    if b["keff_vs_faiss"] is not None:
        assert b["agreement_top10_with_faiss"] == 1.0  # random floats: no ties, same neighbours
    qs = q["seconds_per_query"]
    assert q["gemm_default_vs_one_thread"] == pytest.approx(qs["gemm_default_threads"] / qs["gemm_one_thread"])
    assert all(v > 0 for v in qs.values())


def test_unit_rows_are_seeded_unit_vectors():
    a, b = search.unit_rows(5, 8, seed=3), search.unit_rows(5, 8, seed=3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1, rtol=1e-6)


def test_warm_eval_of_a_hash_encoder_imports_no_model(tmp_path):
    w = cli.warm_eval(sample_corpus_dir(), encoder="hash", repeats=1, cache=tmp_path / "cache")
    assert w["warm_imports"] == [] and w["warm_seconds"] > 0 and w["cold_seconds"] > 0


def test_startup_times_keff_with_and_without_a_bytecode_cache():
    st = cli.startup(repeats=1)
    assert set(st["seconds"]) == set(st["seconds_as_is"]) == {"python", "keff_help", "keff_eval_help"}
    assert st["seconds"]["keff_help"] > st["seconds"]["python"]


def test_a_failing_command_is_reported_with_its_last_line():
    with pytest.raises(RuntimeError, match="nope exited 2"):
        cli.timed({"nope": cli.keff_argv("no-such-command")}, repeats=1)


def test_render_reads_every_part(tiny_search):
    secs = {"python": 0.02, "keff_help": 0.15, "keff_eval_help": 0.18}
    startup = {"repeats": 1, "seconds": secs, "seconds_as_is": secs}
    warm = {"encoder": "hash", "repeats": 1, "cold_seconds": 2.0, "warm_seconds": 1.2, "warm_imports": []}
    threads = {"cluster_fit": {"n": 100, "n_clusters": 4, "seconds": {"one_thread": 1.0, "default_threads": 2.0},
                               "one_thread_vs_default": 0.5}}  # fmt: skip
    metrics = {"evaluate_run": {"n_queries": 3, "metrics": ["ndcg@10"], "evaluate_run_s": 0.012,
                                "pytrec_eval_s": 0.01, "ratio": 1.2, "paired_ratio": 1.19}}  # fmt: skip
    int8 = {"int8": {"n_docs_timed": 8, "int8_docs_per_s": 30.0, "fp32_docs_per_s": 20.0, "speedup": 1.5,
                     "ndcg_int8": 0.64, "ndcg_fp32": 0.645, "ndcg_diff": -0.005,
                     "int8_ops": {"MatMulInteger": 48}}}  # fmt: skip
    res = {"benchmark": "perf", "meta": {"timestamp_utc": "now"},
           "parts": {"search": tiny_search, "threads": threads, "metrics": metrics,
                     "cli": {"startup": startup, "warm_eval": warm}, "encoders": int8}}  # fmt: skip
    text = load_script("render").render_perf(res)
    assert "Metrics within 1.3x pytrec_eval: 1.20 (met)" in text
    assert "`keff --help` under 0.2 s: 0.150 s (met)" in text
    assert "nDCG@10 within 0.005: 1.50x, -0.0050 (met)" in text
    with_faiss = tiny_search["batch_topk"]["keff_vs_faiss"] is not None
    assert text.count("(met)") + text.count("(missed)") == (7 if with_faiss else 5)

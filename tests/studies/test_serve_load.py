"""The serve load test: a tiny bounded run against a real ``keff serve`` subprocess, its rendering,
the /metrics arithmetic, and the refusal of any target that is not loopback."""

from __future__ import annotations

import asyncio
import os
import shutil

import pytest

from keff.cli.demo_cmd import sample_corpus_dir
from keff.errors import KeffError
from keff.studies.serve_load import (
    QueryTexts,
    ServeLoadConfig,
    batch_histogram,
    check_loopback,
    closed_loop,
    parse_metrics,
    plot_soak,
    requests_by_status,
    run,
)

from .conftest import load_script

pytest.importorskip("fastapi", reason="keff serve needs the serve extra: pip install 'keff[serve]'")
pytest.importorskip("uvicorn", reason="keff serve needs the serve extra: pip install 'keff[serve]'")
pytest.importorskip("httpx", reason="the load test's client needs httpx: pip install 'keff[serve]'")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KEFF_CACHE_DIR", str(tmp_path / "cache"))


def test_a_tiny_run_has_no_errors_counts_what_the_server_counts_and_renders(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(sample_corpus_dir(), data / "beir" / "toy")
    config = ServeLoadConfig(dataset="toy", encoder="hash", levels=(1, 8), seconds=1.5, warmup_seconds=0.3,
                             soak_seconds=2.0, soak_concurrency=4, sample_seconds=0.5, seed_vectors=False,
                             workdir=tmp_path / "work")  # fmt: skip
    res = run(config, data=data)

    assert [lv["concurrency"] for lv in res["levels"]] == [1, 8]
    for phase in [*res["levels"], res["soak"]]:
        assert phase["requests"] > 0 and phase["errors"] == 0 and phase["error_rate"] == 0
        assert phase["p50_ms"] <= phase["p95_ms"] <= phase["p99_ms"]
        # the server's own count of POST /search during the measured phase is the client's
        assert phase["server"]["search_requests_by_status"] == {"200": phase["requests"]}
        assert sum(phase["server"]["batch_size"]["buckets"].values()) == phase["server"]["batch_size"]["calls"] > 0
    assert res["done"]["zero_errors"] and res["done"]["p95_reported"]
    assert res["done"]["speedup_32_vs_1"] is None  # no level of 32 clients in this run
    # every text was new: the server encoded (and cached) each one
    q = res["queries"]
    assert (
        q["texts_sent"] > sum(lv["requests"] for lv in res["levels"]) and q["cache_entries_written"] == q["texts_sent"]
    )
    soak = res["soak"]
    assert len(soak["samples"]) >= 4 and all(s["rss_bytes"] > 0 for s in soak["samples"])
    assert soak["rss_start_bytes"] == soak["samples"][0]["rss_bytes"] and soak["rss_max_bytes"] >= soak["rss_end_bytes"]
    with pytest.raises(ProcessLookupError):  # the server was stopped and reaped
        os.kill(res["server"]["pid"], 0)

    png = plot_soak(res, tmp_path / "serve_load.png")
    assert png is not None and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res["plot"] = png.name
    text = load_script("render").render_serve_load(res)
    assert (
        "## Search service under load" in text
        and "| 8 |" in text
        and "- 8 clients: <=" in text
        and "### Soak: 4 clients" in text
    )


def test_targets_other_than_loopback_are_refused_before_any_request():
    for ok in ("127.0.0.1", "::1", "localhost", "http://127.0.0.1:8077", "http://[::1]:9000/"):
        assert check_loopback(ok) == ok
    for bad in ("10.0.0.7", "0.0.0.0", "example.org", "http://192.0.2.1:8077", "http://example.org/"):
        with pytest.raises(KeffError, match="only loopback"):
            check_loopback(bad)
    with pytest.raises(KeffError, match="only loopback"):
        ServeLoadConfig(host="192.0.2.1")
    with pytest.raises(KeffError, match="only loopback"):  # the client itself checks its target
        asyncio.run(closed_loop(None, "http://192.0.2.1:8077", 1, 1.0, 1, QueryTexts(["q"]), per_request=1, k=1))


def test_query_texts_never_repeat_and_are_deterministic():
    a, b = QueryTexts(["one", "two", " "]), QueryTexts(["one", "two"])
    got = a.take(5) + a.take(3)
    assert got == b.take(8) and len(set(got)) == 8 and a.sent == 8
    assert got[:3] == ["one (variant 1)", "two (variant 1)", "one (variant 2)"]


def test_batch_histogram_is_the_difference_of_two_readings():
    def reading(counts: dict[str, int], total: float, statuses: dict[str, int]) -> dict:
        lines = [f'keff_encoder_batch_size_bucket{{encoder="e",le="{le}"}} {n}' for le, n in counts.items()]
        n = counts["+Inf"]
        lines += [
            f'keff_encoder_batch_size_sum{{encoder="e"}} {total}',
            f'keff_encoder_batch_size_count{{encoder="e"}} {n}',
        ]
        lines += [
            f'keff_requests_total{{endpoint="/search",method="POST",status="{s}"}} {v}' for s, v in statuses.items()
        ]
        return parse_metrics("# HELP x\n" + "\n".join(lines) + "\n")

    before = reading({"1": 2, "2": 2, "4": 3, "+Inf": 3}, 6.0, {"200": 5})
    after = reading({"1": 3, "2": 3, "4": 6, "+Inf": 7}, 25.0, {"200": 30, "422": 1})
    hist = batch_histogram(before, after)
    assert hist == {"calls": 4, "mean": 19.0 / 4, "buckets": {"1": 1, "4": 2, "+Inf": 1}}
    assert requests_by_status(before, after) == {"200": 25, "422": 1}

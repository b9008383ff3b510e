"""Progress off a terminal prints plain lines; the ETA follows cost, not item count."""

from __future__ import annotations

import numpy as np

from keff.encoders.base import encode_in_batches, estimate_tokens
from keff.progress import _Bar, format_duration, progress_bar


def test_plain_lines_when_stderr_is_not_a_terminal(monkeypatch, capsys):
    monkeypatch.setenv("KEFF_PROGRESS_INTERVAL", "0")
    with progress_bar("encoding with x", 4, unit="texts") as bar:
        for _ in range(4):
            bar.advance(1)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 5  # one per step and one at the end
    assert lines[1].startswith("encoding with x: 2/4 texts (50%)")
    assert "texts/s" in lines[1] and "elapsed 0:00:00" in lines[1] and "ETA" in lines[1]
    assert "ETA" not in lines[-1]  # done: nothing left to estimate


def test_short_work_stays_quiet_off_a_terminal(monkeypatch, capsys):
    monkeypatch.setenv("KEFF_PROGRESS_INTERVAL", "30")
    with progress_bar("quick", 3) as bar:
        bar.advance(3)
    assert capsys.readouterr().err == ""


def test_disabled_is_silent(monkeypatch, capsys):
    monkeypatch.setenv("KEFF_PROGRESS_INTERVAL", "0")
    with progress_bar("quiet", 2, enabled=False) as bar:
        bar.advance(2)
    assert capsys.readouterr().err == ""


def test_eta_follows_cost_not_items(monkeypatch):
    clock = iter([0.0, 10.0])
    monkeypatch.setattr("keff.progress.time.monotonic", lambda: next(clock))
    bar = _Bar("x", 100, "texts", cost_total=1000.0)
    # the first 10 texts were the longest: half the cost in 10 seconds
    bar.advance(10, cost=500.0)
    assert bar.eta_seconds() == 10.0  # by item count it would have said 90 s


def test_encoding_advances_by_estimated_tokens(monkeypatch):
    seen = []
    monkeypatch.setattr(_Bar, "advance", lambda self, n=1, *, cost=None: seen.append((n, cost)))
    texts = ["a" * 400, "b" * 40, "c"]
    encode_in_batches(lambda b: np.ones((len(b), 2)), texts, 2, batch_size=1, description="t", max_tokens=64)
    assert seen == [(1, 64.0), (1, 12.0), (1, 2.0)]  # longest first, capped at the model's limit


def test_estimate_and_duration_helpers():
    assert estimate_tokens(["abcd" * 10, ""]).tolist() == [12, 2]
    assert format_duration(3725) == "1:02:05"

"""Counters, gauges and histograms of the search service, written in Prometheus' text format.

A small registry of its own (no client library): ``GET /metrics`` renders
:meth:`Metrics.render` (text exposition format 0.0.4). Every update happens on the event loop's
thread or under the registry's lock, so the numbers are consistent.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

#: Request latency buckets, in seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Encoder batch-size buckets, in texts per encoder call.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)

Labels = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Labels, extra: tuple[tuple[str, str], ...] = ()) -> str:
    items = [*labels, *extra]
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in items) + "}" if items else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class _Family:
    def __init__(self, name: str, help_: str, kind: str) -> None:
        self.name, self.help, self.kind = name, help_, kind

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]


class Counter(_Family):
    """A monotone count per label set."""

    def __init__(self, name: str, help_: str) -> None:
        super().__init__(name, help_, "counter")
        self.values: dict[Labels, float] = {}

    def inc(self, labels: Labels = (), amount: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def get(self, labels: Labels = ()) -> float:
        return self.values.get(labels, 0.0)

    def lines(self) -> list[str]:
        return [f"{self.name}{_labels(k)} {_number(v)}" for k, v in sorted(self.values.items())]


class Gauge(Counter):
    """A value that goes up and down."""

    def __init__(self, name: str, help_: str) -> None:
        super().__init__(name, help_)
        self.kind = "gauge"

    def set(self, value: float, labels: Labels = ()) -> None:
        self.values[labels] = float(value)


class Histogram(_Family):
    """Counts of observations at or below each bucket's upper bound, their sum and count."""

    def __init__(self, name: str, help_: str, buckets: Sequence[float]) -> None:
        super().__init__(name, help_, "histogram")
        self.buckets = tuple(sorted(buckets))
        self.series: dict[Labels, list[float]] = {}  # bucket counts..., sum, count

    def observe(self, value: float, labels: Labels = ()) -> None:
        row = self.series.setdefault(labels, [0.0] * (len(self.buckets) + 2))
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                row[i] += 1
        row[-2] += value
        row[-1] += 1

    def count(self, labels: Labels = ()) -> int:
        return int(self.series.get(labels, [0.0])[-1])

    def total(self, labels: Labels = ()) -> float:
        row = self.series.get(labels)
        return row[-2] if row else 0.0

    def lines(self) -> list[str]:
        out = []
        for labels, row in sorted(self.series.items()):
            for bound, n in zip(self.buckets, row):
                out.append(f"{self.name}_bucket{_labels(labels, (('le', _number(bound)),))} {_number(n)}")
            out.append(f"{self.name}_bucket{_labels(labels, (('le', '+Inf'),))} {_number(row[-1])}")
            out.append(f"{self.name}_sum{_labels(labels)} {_number(row[-2])}")
            out.append(f"{self.name}_count{_labels(labels)} {_number(row[-1])}")
        return out


class Metrics:
    """Everything ``GET /metrics`` reports.

    Attributes
    ----------
    requests : Counter
        ``keff_requests_total{endpoint, method, status}``.
    latency : Histogram
        ``keff_request_duration_seconds{endpoint}``.
    batch_size : Histogram
        ``keff_encoder_batch_size{encoder}``: texts per encoder call (micro-batching).
    batch_requests : Histogram
        ``keff_encoder_batch_requests{encoder}``: requests served by one encoder call.
    encode_seconds : Histogram
        ``keff_encoder_duration_seconds{encoder}``.
    reloads, reload_failures : Counter
        Index reloads after a newer commit, and failed attempts.
    generation, documents : Gauge
        The served index's manifest generation and live documents.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = Counter("keff_requests_total", "HTTP requests by endpoint, method and status code.")
        self.latency = Histogram(
            "keff_request_duration_seconds", "Time from request to the end of the response.", LATENCY_BUCKETS
        )
        self.batch_size = Histogram("keff_encoder_batch_size", "Texts per encoder call.", BATCH_BUCKETS)
        self.batch_requests = Histogram(
            "keff_encoder_batch_requests", "Requests whose texts one encoder call encoded.", BATCH_BUCKETS
        )
        self.encode_seconds = Histogram("keff_encoder_duration_seconds", "Time of one encoder call.", LATENCY_BUCKETS)
        self.reloads = Counter(
            "keff_index_reloads_total", "Times a newer commit of the index was opened and swapped in."
        )
        self.reload_failures = Counter(
            "keff_index_reload_failures_total", "Newer commits that could not be opened (the old state kept serving)."
        )
        self.generation = Gauge("keff_index_generation", "Manifest generation of the index being served.")
        self.documents = Gauge("keff_index_documents", "Live documents of the index being served.")

    def families(self) -> list[_Family]:
        return [self.requests, self.latency, self.batch_size, self.batch_requests, self.encode_seconds,
                self.reloads, self.reload_failures, self.generation, self.documents]  # fmt: skip

    def render(self) -> str:
        """The text exposition of every family."""
        with self.lock:
            lines = []
            for fam in self.families():
                lines += fam.header() + fam.lines()
        return "\n".join(lines) + "\n"


#: Content type of :meth:`Metrics.render`.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

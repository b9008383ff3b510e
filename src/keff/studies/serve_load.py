"""Load test of the search service: ``keff serve`` under closed-loop clients on 127.0.0.1, then a soak.

An index of a BEIR corpus is built with one encoder (SciFact and minilm by default; keff's cache
is seeded from the shipped vectors, so nothing is re-encoded) in an isolated ``KEFF_CACHE_DIR``,
and ``keff serve`` runs over it as a subprocess on 127.0.0.1 and a port it picks. Then:

- **levels**: for each concurrency ``C`` (1, 8, 32, 64 by default), ``C`` workers send
  ``POST /search`` in a closed loop (the next request as soon as the last one answered) for a
  short warm-up, then for ``seconds`` or ``max_requests`` requests, whichever ends first.
  Per request: latency and status (a request is an error unless it is 200 with one result of
  ``k`` hits per query). Per level: throughput (requests/s and queries/s), latency p50/p95/p99,
  errors, and the server's own ``/metrics`` read before and after, whose encoder batch-size
  histogram shows how many texts each encoder call took (micro-batching at work).
- **soak**: ``soak_concurrency`` workers for ``soak_seconds``; every ``sample_seconds`` the
  server process's resident memory (psutil if installed, else ``/proc/PID/status``) and the
  interval's throughput, errors and p95.

Every query text is sent once in a run (the dataset's queries, all splits, each with a
deterministic ``(variant n)`` suffix, ``n`` >= 1), so none is in the embedding cache (the
seeded vectors cover the plain queries only) and the server really encodes every query; the
growth of the cache folder is reported as the check. The service has no switch to turn its query
cache off, so it also writes one cache entry per query, as it would in production.

Only loopback targets are accepted (:func:`check_loopback`). The server is stopped at the end,
on errors too, and dies with this process (``PR_SET_PDEATHSIG`` on Linux).
``benchmarks/serve_load.py`` is the driver; ``benchmarks/render.py`` renders the results.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from keff.errors import DataError, KeffError, require
from keff.serve.config import is_loopback
from keff.studies.common import log

#: Mean texts per encoder call at 32 clients from which the requests count as micro-batched.
BATCHED = 2.0
#: The line ``keff serve`` prints once it listens (its URL and the port it bound).
_URL_LINE = re.compile(r"keff serve: (http://\S+?):(\d+)/")


@dataclass(frozen=True)
class ServeLoadConfig:
    """What the load test runs.

    Attributes
    ----------
    dataset : str
        BEIR folder ``beir/<dataset>`` of the shared data: its corpus is indexed, its queries
        (all splits) are the query texts.
    encoder : str
        The index's one encoder.
    levels : tuple of int
        Concurrency levels (closed-loop clients), in order.
    seconds : float
        Measured time per level (after the warm-up).
    warmup_seconds : float
        Warm-up per level at the same concurrency (not measured).
    max_requests : int
        Most measured requests per level (bounds the run even if the server is very fast).
    queries_per_request, k : int
        Query texts per ``POST /search`` and hits per query.
    soak_seconds : float
        Length of the soak (0: no soak).
    soak_concurrency : int
        Clients during the soak.
    sample_seconds : float
        Interval of the soak's memory and throughput samples.
    batch_window_ms : float
        The server's micro-batching window (``keff serve --batch-window-ms``).
    max_batch : int
        Texts that close a micro-batch (``--max-batch``).
    host : str
        Address the server binds and the clients target; loopback only.
    request_timeout : float
        Seconds a request may take before it counts as an error.
    startup_timeout : float
        Seconds to wait for ``/health`` after starting the server.
    server_threads : int, optional
        ``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` of the server (the model's intra-op
        threads); default: not set (the service as shipped).
    seed_vectors : bool
        Seed the isolated cache from shipped vectors (``embeddings/<dataset>/<encoder>``) before
        building the index (checked on a probe sample), so the build encodes nothing.
    workdir : Path, optional
        Where the cache, index and server log go (default: a temporary folder, removed after).
    """

    dataset: str = "scifact"
    encoder: str = "minilm"
    levels: tuple[int, ...] = (1, 8, 32, 64)
    seconds: float = 25.0
    warmup_seconds: float = 3.0
    max_requests: int = 50_000
    queries_per_request: int = 1
    k: int = 10
    soak_seconds: float = 600.0
    soak_concurrency: int = 8
    sample_seconds: float = 10.0
    batch_window_ms: float = 3.0
    max_batch: int = 64
    host: str = "127.0.0.1"
    request_timeout: float = 60.0
    startup_timeout: float = 300.0
    server_threads: int | None = None
    seed_vectors: bool = True
    workdir: Path | None = field(default=None)

    def __post_init__(self) -> None:
        check_loopback(self.host)
        if not self.levels or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in self.levels):
            raise KeffError(f"levels must be concurrencies >= 1; got {self.levels!r}")
        for name in ("seconds", "sample_seconds"):
            if not getattr(self, name) > 0:
                raise KeffError(f"{name} must be > 0; got {getattr(self, name)!r}")
        for name in ("warmup_seconds", "soak_seconds"):
            if not getattr(self, name) >= 0:
                raise KeffError(f"{name} must be >= 0; got {getattr(self, name)!r}")
        if self.server_threads is not None and self.server_threads < 1:
            raise KeffError(f"server_threads must be >= 1; got {self.server_threads!r}")
        for name in ("max_requests", "queries_per_request", "k", "soak_concurrency", "max_batch"):
            if not getattr(self, name) >= 1:
                raise KeffError(f"{name} must be >= 1; got {getattr(self, name)!r}")


def check_loopback(target: str) -> str:
    """``target`` (a host or an ``http://`` URL) if it is loopback; else a :class:`KeffError`.

    The load test sends thousands of requests a second; it never aims them at another machine.
    """
    host = urlsplit(target).hostname if "://" in target else target
    if not host or not is_loopback(host):
        raise KeffError(
            f"refusing to load-test {target!r}: only loopback targets (127.0.0.1, ::1, localhost) are allowed"
        )
    return target


# -- query texts ------------------------------------------------------------------------------


class QueryTexts:
    """Query texts that never repeat within a run: ``"<query> (variant n)"``, n = 1, 2, ...

    The i-th text is ``base[i % len(base)]`` with variant ``i // len(base) + 1`` (deterministic);
    ``base`` is stripped and deduplicated first.
    """

    def __init__(self, base: list[str]) -> None:
        self.base = list(dict.fromkeys(t.strip() for t in base if t.strip()))  # a dataset may repeat a text
        if not self.base:
            raise DataError("no query texts to send")
        self.sent = 0

    def take(self, n: int) -> list[str]:
        out = []
        for _ in range(n):
            i = self.sent
            out.append(f"{self.base[i % len(self.base)]} (variant {i // len(self.base) + 1})")
            self.sent += 1
        return out


# -- the server -------------------------------------------------------------------------------


def _die_with_parent():
    """A ``preexec_fn`` asking Linux to SIGTERM the server when the thread that started it ends
    (the main thread here: no orphan server if the run is killed); None elsewhere.

    ``prctl`` is looked up here, in the parent, so the child between fork and exec only calls it.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def preexec() -> None:  # pragma: no cover - runs in the child
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    return preexec


@dataclass
class ServerProcess:
    """A ``keff serve`` subprocess: its pid, URL, log file and command."""

    proc: subprocess.Popen
    url: str
    log: Path
    command: list[str]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def serve_command(index: Path, config: ServeLoadConfig) -> list[str]:
    """The command line of the server under test (this interpreter's keff CLI, port 0)."""
    launcher = "import sys; from keff.cli import main; sys.argv[0] = 'keff'; sys.exit(main())"
    return [sys.executable, "-c", launcher, "serve", str(index), "--host", config.host, "--port", "0",
            "--batch-window-ms", str(config.batch_window_ms), "--max-batch", str(config.max_batch),
            "--max-queries", str(max(64, config.queries_per_request)), "--log-level", "warning"]  # fmt: skip


@contextlib.contextmanager
def running_server(
    index: Path, config: ServeLoadConfig, env: dict[str, str], log_path: Path
) -> Iterator[ServerProcess]:
    """Start ``keff serve`` on ``index``, wait for ``/health``, yield it, and always stop it.

    Raises
    ------
    KeffError
        The server exited or did not answer ``/health`` within ``startup_timeout`` (the message
        holds the end of its log).
    """
    httpx = require("httpx", "serve")
    command = serve_command(index, config)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                preexec_fn=_die_with_parent())  # fmt: skip
    server = ServerProcess(proc, "", log_path, command)
    try:
        deadline = time.monotonic() + config.startup_timeout
        while not server.url:
            found = _URL_LINE.search(log_path.read_text(errors="replace"))
            if found:
                server.url = check_loopback(f"{found.group(1)}:{found.group(2)}")
            elif proc.poll() is not None:
                raise KeffError(
                    f"keff serve exited with status {proc.returncode} before listening:\n{server.log_tail()}"
                )
            elif time.monotonic() > deadline:
                raise KeffError(
                    f"keff serve did not listen within {config.startup_timeout:.0f} s:\n{server.log_tail()}"
                )
            else:
                time.sleep(0.2)
        while True:
            try:
                if httpx.get(server.url + "/health", timeout=5.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise KeffError(f"keff serve did not answer {server.url}/health:\n{server.log_tail()}")
            time.sleep(0.2)
        yield server
    finally:
        stop_server(proc)


def stop_server(proc: subprocess.Popen, grace: float = 20.0) -> int | None:
    """SIGTERM (uvicorn's graceful shutdown), then SIGKILL after ``grace`` seconds; the exit status."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode


def rss_bytes(pid: int) -> int:
    """Resident memory of process ``pid``, in bytes (psutil if installed, else ``/proc/PID/status``)."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        return int(psutil.Process(pid).memory_info().rss)
    status = Path(f"/proc/{pid}/status")
    try:
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError as exc:
        raise KeffError(f"{status}: cannot read the server's memory ({exc.strerror or exc})") from None
    raise KeffError(f"{status}: no VmRSS line (not Linux? install psutil)")


def rss_source() -> str:
    try:
        import psutil  # noqa: F401
    except ImportError:
        return "/proc/PID/status VmRSS"
    return "psutil"


# -- /metrics ---------------------------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus text -> ``{(name, sorted labels): value}``."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line.strip())
        if m:
            labels = tuple(sorted(_LABEL.findall(m.group(2) or "")))
            out[(m.group(1), labels)] = float(m.group(3))
    return out


def batch_histogram(
    before: dict, after: dict, family: str = "keff_encoder_batch_size", where: dict[str, str] | None = None
) -> dict[str, Any]:
    """What ``family`` (a histogram) observed between two :func:`parse_metrics` readings.

    Returns the number of observations (``calls``: encoder calls for the encoder families), their
    mean, and the observations per bucket (``le`` bound -> observations in (previous bound,
    bound]), summed over the series whose labels include ``where`` (default: all series).
    """
    cum: dict[float, float] = {}
    total = count = 0.0
    for (name, labels), value in after.items():
        if where and any(dict(labels).get(k) != v for k, v in where.items()):
            continue
        delta = value - before.get((name, labels), 0.0)
        if name == f"{family}_bucket":
            le = dict(labels)["le"]
            bound = float("inf") if le == "+Inf" else float(le)
            cum[bound] = cum.get(bound, 0.0) + delta
        elif name == f"{family}_sum":
            total += delta
        elif name == f"{family}_count":
            count += delta
    buckets, prev = {}, 0.0
    for bound in sorted(cum):
        n = cum[bound] - prev
        prev = cum[bound]
        if n:
            buckets["+Inf" if bound == float("inf") else f"{bound:g}"] = int(round(n))
    return {"calls": int(round(count)), "mean": total / count if count else None, "buckets": buckets}


def requests_by_status(before: dict, after: dict) -> dict[str, int]:
    """``POST /search`` requests the server counted between two readings, by status code."""
    out: dict[str, int] = {}
    for (name, labels), value in after.items():
        lab = dict(labels)
        if name == "keff_requests_total" and lab.get("endpoint") == "/search" and lab.get("method") == "POST":
            n = int(round(value - before.get((name, labels), 0.0)))
            if n:
                out[lab.get("status", "?")] = out.get(lab.get("status", "?"), 0) + n
    return out


# -- the closed-loop client -------------------------------------------------------------------


@dataclass
class Record:
    """One request: when it started (s from the phase's start), its latency (s) and outcome."""

    start: float
    latency: float
    status: int
    error: str = ""


def _check_body(body: Any, n: int, k: int) -> str:
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list) or len(results) != n:
        return f"expected {n} results"
    if any(not isinstance(r, dict) or len(r.get("hits") or []) != k for r in results):
        return f"expected {k} hits per query"
    return ""


async def closed_loop(
    client: Any, url: str, concurrency: int, seconds: float, max_requests: int, texts: QueryTexts, *, per_request: int,
    k: int, on_record: Any = None,
) -> tuple[list[Record], float]:  # fmt: skip
    """``concurrency`` workers posting ``/search`` back to back for ``seconds`` or ``max_requests``.

    Returns the records and the phase's wall time (from the first request sent to the last
    answer). A request that fails, times out or answers anything but 200 with the expected
    results is recorded with its error; the loop goes on.
    """
    check_loopback(url)
    records: list[Record] = []
    issued = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds

    async def worker() -> None:
        nonlocal issued
        while time.perf_counter() < deadline and issued < max_requests:
            issued += 1
            body = {"queries": texts.take(per_request), "k": k}
            start = time.perf_counter()
            try:
                resp = await client.post(url + "/search", json=body)
                status, error = resp.status_code, ""
                error = _check_body(resp.json(), per_request, k) if status == 200 else f"HTTP {status}"
            except Exception as exc:  # noqa: BLE001 - every failure is a recorded error, the load goes on
                status, error = 0, f"{type(exc).__name__}: {exc}"[:200]
            rec = Record(start - t0, time.perf_counter() - start, status, error)
            records.append(rec)
            if on_record is not None:
                on_record(rec)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return records, time.perf_counter() - t0


def summarize(records: list[Record], wall: float, per_request: int) -> dict[str, Any]:
    """Throughput, latency percentiles (ms) and errors of one phase."""
    lat = np.array([r.latency for r in records], dtype=np.float64) * 1000.0
    errors = [r for r in records if r.error]
    kinds: dict[str, int] = {}
    for r in errors:
        kinds[r.error] = kinds.get(r.error, 0) + 1
    pct = {f"p{q}_ms": float(np.percentile(lat, q)) if len(lat) else None for q in (50, 95, 99)}
    return {
        "requests": len(records),
        "queries": len(records) * per_request,
        "seconds": wall,
        "requests_per_s": len(records) / wall if wall > 0 else None,
        "queries_per_s": len(records) * per_request / wall if wall > 0 else None,
        **pct,
        "mean_ms": float(lat.mean()) if len(lat) else None,
        "max_ms": float(lat.max()) if len(lat) else None,
        "errors": len(errors),
        "error_rate": len(errors) / len(records) if records else None,
        "error_kinds": dict(sorted(kinds.items(), key=lambda kv: -kv[1])[:5]),
    }


async def _metrics(client: Any, url: str) -> dict:
    resp = await client.get(url + "/metrics")
    resp.raise_for_status()
    return parse_metrics(resp.text)


def _client(httpx: Any, concurrency: int, timeout: float) -> Any:
    limits = httpx.Limits(max_connections=concurrency + 2, max_keepalive_connections=concurrency + 2)
    return httpx.AsyncClient(limits=limits, timeout=timeout, trust_env=False)


async def measure_level(url: str, concurrency: int, config: ServeLoadConfig, texts: QueryTexts) -> dict[str, Any]:
    """One concurrency level: warm-up, then the measured closed loop with ``/metrics`` around it."""
    httpx = require("httpx", "serve")
    async with _client(httpx, concurrency, config.request_timeout) as client:
        kw = {"per_request": config.queries_per_request, "k": config.k}
        if config.warmup_seconds > 0:
            await closed_loop(client, url, concurrency, config.warmup_seconds, config.max_requests, texts, **kw)
        before = await _metrics(client, url)
        load = os.getloadavg()[0]
        records, wall = await closed_loop(client, url, concurrency, config.seconds, config.max_requests, texts, **kw)
        after = await _metrics(client, url)
    out = {"concurrency": concurrency, **summarize(records, wall, config.queries_per_request)}
    out["loadavg_1min"] = [load, os.getloadavg()[0]]  # before and after: the machine is shared
    out["server"] = {
        "search_requests_by_status": requests_by_status(before, after),
        "batch_size": batch_histogram(before, after, "keff_encoder_batch_size"),
        "batch_requests": batch_histogram(before, after, "keff_encoder_batch_requests"),
        "encode_seconds": batch_histogram(before, after, "keff_encoder_duration_seconds"),
        "search_seconds": batch_histogram(before, after, "keff_request_duration_seconds", {"endpoint": "/search"}),
    }
    return out


async def soak(url: str, pid: int, config: ServeLoadConfig, texts: QueryTexts) -> dict[str, Any]:
    """``soak_concurrency`` clients for ``soak_seconds``; memory, throughput, errors and p95 per interval."""
    httpx = require("httpx", "serve")
    c = config.soak_concurrency
    kw = {"per_request": config.queries_per_request, "k": config.k}
    samples: list[dict[str, Any]] = []
    current: list[Record] = []
    async with _client(httpx, c, config.request_timeout) as client:
        if config.warmup_seconds > 0:
            await closed_loop(client, url, c, config.warmup_seconds, config.max_requests, texts, **kw)
        before = await _metrics(client, url)
        t0 = time.perf_counter()
        samples.append({"t": 0.0, "rss_bytes": rss_bytes(pid), "requests": 0, "errors": 0, "requests_per_s": None,
                        "p95_ms": None, "loadavg_1min": os.getloadavg()[0]})  # fmt: skip

        async def sampler() -> None:
            nonlocal current
            last = t0
            while True:
                await asyncio.sleep(config.sample_seconds - ((time.perf_counter() - t0) % config.sample_seconds))
                now = time.perf_counter()
                done, current = current, []
                lat = [r.latency * 1000.0 for r in done]
                samples.append({
                    "t": now - t0, "rss_bytes": rss_bytes(pid), "requests": len(done),
                    "errors": sum(1 for r in done if r.error), "requests_per_s": len(done) / (now - last),
                    "p95_ms": float(np.percentile(lat, 95)) if lat else None, "loadavg_1min": os.getloadavg()[0],
                })  # fmt: skip
                last = now

        task = asyncio.create_task(sampler())
        try:
            # through a lambda: the sampler swaps ``current`` for a fresh list at every sample
            records, wall = await closed_loop(client, url, c, config.soak_seconds, 10**12, texts,
                                              on_record=lambda r: current.append(r), **kw)  # fmt: skip
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        end = time.perf_counter()
        tail = current
        if tail:
            lat = [r.latency * 1000.0 for r in tail]
            samples.append({"t": end - t0, "rss_bytes": rss_bytes(pid), "requests": len(tail),
                            "errors": sum(1 for r in tail if r.error),
                            "requests_per_s": len(tail) / max(end - t0 - samples[-1]["t"], 1e-9),
                            "p95_ms": float(np.percentile(lat, 95)), "loadavg_1min": os.getloadavg()[0]})  # fmt: skip
        after = await _metrics(client, url)
    rss = [s["rss_bytes"] for s in samples]
    out = {"concurrency": c, "sample_seconds": config.sample_seconds, **summarize(records, wall, kw["per_request"])}
    out.update({
        "rss_start_bytes": rss[0], "rss_end_bytes": rss[-1], "rss_max_bytes": max(rss), "rss_min_bytes": min(rss),
        "rss_growth_pct": 100.0 * (rss[-1] - rss[0]) / rss[0],
        "rss_max_growth_pct": 100.0 * (max(rss) - rss[0]) / rss[0],
        "rss_source": rss_source(), "samples": samples,
        "server": {"search_requests_by_status": requests_by_status(before, after),
                   "batch_size": batch_histogram(before, after, "keff_encoder_batch_size"),
                   "encode_seconds": batch_histogram(before, after, "keff_encoder_duration_seconds")},
    })  # fmt: skip
    return out


# -- the study --------------------------------------------------------------------------------


def _cache_entries(cache: Path) -> int:
    """Embedding-cache entries under ``cache/embeddings`` (one file per text and encoder)."""
    root = cache / "embeddings"
    n = 0
    if root.is_dir():
        for fp in os.scandir(root):
            if fp.is_dir() and re.fullmatch(r"[0-9a-f]{16}", fp.name):
                for sub in os.scandir(fp.path):
                    if sub.is_dir():
                        n += sum(1 for e in os.scandir(sub.path) if e.is_file() and not e.name.startswith("."))
    return n


@contextlib.contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def build_index(folder: Path, config: ServeLoadConfig, data: Path, cache: Path) -> tuple[Path, dict[str, Any]]:
    """Build the index of ``beir/<dataset>`` with ``config.encoder`` in ``folder``, cache ``cache``."""
    from keff.data import load_beir
    from keff.docindex import Index, read_documents
    from keff.encoders import get_encoder
    from keff.paths import shipped_vectors
    from keff.precomputed import seed_beir_vectors

    beir = data / "beir" / config.dataset
    info: dict[str, Any] = {"seeded": []}
    with _env("KEFF_CACHE_DIR", str(cache)):
        if config.seed_vectors:
            vectors = shipped_vectors(beir, config.encoder)
            if vectors is None:
                raise DataError(f"no shipped {config.encoder} vectors for {beir} (pass --no-seed-vectors to encode)")
            # probe: 16 texts per file re-encoded to check the shipped vectors (as tests/docindex do)
            reports = seed_beir_vectors(get_encoder(config.encoder), load_beir(beir), vectors, probe=16, seed=0)
            info["seeded"] = [r.message for r in reports]
        start = time.perf_counter()
        ix = Index.build(folder, read_documents(beir), [config.encoder])
        info.update({"build_seconds": time.perf_counter() - start, "n_docs": ix.n_docs, "backend": ix.manifest.backend,
                     "fingerprint": ix.manifest.encoders[ix.encoder_keys[0]]["fingerprint"]})  # fmt: skip
    return folder, info


def run(config: ServeLoadConfig, *, data: str | Path) -> dict[str, Any]:
    """Run the load test (see the module docstring); the results as a JSON-able dict."""
    require("httpx", "serve")
    from keff.data import load_beir
    from keff.eval import run_metadata

    data = Path(data)
    beir = data / "beir" / config.dataset
    if not beir.is_dir():
        raise DataError(f"{beir}: no such BEIR dataset folder")
    texts = QueryTexts(list(load_beir(beir).query_texts))
    with contextlib.ExitStack() as stack:
        if config.workdir is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="keff-serve-load-")))
        else:
            work = Path(config.workdir)
            work.mkdir(parents=True, exist_ok=True)
        run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=work))  # a fresh cache: no query of an earlier run
        cache = run_dir / "cache"
        log(f"serve_load: building the {config.dataset} index with {config.encoder} in {run_dir}")
        index, info = build_index(run_dir / "index", config, data, cache)
        env = {k: v for k, v in os.environ.items() if k != "KEFF_API_KEY"}  # read-only server
        env["KEFF_CACHE_DIR"] = str(cache)
        if config.server_threads is not None:
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(config.server_threads)
        entries_before = _cache_entries(cache)
        server = stack.enter_context(running_server(index, config, env, run_dir / "server.log"))
        log(f"serve_load: {server.url} (pid {server.pid}), {info['n_docs']:,} documents")
        startup_rss = rss_bytes(server.pid)
        levels = []
        for c in config.levels:
            level = asyncio.run(measure_level(server.url, c, config, texts))
            levels.append(level)
            log(f"serve_load: concurrency {c}: {level['requests_per_s']:.1f} req/s, p50 {level['p50_ms']:.1f} ms, "
                f"p95 {level['p95_ms']:.1f} ms, p99 {level['p99_ms']:.1f} ms, {level['errors']} errors, "
                f"mean batch {level['server']['batch_size']['mean'] or 0:.1f} texts")  # fmt: skip
        soak_result = None
        if config.soak_seconds > 0:
            log(f"serve_load: soak, {config.soak_concurrency} clients for {config.soak_seconds:.0f} s")
            soak_result = asyncio.run(soak(server.url, server.pid, config, texts))
            log(f"serve_load: soak: {soak_result['requests_per_s']:.1f} req/s, {soak_result['errors']} errors, RSS "
                f"{soak_result['rss_start_bytes'] / 2**20:.0f} -> {soak_result['rss_end_bytes'] / 2**20:.0f} MiB "
                f"({soak_result['rss_growth_pct']:+.2f}%)")  # fmt: skip
        exit_status = stop_server(server.proc)
        entries_after = _cache_entries(cache)
        command, pid = server.command, server.pid

    single = next((lv for lv in levels if lv["concurrency"] == 1), None)
    at32 = next((lv for lv in levels if lv["concurrency"] == 32), None)
    speedup = at32["requests_per_s"] / single["requests_per_s"] if single and at32 else None
    all_phases = levels + ([soak_result] if soak_result else [])
    done = {
        "zero_errors": all(p["errors"] == 0 for p in all_phases),
        "speedup_32_vs_1": speedup,
        "speedup_at_least_3x": None if speedup is None else speedup >= 3.0,
        # whether the speed-up came from micro-batching: texts per encoder call at 32 clients
        "texts_per_call_32": None if at32 is None else at32["server"]["batch_size"]["mean"],
        "batched_at_32": None if at32 is None else (at32["server"]["batch_size"]["mean"] or 0) >= BATCHED,
        "p95_reported": all(p["p95_ms"] is not None for p in all_phases),
        "memory_growth_pct": soak_result["rss_growth_pct"] if soak_result else None,
        "memory_growth_under_5pct": None if soak_result is None else soak_result["rss_growth_pct"] < 5.0,
    }
    return {
        "benchmark": "serve_load",
        "config": {**asdict(config), "workdir": None if config.workdir is None else str(config.workdir)},
        "index": info,
        "server": {
            "command": ["python", "-c", "<keff.cli.main>", *command[3:]],
            "exit_status": exit_status,
            "pid": pid,
            "startup_rss_bytes": startup_rss,
            "host": config.host,
            "threads_env": None
            if config.server_threads is None
            else {"OMP_NUM_THREADS": config.server_threads, "MKL_NUM_THREADS": config.server_threads},
        },  # fmt: skip
        "queries": {
            "source": f"{config.dataset} queries.jsonl, all splits ({len(texts.base):,} texts), each sent once per "
            "run with a '(variant n)' suffix, n >= 1 (none is in the embedding cache; the server has no switch to "
            "turn its query cache off)",
            "base_texts": len(texts.base),
            "texts_sent": texts.sent,
            "cache_entries_before": entries_before,
            "cache_entries_after": entries_after,
            "cache_entries_written": entries_after - entries_before,
        },  # fmt: skip
        "machine": {
            "cpus": os.cpu_count(),
            "note": "2 CPU cores shared with other jobs; the clients run on the same "
            "machine as the server and compete with it for the cores",
        },  # fmt: skip
        "levels": levels,
        "soak": soak_result,
        "done": done,
        "meta": run_metadata(seed=None, encoders={config.encoder: info["fingerprint"]}),
    }


def plot_soak(results: dict[str, Any], path: str | Path) -> Path | None:
    """Memory and throughput over the soak, as a PNG at ``path`` (None without a soak)."""
    soak_result = results.get("soak")
    if not soak_result:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from keff.atomic import atomic_write_bytes

    s = soak_result["samples"]
    t = [x["t"] for x in s]
    fig, (a, b) = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
    start = soak_result["rss_start_bytes"] / 2**20
    a.plot(t, [x["rss_bytes"] / 2**20 for x in s], marker=".", label="server RSS")
    a.axhline(start * 1.05, ls="--", color="grey", label="start + 5%")
    a.set_ylim(start * 0.9, max(start * 1.1, soak_result["rss_max_bytes"] / 2**20 * 1.02))
    a.legend(loc="lower right")
    a.set_ylabel("server RSS (MiB)")
    a.set_title(f"keff serve soak: {soak_result['concurrency']} clients, {results['config']['soak_seconds']:g} s "
                f"(RSS {soak_result['rss_growth_pct']:+.2f}%)")  # fmt: skip
    b.plot(t[1:], [x["requests_per_s"] for x in s[1:]], marker=".", color="tab:green")
    b.set_ylabel("requests/s per interval")
    b.set_xlabel("seconds into the soak")
    b.set_ylim(bottom=0)
    for ax in (a, b):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())

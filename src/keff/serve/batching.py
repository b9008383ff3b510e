"""Micro-batching: concurrent requests' texts gathered into one encoder call per encoder.

The first text for an encoder opens a batch; texts of other requests join it for
``window`` seconds or until ``max_batch`` texts are waiting; then one call of that encoder
encodes them all, in a worker thread (the event loop keeps accepting requests), and each request
gets its own rows back. Calls of one encoder never overlap (a lock per encoder: the index's writes
encode with the same objects); batches filling while a call runs wait for it and go next.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from keff.serve.metrics import Metrics


@dataclass
class _Batch:
    encoder: Any
    kind: str
    label: str
    parts: list[tuple[list[str], asyncio.Future]] = field(default_factory=list)
    n_texts: int = 0
    timer: asyncio.TimerHandle | None = None
    due: bool = False  # its window passed while a call of the same slot was running


class EncoderLocks:
    """One lock per encoder object: its calls never run at the same time."""

    def __init__(self) -> None:
        self._locks: dict[int, tuple[Any, threading.Lock]] = {}
        self._guard = threading.Lock()

    def of(self, encoder: Any) -> threading.Lock:
        with self._guard:
            held = self._locks.get(id(encoder))
            if held is None or held[0] is not encoder:
                held = (encoder, threading.Lock())
                self._locks[id(encoder)] = held
            return held[1]


class MicroBatcher:
    """Gathers texts per (encoder, kind) and encodes each batch with one call (see the module docstring).

    Parameters
    ----------
    window : float
        Seconds the first text of a batch waits for others (0: no waiting).
    max_batch : int
        Waiting texts that close a batch at once.
    metrics : Metrics
        Receives the batch size, requests per batch and duration of every call.
    locks : EncoderLocks
        Shared with anything else that calls the same encoders.
    workers : int
        Threads running encoder calls (calls of different encoders may run side by side).
    """

    def __init__(self, window: float, max_batch: int, metrics: Metrics, locks: EncoderLocks, workers: int = 4) -> None:
        self.window = float(window)
        self.max_batch = int(max_batch)
        self.metrics = metrics
        self.locks = locks
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="keff-encode")
        self._open: dict[tuple[int, str], _Batch] = {}
        self._inflight: dict[tuple[int, str], int] = {}  # calls dispatched and not delivered, per slot
        #: Encoder calls made, by encoder label (also in the metrics).
        self.calls: dict[str, int] = {}

    async def encode(self, encoder: Any, texts: list[str], *, kind: str = "query", label: str = "") -> np.ndarray:
        """The (len(texts), dim) vectors of ``texts``, encoded in a batch with other requests' texts."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        slot = (id(encoder), kind)
        batch = self._open.get(slot)
        if batch is None:
            batch = self._open[slot] = _Batch(encoder, kind, label or getattr(encoder, "name", "?"))
        batch.parts.append((list(texts), future))
        batch.n_texts += len(texts)
        if batch.n_texts >= self.max_batch or self.window <= 0:
            self._close(slot)
        elif batch.timer is None and not batch.due:
            batch.timer = loop.call_later(self.window, self._close, slot)
        return await future

    def _close(self, slot: tuple[int, str]) -> None:
        batch = self._open.get(slot)
        if batch is None:
            return
        if batch.timer is not None:
            batch.timer.cancel()
            batch.timer = None
        if self.window > 0 and self._inflight.get(slot) and batch.n_texts < self.max_batch:
            batch.due = True  # keep gathering while the encoder is busy; sent when its call ends
            return
        del self._open[slot]
        self._inflight[slot] = self._inflight.get(slot, 0) + 1
        loop = asyncio.get_running_loop()
        task = loop.run_in_executor(self.executor, self._run, batch)
        task.add_done_callback(lambda done: self._deliver(batch, done, slot))

    def _run(self, batch: _Batch) -> tuple[np.ndarray, float]:
        texts = [t for part, _ in batch.parts for t in part]
        with self.locks.of(batch.encoder):
            start = time.perf_counter()
            vectors = batch.encoder.encode(texts, kind=batch.kind, show_progress=False)
            return np.asarray(vectors), time.perf_counter() - start

    def _deliver(self, batch: _Batch, done: asyncio.Future, slot: tuple[int, str]) -> None:
        self._inflight[slot] -= 1
        waiting = self._open.get(slot)
        if waiting is not None and waiting.due and not self._inflight[slot]:
            self._close(slot)
        exc = done.exception()
        if exc is None:
            vectors, seconds = done.result()
            labels = (("encoder", batch.label),)
            with self.metrics.lock:
                self.metrics.batch_size.observe(batch.n_texts, labels)
                self.metrics.batch_requests.observe(len(batch.parts), labels)
                self.metrics.encode_seconds.observe(seconds, labels)
            self.calls[batch.label] = self.calls.get(batch.label, 0) + 1
        start = 0
        for texts, future in batch.parts:
            if future.done():  # the request was cancelled (client gone)
                start += len(texts)
                continue
            if exc is not None:
                future.set_exception(exc)
            else:
                future.set_result(vectors[start : start + len(texts)])
            start += len(texts)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

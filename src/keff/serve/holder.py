"""The index a server answers from, swapped atomically when a newer commit appears.

:class:`IndexHolder` keeps the current :class:`Snapshot` (an opened :class:`keff.docindex.Index`).
At most every ``interval`` seconds a request looks at the manifest file (one ``stat``: inode,
size, mtime); when it changed and names a newer generation, the new state is opened fully (every
check of ``Index.open``; the encoders already loaded are reused when their key, which holds their
fingerprint, is unchanged) in a worker thread, and only then swapped in. Requests hold the
snapshot they started with to the end, so none is dropped or sees half of two states; an old
snapshot is closed when its last request ends. While a reload runs, other requests go on with the
old snapshot. A newer commit that cannot be opened is reported (``GET /health``, metrics) and the
old state keeps serving.

Writes through the server (``POST``/``DELETE /documents``) run one at a time on a private
:class:`Index` of the current state, which the write commits and re-opens; that object then
becomes the new snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keff.docindex import Index
from keff.docindex.manifest import MANIFEST, read_manifest
from keff.serve.batching import EncoderLocks
from keff.serve.metrics import Metrics

log = logging.getLogger("keff.serve")


def manifest_signature(root: Path) -> tuple[int, int, int] | None:
    """(inode, size, mtime in ns) of the manifest: a commit replaces the file, so this changes."""
    try:
        st = os.stat(root / MANIFEST)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


@dataclass(eq=False)
class Snapshot:
    """One opened state of the index and the requests using it.

    Attributes
    ----------
    index : Index
    signature : tuple
        The manifest's signature when it was opened.
    docs_lock : threading.Lock
        Held while reading documents (their files are shared handles: seek, then read).
    """

    index: Index
    signature: tuple[int, int, int] | None
    docs_lock: threading.Lock = field(default_factory=threading.Lock)
    users: int = 0
    retired: bool = False

    @property
    def generation(self) -> int:
        return self.index.manifest.generation

    def release(self) -> None:
        self.users -= 1
        if self.retired and self.users == 0:
            self.index.close()


def open_index(root: Path, *, verify: bool, explicit: dict[str, str] | None, reuse: Index | None) -> Index:
    """Open the committed state at ``root`` fully, reusing ``reuse``'s loaded encoders of the same key."""
    index = Index(root, read_manifest(root), check=verify, encoders=explicit)
    if reuse is not None:
        index._encoders.update({k: v for k, v in reuse._encoders.items() if k in index.manifest.encoders})
    keys = index.encoder_keys + ([index.upgrade.target_key] if index.upgrade is not None else [])
    for key in keys:
        index.encoder(key)  # loads and checks each encoder's fingerprint
    return index


class IndexHolder:
    """The current snapshot, reloaded when the index changes (see the module docstring).

    Parameters
    ----------
    index : Index
        The opened index to serve first.
    interval : float
        Least seconds between two looks at the manifest (0: every request).
    verify : bool
        Verify SHA-256 of every file when re-opening.
    metrics : Metrics
    locks : EncoderLocks
        The encoders' locks (a write encodes documents with them held).
    """

    def __init__(self, index: Index, *, interval: float, verify: bool, metrics: Metrics, locks: EncoderLocks) -> None:
        self.root = index.root
        self.interval = float(interval)
        self.verify = verify
        self.metrics = metrics
        self.locks = locks
        self.explicit = dict(index._explicit)
        self.current = Snapshot(index, manifest_signature(index.root))
        self.last_check = time.monotonic()
        self.reload_error: str | None = None
        #: Snapshots swapped in so far.
        self.swaps = 0
        self._failed_signature: tuple[int, int, int] | None = None
        self._reloading: asyncio.Task | None = None
        self._write_lock = asyncio.Lock()
        self._set_gauges()

    def _set_gauges(self) -> None:
        with self.metrics.lock:
            self.metrics.generation.set(self.current.generation)
            self.metrics.documents.set(self.current.index.n_docs)

    # -- reading --------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def use(self) -> AsyncIterator[Snapshot]:
        """The snapshot a request answers from (checked for a newer commit first), held to the end."""
        await self.refresh()
        snap = self.current
        snap.users += 1
        try:
            yield snap
        finally:
            snap.release()

    async def refresh(self, *, force: bool = False) -> None:
        """Swap in a newer commit if the manifest changed (looked at most every ``interval`` s).

        A request that finds the change waits for the new state; requests arriving while it is
        opened are answered from the old one.
        """
        if self._reloading is not None:
            return
        now = time.monotonic()
        if not force and now - self.last_check < self.interval:
            return
        self.last_check = now
        signature = manifest_signature(self.root)
        if signature is None or signature == self.current.signature or signature == self._failed_signature:
            return
        self._reloading = asyncio.ensure_future(self._reload(signature))
        try:
            await asyncio.shield(self._reloading)
        finally:
            self._reloading = None

    async def _reload(self, signature: tuple[int, int, int]) -> None:
        old = self.current.index
        swaps = self.swaps
        try:
            fresh = await asyncio.to_thread(
                open_index, self.root, verify=self.verify, explicit=self.explicit, reuse=old
            )
        except Exception as exc:  # a damaged or unreadable commit: keep serving the old state
            self._failed_signature = signature
            self.reload_error = f"{type(exc).__name__}: {exc}"
            with self.metrics.lock:
                self.metrics.reload_failures.inc()
            log.error("keff serve: could not open the new state of %s; still serving generation %d: %s",
                      self.root, self.current.generation, exc)  # fmt: skip
            return
        if self.swaps != swaps:  # a write through this server swapped in a newer state meanwhile
            fresh.close()
            self.last_check = float("-inf")  # look again at the next request
            return
        if fresh.manifest.generation == self.current.generation and manifest_signature(self.root) == signature:
            self.current.signature = signature  # rewritten with the same content
            fresh.close()
            return
        self._swap(Snapshot(fresh, signature))

    def _swap(self, snap: Snapshot) -> None:
        old = self.current
        self.current = snap
        self.swaps += 1
        self.reload_error = None
        self._failed_signature = None
        old.retired = True
        if old.users == 0:
            old.index.close()
        with self.metrics.lock:
            self.metrics.reloads.inc()
        self._set_gauges()
        log.info("keff serve: now serving generation %d of %s (%d documents)", snap.generation, self.root,
                 snap.index.n_docs)  # fmt: skip

    # -- writing --------------------------------------------------------------------------------
    async def write(self, change: Callable[[Index], Any]) -> Any:
        """Apply ``change`` (e.g. ``lambda ix: ix.add(docs)``) to a private copy of the current state,
        with the encoders' locks held, and serve the committed result; returns what ``change`` returned."""
        async with self._write_lock:
            await self.refresh(force=True)
            base = self.current.index

            def run() -> tuple[Any, Index]:
                writer = open_index(self.root, verify=False, explicit=self.explicit, reuse=base)
                locks = [self.locks.of(writer.encoder(k)) for k in writer.encoder_keys]
                with contextlib.ExitStack() as stack:
                    for lock in locks:
                        stack.enter_context(lock)
                    try:
                        result = change(writer)
                    except BaseException:
                        writer.close()
                        raise
                return result, writer

            result, writer = await asyncio.to_thread(run)
            self._swap(Snapshot(writer, manifest_signature(self.root)))
            return result

"""Content-addressed disk cache of embeddings, and an encoder wrapper that uses it.

Layout
------
One file per (encoder fingerprint, exact model text)::

    root/<fingerprint[:16]>/<key[:2]>/<key>      key = sha256(fingerprint + "\\0" + text)
    root/seed-batches/<batch_id>.json            one record per batch of seeded vectors

The key is the hex sha256 of ``(fingerprint + "\\0" + text)`` encoded as UTF-8; a lone surrogate
(not valid UTF-8) is encoded with ``"surrogatepass"``, so such text gets a key instead of a crash
while every valid text keeps exactly the same key.

Entry format (``KEFFVEC2``)
---------------------------
``b"KEFFVEC2"``, little-endian uint32 dim, the 32-byte binary key the entry was written for, a
16-byte origin (16 zero bytes: encoded by the model here; else the 16 hex digits of the seed batch
that supplied the vector), the 32-byte sha256 of everything before it plus the payload, then the
float32 little-endian payload. The checksum binds the vector to its key, so a valid entry that
sits under another text's file name is detected. An entry that is truncated, has a bad or old
magic (``KEFFVEC1`` entries carry no key), the wrong dim, a checksum mismatch or another key is
logged, deleted and recomputed, never returned.

Permissions
-----------
Files keff writes (entries, seed records, results) get the mode an ordinary ``open()`` gives,
``0o666 & ~umask``; a file that replaces an existing one keeps that file's mode (see
:mod:`keff.atomic`). A cache folder shared by several users therefore works when their umask
and the folder's group permissions allow it. A cache keff cannot write raises one
:class:`~keff.errors.KeffError` at the first write, naming the folder and the remedies (set
``KEFF_CACHE_DIR`` to a folder you can write, or use ``cache=False``); an entry keff may not read
raises a :class:`~keff.errors.KeffError` naming the file. Neither is ever a silent miss.

Durability
----------
Each entry is written atomically (temporary file, then rename). Entries the model encoded are
fsynced one by one (the model costs far more than the fsync). Bulk seeding writes its entries
without a per-entry fsync and syncs once at the end, then marks its batch record complete: an
entry lost or torn by a power cut fails its checksum or is simply missing, so it is recomputed,
never served wrong; the price is that such an entry costs a model call later.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from keff.atomic import atomic_write_bytes, atomic_write_text
from keff.encoders.base import Encoder, Kind, check_kind, check_texts, estimate_tokens
from keff.errors import CacheCorrupt, KeffError
from keff.progress import progress_bar

logger = logging.getLogger(__name__)

MAGIC = b"KEFFVEC2"
#: Magics of earlier entry formats: treated as corrupt (recomputed), never read.
OLD_MAGICS = (b"KEFFVEC1",)
#: Origin of an entry the model encoded here (the alternative is a seed batch id).
MODEL_ORIGIN = "model"
#: Folder under the cache root holding one JSON record per seed batch.
SEED_BATCH_DIR = "seed-batches"

_PREFIX = struct.Struct("<8sI32s16s")  # magic, dim, key, origin: the checksummed header part
_HEADER = struct.Struct("<8sI32s16s32s")  # ... then the sha256 of prefix + payload
_MODEL_ORIGIN_BYTES = bytes(16)
_BATCH_ID = re.compile(r"[0-9a-f]{16}")
_FINGERPRINT_DIR = re.compile(r"[0-9a-f]{16}")
_LOGGED_DEFECTS = 5


def entry_key(fingerprint: str, text: str) -> bytes:
    """The 32-byte sha256 key of ``text`` under ``fingerprint`` (lone surrogates allowed)."""
    return hashlib.sha256((fingerprint + "\0" + text).encode("utf-8", "surrogatepass")).digest()


def check_batch_id(batch_id: str) -> str:
    """Return ``batch_id`` if it is 16 lower-case hex digits, else raise :class:`KeffError`."""
    if not isinstance(batch_id, str) or not _BATCH_ID.fullmatch(batch_id):
        raise KeffError(f"not a seed batch id: {batch_id!r} (expected 16 hex digits)")
    return batch_id


def _origin_bytes(origin: str) -> bytes:
    return _MODEL_ORIGIN_BYTES if origin == MODEL_ORIGIN else check_batch_id(origin).encode("ascii")


def _origin_text(raw: bytes) -> str | None:
    """The origin stored in an entry header, or None when the field is malformed."""
    if raw == _MODEL_ORIGIN_BYTES:
        return MODEL_ORIGIN
    text = raw.decode("ascii", errors="replace")
    return text if _BATCH_ID.fullmatch(text) else None


@dataclass(frozen=True)
class CacheEntry:
    """One verified cache entry.

    Attributes
    ----------
    vector : numpy.ndarray
        float32, shape (dim,).
    key : bytes
        The 32-byte key it was written for (see :func:`entry_key`).
    origin : str
        ``"model"`` (encoded here) or the id of the seed batch that supplied it.
    """

    vector: np.ndarray
    key: bytes
    origin: str


def pack_entry(vector: np.ndarray, key: bytes, origin: str = MODEL_ORIGIN) -> bytes:
    """Serialise one vector (d,) stored under ``key`` (32 bytes) into cache-entry bytes."""
    vec = np.ascontiguousarray(vector, dtype="<f4")
    if vec.ndim != 1:
        raise KeffError(f"pack_entry: expected a vector (d,), got shape {vec.shape}")
    if len(key) != 32:
        raise KeffError(f"pack_entry: key must be 32 bytes, got {len(key)}")
    prefix = _PREFIX.pack(MAGIC, vec.shape[0], key, _origin_bytes(origin))
    payload = vec.tobytes()
    return prefix + hashlib.sha256(prefix + payload).digest() + payload


def unpack_entry(data: bytes, dim: int | None = None, *, key: bytes | None = None) -> CacheEntry:
    """Parse and verify cache-entry bytes; raises :class:`CacheCorrupt` on any defect.

    Parameters
    ----------
    data : bytes
        The entry file's content.
    dim : int, optional
        Required width.
    key : bytes, optional
        The key the caller looked up; an entry written for another key is corrupt.

    Returns
    -------
    CacheEntry
    """
    if len(data) >= 8 and data[:8] in OLD_MAGICS:
        raise CacheCorrupt(f"old entry format {data[:8].decode('ascii')} (not bound to its text)")
    if len(data) < _HEADER.size:
        raise CacheCorrupt(f"truncated header ({len(data)} bytes)")
    magic, d, stored_key, origin, digest = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise CacheCorrupt(f"bad magic {magic!r}")
    payload = data[_HEADER.size :]
    if len(payload) != 4 * d:
        raise CacheCorrupt(f"payload is {len(payload)} bytes, expected {4 * d}")
    if hashlib.sha256(data[: _PREFIX.size] + payload).digest() != digest:
        raise CacheCorrupt("checksum mismatch")
    if key is not None and stored_key != key:
        raise CacheCorrupt("entry was written for another text (key mismatch)")
    if dim is not None and d != dim:
        raise CacheCorrupt(f"dim {d}, expected {dim}")
    origin_text = _origin_text(origin)
    if origin_text is None:
        raise CacheCorrupt(f"bad origin field {origin!r}")
    return CacheEntry(np.frombuffer(payload, dtype="<f4").astype(np.float32), stored_key, origin_text)


class EmbeddingCache:
    """Embedding files under ``root``, addressed by encoder fingerprint and text.

    Attributes
    ----------
    corrupt : int
        Corrupt entries found (and deleted) so far.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        self._root_str = str(self.root)
        self.corrupt = 0

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.root)!r})"

    # -- paths and errors ----------------------------------------------------------------------
    def path_for(self, fingerprint: str, text: str) -> Path:
        """Entry file of ``text`` (the exact text the model sees) under ``fingerprint``."""
        return self._path_of_key(fingerprint, entry_key(fingerprint, text))

    def _path_of_key(self, fingerprint: str, key: bytes) -> Path:
        return Path(self._file_of_key(fingerprint, key))

    def _file_of_key(self, fingerprint: str, key: bytes) -> str:
        """The entry file's path as a string: the hot paths (a warm run looks up every text of
        a corpus) build thousands of them, and a pathlib join costs several times more."""
        name = key.hex()
        return os.path.join(self._root_str, fingerprint[:16], name[:2], name)

    def not_writable(self, path: object, exc: OSError) -> KeffError:
        """The one error raised when the cache folder cannot be written."""
        where = path if path is not None else self.root
        return KeffError(
            f"embedding cache folder {self.root} is not writable ({where}: {exc.strerror or exc}); "
            "set KEFF_CACHE_DIR to a folder you can write, or use get_encoder(..., cache=False)"
        )

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Turn 'permission denied' and 'read-only file system' into :meth:`not_writable`."""
        try:
            yield
        except PermissionError as exc:
            raise self.not_writable(exc.filename, exc) from exc
        except OSError as exc:
            if exc.errno != errno.EROFS:
                raise
            raise self.not_writable(exc.filename, exc) from exc

    def _read(self, path: Path | str) -> bytes | None:
        """Bytes of an entry file, None when absent; KeffError naming the file if unreadable."""
        try:
            with open(path, "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            return None
        except PermissionError as exc:
            raise KeffError(
                f"{path}: cannot read embedding-cache entry (permission denied); ask the owner of "
                f"{self.root} for read access, or set KEFF_CACHE_DIR to a folder of your own"
            ) from exc
        except OSError as exc:
            raise KeffError(f"{path}: cannot read embedding-cache entry ({exc.strerror or exc})") from exc

    def _discard(self, path: Path) -> None:
        with self._writing():
            path.unlink(missing_ok=True)

    # -- entries -------------------------------------------------------------------------------
    def get_entries(self, fingerprint: str, texts: Sequence[str], dim: int | None = None) -> list[CacheEntry | None]:
        """Look up texts with their origin; corrupt entries are logged, deleted and missed.

        Returns
        -------
        list
            For each text, a :class:`CacheEntry` or None.
        """
        out: list[CacheEntry | None] = []
        defects: list[tuple[Path, str]] = []
        for text in texts:
            key = entry_key(fingerprint, text)
            path = self._file_of_key(fingerprint, key)
            data = self._read(path)
            if data is None:
                out.append(None)
                continue
            try:
                out.append(unpack_entry(data, dim, key=key))
            except CacheCorrupt as exc:
                self._discard(Path(path))
                defects.append((Path(path), str(exc)))
                out.append(None)
        self.corrupt += len(defects)
        self._log_defects(defects)
        return out

    def _log_defects(self, defects: list[tuple[Path, str]]) -> None:
        for path, why in defects[:_LOGGED_DEFECTS]:
            logger.warning("%s: corrupt embedding-cache entry (%s); deleted, will recompute", path, why)
        rest = defects[_LOGGED_DEFECTS:]
        if rest:
            old = sum("old entry format" in why for _, why in rest)
            logger.warning(
                "%d more corrupt embedding-cache entries under %s (%d in an old entry format); deleted, will recompute",
                len(rest), self.root, old,
            )  # fmt: skip

    def get_many(self, fingerprint: str, texts: Sequence[str], dim: int | None = None) -> list[np.ndarray | None]:
        """Look up texts; corrupt entries are logged, deleted and returned as misses.

        Returns
        -------
        list
            For each text, a float32 vector of shape (dim,) or None.
        """
        return [None if e is None else e.vector for e in self.get_entries(fingerprint, texts, dim)]

    def put_many(
        self,
        fingerprint: str,
        texts: Sequence[str],
        vectors: np.ndarray,
        *,
        origin: str = MODEL_ORIGIN,
        show_progress: bool | None = False,
        fsync: bool = True,
    ) -> None:
        """Store ``vectors`` (n, d) for ``texts`` (n), each entry written atomically.

        Parameters
        ----------
        origin : str
            ``"model"`` for vectors the model encoded here, else the seed batch id.
        show_progress : bool, optional
            None shows progress (for bulk writes); False (default) is silent.
        fsync : bool
            fsync each entry (default). Bulk writers pass False and call :meth:`sync` once.

        Raises
        ------
        KeffError
            Bad shapes, or the cache folder is not writable (the message says what to do).
        """
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(texts):
            raise KeffError(f"put_many: {len(texts)} texts but vectors of shape {vectors.shape}")
        _origin_bytes(origin)
        with (
            self._writing(),
            progress_bar("writing cache entries", len(texts), enabled=show_progress, unit="entries") as bar,
        ):
            for text, vec in zip(texts, vectors):
                key = entry_key(fingerprint, text)
                atomic_write_bytes(self._path_of_key(fingerprint, key), pack_entry(vec, key, origin), fsync=fsync)
                bar.advance(1)

    #: Whether :meth:`sync` can flush everything at once (``os.sync`` is POSIX only).
    CAN_SYNC_ALL = hasattr(os, "sync")

    def sync(self) -> None:
        """Flush every written file to disk (one ``os.sync``, after bulk writes without fsync).

        Where there is no ``os.sync`` (Windows) bulk writers fsync each entry instead (see
        :attr:`CAN_SYNC_ALL`), so there is nothing left to flush.
        """
        if self.CAN_SYNC_ALL:
            os.sync()

    def has_entry(self, fingerprint: str, text: str) -> bool:
        """Whether an entry file exists for ``text`` (not verified; :meth:`get_entries` verifies)."""
        return os.path.isfile(self._file_of_key(fingerprint, entry_key(fingerprint, text)))

    # -- seed batches --------------------------------------------------------------------------
    @property
    def batches_dir(self) -> Path:
        """Folder of the seed-batch records."""
        return self.root / SEED_BATCH_DIR

    def write_seed_batch(self, record: dict[str, Any]) -> Path:
        """Write (or replace) the JSON record of seed batch ``record["batch_id"]``."""
        path = self.batches_dir / f"{check_batch_id(record['batch_id'])}.json"
        with self._writing():
            return atomic_write_text(path, json.dumps(record, indent=1, sort_keys=True) + "\n")

    def seed_batch(self, batch_id: str) -> dict[str, Any] | None:
        """The record of seed batch ``batch_id``, or None (an unreadable record is logged)."""
        path = self.batches_dir / f"{check_batch_id(batch_id)}.json"
        data = self._read(path)
        if data is None:
            return None
        try:
            record = json.loads(data.decode("utf-8"))
        except ValueError as exc:
            logger.warning("%s: unreadable seed-batch record (%s); ignored", path, exc)
            return None
        if not isinstance(record, dict) or record.get("batch_id") != batch_id or "fingerprint" not in record:
            logger.warning("%s: not a seed-batch record of batch %s; ignored", path, batch_id)
            return None
        return record

    def seed_batches(self, fingerprint: str | None = None) -> list[dict[str, Any]]:
        """Records of every seed batch (of ``fingerprint`` only, if given), oldest first.

        A record with ``"complete": false`` is a seed that was interrupted (or is running): its
        entries can be dropped with :meth:`drop_seed_batch`.
        """
        if not self.batches_dir.is_dir():
            return []
        records = []
        for path in sorted(self.batches_dir.glob("*.json")):
            if not _BATCH_ID.fullmatch(path.stem):
                continue
            record = self.seed_batch(path.stem)
            if record is not None and (fingerprint is None or record["fingerprint"] == fingerprint):
                records.append(record)
        return sorted(records, key=lambda r: (str(r.get("created", "")), r["batch_id"]))

    def drop_seed_batch(self, batch_id: str) -> int:
        """Delete every entry seed batch ``batch_id`` wrote, then its record.

        Entries of the batch's fingerprint are scanned and those whose origin is ``batch_id``
        are removed (entries the model encoded, or other batches wrote, stay); those texts are
        encoded by the model when next needed.

        Returns
        -------
        int
            Entries removed.

        Raises
        ------
        KeffError
            No such batch, or the cache folder is not writable.
        """
        record = self.seed_batch(batch_id)
        if record is None:
            raise KeffError(f"no seed batch {batch_id!r} under {self.batches_dir} (keff cache info lists them)")
        removed = 0
        with self._writing():
            for path in self._entry_files(self.root / str(record["fingerprint"])[:16]):
                if self._origin_of_file(path) == batch_id:
                    path.unlink(missing_ok=True)
                    removed += 1
            (self.batches_dir / f"{batch_id}.json").unlink(missing_ok=True)
        return removed

    def _entry_files(self, folder: Path) -> Iterator[Path]:
        if not folder.is_dir():
            return
        for sub in sorted(folder.iterdir()):
            if sub.is_dir() and len(sub.name) == 2:
                yield from (p for p in sub.iterdir() if not p.name.startswith(".") and p.is_file())

    def _origin_of_file(self, path: Path) -> str | None:
        try:
            with open(path, "rb") as fh:
                head = fh.read(_HEADER.size)
        except FileNotFoundError:
            return None
        if len(head) < _HEADER.size or head[:8] != MAGIC:
            return None
        return _origin_text(_HEADER.unpack(head)[3])

    def usage(self) -> dict[str, tuple[int, int]]:
        """Entries and bytes per fingerprint folder: ``{fingerprint[:16]: (n_entries, n_bytes)}``."""
        out: dict[str, tuple[int, int]] = {}
        if not self.root.is_dir():
            return out
        for folder in sorted(self.root.iterdir()):
            if folder.is_dir() and _FINGERPRINT_DIR.fullmatch(folder.name):
                sizes = [p.stat().st_size for p in self._entry_files(folder)]
                out[folder.name] = (len(sizes), sum(sizes))
        return out


class CachedEncoder:
    """An :class:`~keff.encoders.base.Encoder` that reads and fills an :class:`EmbeddingCache`.

    ``name``, ``dim``, ``fingerprint`` and ``normalize`` are those of the wrapped encoder.
    Counters ``hits`` and ``misses`` count distinct model texts served from the cache and
    encoded by the model; ``corrupt`` counts corrupt entries found. Misses are encoded and stored
    ``chunk_size`` texts at a time, so an interrupted job keeps what it finished.
    """

    def __init__(self, encoder: Encoder, cache: EmbeddingCache, *, chunk_size: int = 512) -> None:
        if chunk_size < 1:
            raise KeffError(f"chunk_size must be >= 1, got {chunk_size}")
        self.encoder = encoder
        self.cache = cache
        self.chunk_size = chunk_size
        self.hits = 0
        self.misses = 0
        self.corrupt = 0

    def __repr__(self) -> str:
        return f"CachedEncoder({self.encoder!r}, {self.cache!r})"

    @property
    def name(self) -> str:
        return self.encoder.name

    @property
    def dim(self) -> int:
        return self.encoder.dim

    @property
    def fingerprint(self) -> str:
        return self.encoder.fingerprint

    @property
    def normalize(self) -> bool:
        return bool(self.encoder.normalize)

    def prepare(self, texts: Sequence[str], kind: Kind = "doc") -> list[str]:
        """The texts the model sees (the wrapped encoder's ``prepare``, else the texts)."""
        prepare = getattr(self.encoder, "prepare", None)
        if prepare is not None:
            return list(prepare(texts, kind))
        check_kind(kind)
        return check_texts(texts)

    def put(
        self,
        texts: Sequence[str],
        vectors: np.ndarray,
        kind: Kind = "doc",
        *,
        origin: str = MODEL_ORIGIN,
        show_progress: bool | None = None,
        fsync: bool = True,
    ) -> int:
        """Store ``vectors`` (n, dim) as the encodings of ``texts`` as ``kind``.

        Returns the number of distinct entries written. Callers must have checked the vectors
        (see :func:`keff.encoders.seeding.seed_cache`); ``origin`` and ``fsync`` are passed to
        :meth:`EmbeddingCache.put_many`.
        """
        prepared = self.prepare(texts, kind)
        unique = dict(zip(prepared, range(len(prepared))))
        rows = np.asarray(vectors)[list(unique.values())]
        self.cache.put_many(
            self.fingerprint, list(unique), rows, origin=origin, show_progress=show_progress, fsync=fsync
        )
        return len(unique)

    def encode(
        self,
        texts: Sequence[str],
        kind: Kind = "doc",
        *,
        batch_size: int | None = None,
        show_progress: bool | None = None,
    ) -> np.ndarray:
        """Encode with the cache: returns float32 (n, dim), rows in input order.

        Progress covers the texts the model must encode (cached ones cost nothing); its ETA
        follows their estimated tokens.
        """
        return self.encode_through(
            texts, kind, lambda missing, originals: self._encode_missing(
                missing, originals, kind, batch_size, show_progress)
        )  # fmt: skip

    def encode_through(
        self,
        texts: Sequence[str],
        kind: Kind,
        encode_missing: Callable[[list[str], list[str]], dict[str, np.ndarray]],
    ) -> np.ndarray:
        """:meth:`encode`'s cache lookup, with the texts the cache lacks encoded by
        ``encode_missing(model_texts, original_texts) -> {model_text: vector}`` (which stores them);
        returns float32 (n, dim), rows in input order. Another engine (e.g. Ray) plugs in here."""
        originals = check_texts(texts)
        prepared = self.prepare(originals, kind)
        out = np.empty((len(prepared), self.dim), dtype=np.float32)
        first: dict[str, int] = {}
        for i, t in enumerate(prepared):
            first.setdefault(t, i)
        unique = list(first)
        before = self.cache.corrupt
        found = self.cache.get_many(self.fingerprint, unique, self.dim)
        self.corrupt += self.cache.corrupt - before
        vec_of: dict[str, np.ndarray] = {t: v for t, v in zip(unique, found) if v is not None}
        missing = [t for t in unique if t not in vec_of]
        self.hits += len(vec_of)
        self.misses += len(missing)
        if missing:
            vec_of.update(encode_missing(missing, [originals[first[t]] for t in missing]))
        for i, t in enumerate(prepared):
            out[i] = vec_of[t]
        return out

    def _encode_missing(
        self,
        missing: list[str],
        originals: list[str],
        kind: Kind,
        batch_size: int | None,
        show_progress: bool | None,
    ) -> dict[str, np.ndarray]:
        """Encode and store ``missing`` model texts chunk by chunk (an interrupted job resumes)."""
        cost = estimate_tokens(missing, getattr(self.encoder, "max_tokens", None))
        done: dict[str, np.ndarray] = {}
        with progress_bar(
            f"encoding with {self.name}", len(missing), enabled=show_progress, unit="texts",
            cost_total=float(cost.sum()),
        ) as bar:  # fmt: skip
            for start in range(0, len(missing), self.chunk_size):
                stop = start + self.chunk_size
                part = missing[start:stop]
                new = self.encoder.encode(originals[start:stop], kind, batch_size=batch_size, show_progress=False)
                self.cache.put_many(self.fingerprint, part, new)
                done.update(zip(part, new))
                bar.advance(len(part), cost=float(cost[start:stop].sum()))
        return done

"""Content-addressed disk cache of embeddings, and an encoder wrapper that uses it.

One file per (encoder fingerprint, exact model text)::

    root/<fingerprint[:16]>/<key[:2]>/<key>      key = sha256(fingerprint + "\\0" + text)

Entry bytes: ``b"KEFFVEC1"``, little-endian uint32 dim, the 32-byte sha256 of the payload, then
the float32 little-endian payload. Entries are written atomically; an entry that is truncated,
has a bad magic, the wrong dim or a checksum mismatch is logged, deleted and recomputed, never
returned.
"""

from __future__ import annotations

import hashlib
import logging
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from keff.atomic import atomic_write_bytes
from keff.encoders.base import Encoder, Kind, check_kind, check_texts
from keff.errors import CacheCorrupt, KeffError
from keff.progress import progress_bar

logger = logging.getLogger(__name__)

MAGIC = b"KEFFVEC1"
_HEADER = struct.Struct("<8sI32s")


def pack_entry(vector: np.ndarray) -> bytes:
    """Serialise one vector (d,) into cache-entry bytes."""
    payload = np.ascontiguousarray(vector, dtype="<f4").tobytes()
    return _HEADER.pack(MAGIC, vector.shape[0], hashlib.sha256(payload).digest()) + payload


def unpack_entry(data: bytes, dim: int | None = None) -> np.ndarray:
    """Parse and verify cache-entry bytes; raises :class:`CacheCorrupt` on any defect.

    Returns
    -------
    numpy.ndarray
        float32, shape (dim,).
    """
    if len(data) < _HEADER.size:
        raise CacheCorrupt(f"truncated header ({len(data)} bytes)")
    magic, d, digest = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise CacheCorrupt(f"bad magic {magic!r}")
    if dim is not None and d != dim:
        raise CacheCorrupt(f"dim {d}, expected {dim}")
    payload = data[_HEADER.size :]
    if len(payload) != 4 * d:
        raise CacheCorrupt(f"payload is {len(payload)} bytes, expected {4 * d}")
    if hashlib.sha256(payload).digest() != digest:
        raise CacheCorrupt("payload checksum mismatch")
    return np.frombuffer(payload, dtype="<f4").astype(np.float32)


class EmbeddingCache:
    """Embedding files under ``root``, addressed by encoder fingerprint and text.

    Attributes
    ----------
    corrupt : int
        Corrupt entries found (and deleted) so far.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        self.corrupt = 0

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.root)!r})"

    def path_for(self, fingerprint: str, text: str) -> Path:
        """Entry file of ``text`` (the exact text the model sees) under ``fingerprint``."""
        key = hashlib.sha256((fingerprint + "\0" + text).encode("utf-8")).hexdigest()
        return self.root / fingerprint[:16] / key[:2] / key

    def get_many(self, fingerprint: str, texts: Sequence[str], dim: int | None = None) -> list[np.ndarray | None]:
        """Look up texts; corrupt entries are logged, deleted and returned as misses.

        Returns
        -------
        list
            For each text, a float32 vector of shape (dim,) or None.
        """
        out: list[np.ndarray | None] = []
        for text in texts:
            path = self.path_for(fingerprint, text)
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                out.append(None)
                continue
            try:
                out.append(unpack_entry(data, dim))
            except CacheCorrupt as exc:
                logger.warning("%s: corrupt embedding-cache entry (%s); deleted, will recompute", path, exc)
                path.unlink(missing_ok=True)
                self.corrupt += 1
                out.append(None)
        return out

    def put_many(
        self,
        fingerprint: str,
        texts: Sequence[str],
        vectors: np.ndarray,
        *,
        show_progress: bool | None = False,
    ) -> None:
        """Store ``vectors`` (n, d) for ``texts`` (n), each entry written atomically.

        ``show_progress=None`` shows a bar when stderr is a terminal (for bulk writes).
        """
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(texts):
            raise KeffError(f"put_many: {len(texts)} texts but vectors of shape {vectors.shape}")
        with progress_bar("writing cache entries", len(texts), enabled=show_progress) as bar:
            for text, vec in zip(texts, vectors):
                atomic_write_bytes(self.path_for(fingerprint, text), pack_entry(vec))
                bar.advance(1)


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
        show_progress: bool | None = None,
    ) -> int:
        """Store ``vectors`` (n, dim) as the encodings of ``texts`` as ``kind``.

        Returns the number of distinct entries written. Callers must have checked the vectors
        (see :func:`keff.encoders.seeding.seed_cache`).
        """
        prepared = self.prepare(texts, kind)
        unique = dict(zip(prepared, range(len(prepared))))
        rows = np.asarray(vectors)[list(unique.values())]
        self.cache.put_many(self.fingerprint, list(unique), rows, show_progress=show_progress)
        return len(unique)

    def encode(
        self,
        texts: Sequence[str],
        kind: Kind = "doc",
        *,
        batch_size: int | None = None,
        show_progress: bool | None = None,
    ) -> np.ndarray:
        """Encode with the cache: returns float32 (n, dim), rows in input order."""
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
            # encode and store chunk by chunk, so an interrupted long job resumes where it stopped
            with progress_bar(f"encoding with {self.name}", len(missing), enabled=show_progress) as bar:
                for start in range(0, len(missing), self.chunk_size):
                    part = missing[start : start + self.chunk_size]
                    new = self.encoder.encode(
                        [originals[first[t]] for t in part], kind, batch_size=batch_size, show_progress=False
                    )
                    self.cache.put_many(self.fingerprint, part, new)
                    vec_of.update(zip(part, new))
                    bar.advance(len(part))
        for i, t in enumerate(prepared):
            out[i] = vec_of[t]
        return out

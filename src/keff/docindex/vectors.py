"""The vector store of a persistent index: per encoder, one ``.npy`` segment per document segment.

``vectors/<key>/gNNNNNN.npy`` holds the float32 (rows, dim) vectors of the documents that commit
added, in the same row order. Opening verifies each segment's SHA-256, dtype, shape and
finiteness before concatenating them into one in-memory matrix; a damaged file is refused,
never served.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from keff.atomic import atomic_path
from keff.docindex.manifest import FileEntry, file_entry, verify
from keff.errors import FormatError

_KEY = re.compile(r"[^A-Za-z0-9_.-]+")


def encoder_key(name: str, fingerprint: str) -> str:
    """A folder-safe key for an encoder: its name made safe plus the fingerprint's first 8 digits."""
    return f"{_KEY.sub('-', Path(name).name or name).strip('-.')[:40] or 'encoder'}-{fingerprint[:8]}"


def write_vectors(root: Path, key: str, stem: str, vectors: np.ndarray) -> dict:
    """Write one vector segment; returns its file entry.

    The array goes straight to the file (no in-memory copy of its bytes: at 1M x 384 a buffered
    write held two extra 1.5 GB copies)."""
    path = root / "vectors" / key / f"{stem}.npy"
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.ascontiguousarray(vectors, dtype=np.float32))
        fh.flush()
        os.fsync(fh.fileno())
    return file_entry(root, path).to_dict()


def load_vectors(root: Path, key: str, spec: dict, rows_per_segment: list[int], *, check: bool = True) -> np.ndarray:
    """The encoder's vectors of every row, checked (see the module docstring)."""
    segments = spec.get("segments")
    dim = spec.get("dim")
    if not isinstance(segments, list) or len(segments) != len(rows_per_segment):
        raise FormatError(f"{root}: encoder {key} lists {len(segments or [])} vector segments for "
                          f"{len(rows_per_segment)} document segments")  # fmt: skip
    if isinstance(dim, bool) or not isinstance(dim, int) or not 0 < dim <= 1 << 20:
        raise FormatError(f"{root}: encoder {key} has a bad dim {dim!r}")
    parts = []
    for i, (seg, rows) in enumerate(zip(segments, rows_per_segment)):
        where = f"vectors of {key}, segment {i}"
        if not isinstance(seg, dict):
            raise FormatError(f"{root}: {where} is not a file entry")
        entry = FileEntry(str(seg.get("path")), str(seg.get("sha256")))
        path = verify(root, entry, where) if check else root / entry.path
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise FormatError(f"{path}: not a readable .npy array ({exc})") from None
        if not isinstance(arr, np.ndarray) or arr.dtype != np.float32 or arr.shape != (rows, dim):
            raise FormatError(f"{path}: expected float32 ({rows}, {dim}) for {where}, got {getattr(arr, 'shape', '?')}")
        if not np.isfinite(arr).all():
            raise FormatError(f"{path}: holds NaN or infinite values ({where})")
        parts.append(arr)
    if len(parts) == 1:
        return parts[0]  # one segment (every fresh build): no concatenated copy
    return np.concatenate(parts) if parts else np.zeros((0, dim), dtype=np.float32)

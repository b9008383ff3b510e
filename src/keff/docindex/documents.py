"""The document store of a persistent index: immutable segments of (id, text, metadata).

Every commit that adds documents writes one segment of three files: ``docs/gNNNNNN.jsonl``
(one ``{"id", "text", "meta"}`` object per line), ``.ids.json`` (the ids in order, so opening
reads no text) and ``.offsets.npy`` (the byte offset of each line, so a hit's text is read
without scanning). Rows are numbered across segments in order; removing documents records their
rows in a sorted ``removed`` array (a new file per commit). Texts are read on demand from files
opened when the index is opened, so a later commit never pulls text from under a reader.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from keff.atomic import atomic_write_bytes
from keff.docindex.manifest import FileEntry, file_entry, verify
from keff.errors import DataError, FormatError


@dataclass(frozen=True)
class Document:
    """One document of an index: a unique id, the text that is encoded, and free metadata."""

    id: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict)


def check_documents(docs: Iterable[Document], *, what: str = "documents") -> list[Document]:
    """The documents as a list, with unique non-empty string ids and string texts."""
    out, seen = [], set()
    for i, d in enumerate(docs):
        if not isinstance(d, Document):
            raise DataError(f"{what}[{i}] is a {type(d).__name__}, not a keff Document")
        if not isinstance(d.id, str) or not d.id:
            raise DataError(f"{what}[{i}] has an empty or non-string id")
        if not isinstance(d.text, str):
            raise DataError(f"{what}[{i}] has a non-string text", item_id=d.id)
        if d.id in seen:
            raise DataError(f"{what}: duplicate id", item_id=d.id)
        seen.add(d.id)
        out.append(d)
    return out


def write_segment(root: Path, stem: str, docs: Sequence[Document]) -> dict:
    """Write one segment (see the module docstring); returns its manifest entry (without rows)."""
    buf, offsets = io.BytesIO(), [0]
    for d in docs:
        buf.write(json.dumps({"id": d.id, "text": d.text, "meta": d.meta}, ensure_ascii=False).encode("utf-8"))
        buf.write(b"\n")
        offsets.append(buf.tell())
    paths = {
        "text": root / "docs" / f"{stem}.jsonl",
        "ids": root / "docs" / f"{stem}.ids.json",
        "offsets": root / "docs" / f"{stem}.offsets.npy",
    }
    atomic_write_bytes(paths["text"], buf.getvalue())
    atomic_write_bytes(paths["ids"], json.dumps([d.id for d in docs], ensure_ascii=False).encode("utf-8"))
    npy = io.BytesIO()
    np.save(npy, np.asarray(offsets, dtype=np.int64))
    atomic_write_bytes(paths["offsets"], npy.getvalue())
    return {name: file_entry(root, p).to_dict() for name, p in paths.items()}


def write_removed(root: Path, stem: str, rows: np.ndarray) -> dict:
    """Write the sorted removed rows of a commit; returns its file entry."""
    path = root / "docs" / f"{stem}.removed.npy"
    npy = io.BytesIO()
    np.save(npy, np.unique(np.asarray(rows, dtype=np.int64)))
    atomic_write_bytes(path, npy.getvalue())
    return file_entry(root, path).to_dict()


def _entry(doc: Any, where: str) -> FileEntry:
    if not isinstance(doc, dict) or not isinstance(doc.get("path"), str) or not isinstance(doc.get("sha256"), str):
        raise FormatError(f"{where}: bad file entry {str(doc)[:80]!r}")
    return FileEntry(doc["path"], doc["sha256"])


def _load_npy(path: Path, dtype: str) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise FormatError(f"{path}: not a readable array ({exc})") from None
    if not isinstance(arr, np.ndarray) or arr.ndim != 1 or arr.dtype != np.dtype(dtype):
        raise FormatError(f"{path}: expected a 1-D {dtype} array")
    return arr


class DocumentStore:
    """The documents of one committed index state (read side).

    Parameters
    ----------
    root : Path
        The index folder.
    spec : dict
        The manifest's ``documents`` field.
    check : bool
        Verify every file's SHA-256 (default); False trusts sizes only (for tests of damage).
    """

    def __init__(self, root: Path, spec: dict, *, check: bool = True) -> None:
        self.root = root
        self.n_rows = int(spec["n_rows"])
        self.ids: list[str] = []
        self._segments: list[tuple[int, np.ndarray, BinaryIO]] = []
        for i, seg in enumerate(spec.get("segments", [])):
            where = f"document segment {i}"
            if not isinstance(seg, dict):
                raise FormatError(f"{root}: {where} is not an object")
            files = {name: _entry(seg.get(name), where) for name in ("text", "ids", "offsets")}
            paths = {name: verify(root, e, where) if check else root / e.path for name, e in files.items()}
            ids = json.loads(paths["ids"].read_text(encoding="utf-8"))
            offsets = _load_npy(paths["offsets"], "int64")
            if not isinstance(ids, list) or len(offsets) != len(ids) + 1:
                raise FormatError(f"{paths['ids']}: ids and offsets of {where} disagree")
            self._segments.append((len(self.ids), offsets, open(paths["text"], "rb")))  # noqa: SIM115
            self.ids.extend(str(x) for x in ids)
        if len(self.ids) != self.n_rows:
            raise FormatError(
                f"{root}: the manifest says {self.n_rows} document rows, the segments hold {len(self.ids)}"
            )
        removed = spec.get("removed")
        self.removed = np.zeros(0, dtype=np.int64)
        if removed is not None:
            path = verify(root, _entry(removed, "removed rows"), "removed rows") if check else root / removed["path"]
            self.removed = _load_npy(path, "int64")
            if self.removed.size and (self.removed.min() < 0 or self.removed.max() >= self.n_rows):
                raise FormatError(f"{path}: removed rows outside [0, {self.n_rows})")
        self.alive = np.ones(self.n_rows, dtype=bool)
        self.alive[self.removed] = False
        self.row_of = {d: r for r, d in enumerate(self.ids) if self.alive[r]}

    @property
    def n_live(self) -> int:
        return int(self.alive.sum())

    def _locate(self, row: int) -> tuple[np.ndarray, BinaryIO, int]:
        for start, offsets, fh in reversed(self._segments):
            if row >= start:
                return offsets, fh, row - start
        raise IndexError(row)  # pragma: no cover - rows come from the index itself

    def get(self, rows: Sequence[int]) -> list[Document]:
        """The documents at ``rows`` (text and metadata read from disk)."""
        out = []
        for row in rows:
            offsets, fh, i = self._locate(int(row))
            fh.seek(int(offsets[i]))
            rec = json.loads(fh.read(int(offsets[i + 1] - offsets[i])).decode("utf-8"))
            out.append(Document(rec["id"], rec["text"], rec.get("meta") or {}))
        return out

    def texts(self, rows: Sequence[int] | None = None) -> list[str]:
        """Texts of ``rows`` (default: every row, in order)."""
        return [d.text for d in self.get(range(self.n_rows) if rows is None else rows)]

    def close(self) -> None:
        for _, _, fh in self._segments:
            fh.close()

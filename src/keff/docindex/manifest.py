"""The manifest of a persistent index: one JSON file that is the index's single commit point.

An index folder holds immutable data files (document segments, vector segments, approximate
search structures, attached SEF transforms) and ``manifest.json``, which lists the files of the
current state with their SHA-256. An update writes new files under new names, then replaces
the manifest atomically (:func:`keff.atomic.atomic_write_bytes`, fsynced): a crash before that
rename leaves the previous manifest, which names only the previous files, so the index opens in
its last committed state; files no manifest names are removed by the next writer.

The manifest is untrusted input when opened: its structure, version and every path are checked
(no absolute paths, no ``..``) before a file is read, and each file's SHA-256 before it is used.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from keff.atomic import atomic_write_bytes, sha256_file
from keff.errors import FormatError

FORMAT = "keff.index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_MAX_MANIFEST = 64 << 20


@dataclass
class FileEntry:
    """One data file of the index: its path relative to the index folder and its SHA-256."""

    path: str
    sha256: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "sha256": self.sha256}


def file_entry(root: Path, path: Path) -> FileEntry:
    """The entry of an existing file under ``root`` (its SHA-256 computed now)."""
    return FileEntry(path.relative_to(root).as_posix(), sha256_file(path))


def check_relative(root: Path, rel: Any, where: str) -> Path:
    """``root / rel`` for a safe relative POSIX path recorded in a manifest, else FormatError."""
    if not isinstance(rel, str) or not rel or rel.startswith("/") or "\\" in rel:
        raise FormatError(f"{root / MANIFEST}: {where} has a bad path {rel!r}")
    parts = PurePosixPath(rel).parts
    if ".." in parts or any(p in ("", ".") for p in parts):
        raise FormatError(f"{root / MANIFEST}: {where} path {rel!r} leaves the index folder")
    return root.joinpath(*parts)


def verify(root: Path, entry: FileEntry, where: str) -> Path:
    """The file of ``entry``, after checking it exists and its SHA-256 matches; else FormatError."""
    path = check_relative(root, entry.path, where)
    if not path.is_file():
        raise FormatError(f"{path}: missing ({where}); the index is damaged")
    if sha256_file(path) != entry.sha256:
        raise FormatError(f"{path}: SHA-256 mismatch ({where}): the file was modified or damaged; refusing it")
    return path


@dataclass
class Manifest:
    """The committed state of an index (see the module docstring).

    Attributes
    ----------
    generation : int
        Incremented by every commit.
    encoders : dict
        Encoder key -> ``{"name", "fingerprint", "dim", "segments": [FileEntry dicts with "rows"]}``.
    documents : dict
        ``{"segments": [...], "n_rows": int, "removed": FileEntry dict or None}``.
    backend : dict
        ``{"kind": "exact" | "hnsw" | "ivf" | "flat", ...parameters}`` and per-encoder structure files.
    transforms : list of dict
        Attached SEF artifacts in the order they are applied.
    history : list of dict
        One entry per commit: what was done, the command, keff's version, the time.
    extra : dict
        Fields written by later keff parts (upgrade state); kept as read.
    """

    generation: int = 0
    encoders: dict[str, dict] = field(default_factory=dict)
    documents: dict[str, Any] = field(default_factory=lambda: {"segments": [], "n_rows": 0, "removed": None})
    backend: dict[str, Any] = field(default_factory=lambda: {"kind": "exact"})
    transforms: list[dict] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def copy(self) -> Manifest:
        return copy.deepcopy(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "generation": self.generation,
            "encoders": self.encoders,
            "documents": self.documents,
            "backend": self.backend,
            "transforms": self.transforms,
            "history": self.history,
            **({"extra": self.extra} if self.extra else {}),
        }

    @classmethod
    def from_dict(cls, doc: Any, where: Path) -> Manifest:
        """Check the manifest's structure (types of every field the index reads)."""
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise FormatError(f"{where}: not a keff index manifest")
        if doc.get("format_version") != FORMAT_VERSION:
            raise FormatError(
                f"{where}: index format_version {doc.get('format_version')!r} is not supported "
                f"(this keff reads {FORMAT_VERSION})"
            )
        gen = doc.get("generation")
        if isinstance(gen, bool) or not isinstance(gen, int) or gen < 0:
            raise FormatError(f"{where}: bad generation {gen!r}")
        for name, kind in (("encoders", dict), ("documents", dict), ("backend", dict), ("transforms", list),
                           ("history", list)):  # fmt: skip
            if not isinstance(doc.get(name), kind):
                raise FormatError(f"{where}: field {name!r} must be a JSON {kind.__name__}")
        docs = doc["documents"]
        n_rows = docs.get("n_rows")
        if isinstance(n_rows, bool) or not isinstance(n_rows, int) or n_rows < 0:
            raise FormatError(f"{where}: documents.n_rows must be an integer >= 0")
        return cls(
            generation=gen,
            encoders=doc["encoders"],
            documents=docs,
            backend=doc["backend"],
            transforms=doc["transforms"],
            history=doc["history"],
            extra=doc.get("extra", {}) if isinstance(doc.get("extra", {}), dict) else {},
        )


def read_manifest(root: Path) -> Manifest:
    """Read and check ``root/manifest.json``."""
    path = root / MANIFEST
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise FormatError(f"{root}: not a keff index (no {MANIFEST})") from None
    if size > _MAX_MANIFEST:
        raise FormatError(f"{path}: manifest of {size} bytes is larger than any keff index writes")
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FormatError(f"{path}: manifest is not valid JSON ({str(exc)[:80]})") from None
    return Manifest.from_dict(doc, path)


def write_manifest(root: Path, manifest: Manifest) -> None:
    """Commit ``manifest``: replace ``root/manifest.json`` atomically and sync the folder."""
    data = json.dumps(manifest.to_dict(), indent=1, sort_keys=True).encode("utf-8") + b"\n"
    atomic_write_bytes(root / MANIFEST, data)
    fd = os.open(root, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

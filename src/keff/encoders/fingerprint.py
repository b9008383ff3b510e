"""Encoder fingerprints and memoised weight hashes.

A fingerprint is the sha256 of a canonical JSON object holding keff's encoder-format version,
the backend, the model's identity (sha256 of its files), max length, pooling, normalisation and
prefixes. Hashing a 438 MB weights file takes seconds, so file hashes are memoised in
``cache_dir()/fingerprints.json`` keyed by resolved path, size and mtime (nanoseconds): a file
that changes in any of these is hashed again.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from keff.atomic import atomic_write_text, sha256_bytes, sha256_file
from keff.errors import ModelNotAvailable
from keff.paths import cache_dir

logger = logging.getLogger(__name__)

#: Bumped whenever keff changes how it turns a model's output into vectors.
ENCODER_FORMAT_VERSION = 1

#: Files in a model folder that never affect the vectors.
_IGNORED_NAMES = {"readme.md", ".gitattributes", "desktop.ini", "license", "license.txt"}


def canonical_json(obj: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, ASCII only."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def fingerprint_of(fields: dict[str, Any]) -> str:
    """Hex sha256 of ``fields`` plus the encoder-format version, as canonical JSON."""
    payload = {"keff_encoder_format": ENCODER_FORMAT_VERSION, **fields}
    return sha256_bytes(canonical_json(payload).encode("ascii"))


def _memo_path() -> Path:
    return cache_dir() / "fingerprints.json"


def _read_memo(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        logger.warning("%s: unreadable hash memo (%s); rebuilding it", path, exc)
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        logger.warning("%s: hash memo is not a str->str object; rebuilding it", path)
        return {}
    return data


def files_sha256(paths: Iterable[str | Path]) -> dict[Path, str]:
    """Hex sha256 of each file, memoised by (resolved path, size, mtime_ns).

    Parameters
    ----------
    paths : iterable of path
        Files to hash (symlinks are followed).

    Returns
    -------
    dict
        Resolved path -> hex sha256.
    """
    memo_file = _memo_path()
    memo = _read_memo(memo_file)
    out: dict[Path, str] = {}
    rehashed: set[str] = set()
    current: set[str] = set()
    for p in paths:
        real = Path(p).resolve()
        try:
            st = os.stat(real)
        except OSError as exc:
            raise ModelNotAvailable(f"{real}: cannot read model file ({exc})") from exc
        key = f"{real}|{st.st_size}|{st.st_mtime_ns}"
        current.add(key)
        digest = memo.get(key)
        if digest is None:
            digest = sha256_file(real)
            memo[key] = digest
            rehashed.add(str(real))
        out[real] = digest
    if rehashed:
        # merge with entries other processes may have added meanwhile; drop stale keys of the
        # files just hashed (same path, older size/mtime)
        merged = {**_read_memo(memo_file), **memo}
        fresh = {k: v for k, v in merged.items() if k in current or k.rsplit("|", 2)[0] not in rehashed}
        atomic_write_text(memo_file, json.dumps(fresh, indent=0, sort_keys=True))
    return out


def model_files(folder: str | Path) -> list[Path]:
    """Every file in a model folder that can affect the vectors (docs and junk excluded), sorted."""
    folder = Path(folder)
    files = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if p.is_file() and p.name.lower() not in _IGNORED_NAMES:
            files.append(p)
    return files


def files_identity(files: Iterable[str | Path], root: str | Path | None = None) -> str:
    """One hex sha256 naming a set of files by relative name and content.

    Parameters
    ----------
    files : iterable of path
        The files (e.g. from :func:`model_files`, or a single ONNX graph and its tokenizer).
    root : path, optional
        Names are taken relative to ``root``; by default only the file name is used.
    """
    files = [Path(f) for f in files]
    if not files:
        raise ModelNotAvailable(f"no model files found under {root}")
    digests = files_sha256(files)
    entries = []
    for f in files:
        rel = f.relative_to(root).as_posix() if root is not None else f.name
        entries.append([rel, digests[f.resolve()]])
    return sha256_bytes(canonical_json(sorted(entries)).encode("ascii"))

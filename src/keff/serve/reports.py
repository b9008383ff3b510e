"""The evaluation plots a server shows: ``*.png`` files directly inside one folder, nothing else.

A name is served only if it is a plain file name (letters, digits, ``_ . -``; no folder part,
not hidden) ending in ``.png``, whose resolved path (symlinks followed) is a regular file inside
the resolved folder: ``../``, absolute paths, encoded separators and symlinks out of the folder
are all refused the same way (not found).
"""

from __future__ import annotations

import re
from pathlib import Path

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,199}\.png$")
#: Largest plot served, in bytes.
MAX_BYTES = 32 << 20


def report_path(folder: Path | None, name: str) -> Path | None:
    """The file of report ``name`` in ``folder``, or None when it is not a servable report."""
    if folder is None or not _NAME.match(name) or ".." in name:
        return None
    base = folder.resolve()
    try:
        path = (base / name).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if path.parent != base or not path.is_file() or path.stat().st_size > MAX_BYTES:
        return None
    return path


def list_reports(folder: Path | None) -> list[dict[str, object]]:
    """``[{"name", "url", "bytes"}]`` of every servable ``*.png`` in ``folder``, sorted by name."""
    if folder is None:
        return []
    out = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        path = report_path(folder, entry.name)
        if path is not None:
            out.append({"name": entry.name, "url": f"/reports/{entry.name}", "bytes": path.stat().st_size})
    return out

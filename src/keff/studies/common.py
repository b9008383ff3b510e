"""What every study and benchmark driver shares: progress messages and writing results."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from keff.atomic import atomic_write_text
from keff.errors import DataError
from keff.paths import find_shared_data


def log(message: str) -> None:
    """One progress line on stderr, flushed (studies run for hours under nohup)."""
    print(message, file=sys.stderr, flush=True)


def shared_data(data: str | Path | None) -> Path:
    """The shared data folder: ``data`` if given, else ``$KEFF_DATA_DIR`` or ``../shared/data``.

    Raises
    ------
    DataError
        When no folder is found (the message says how to give one).
    """
    folder = Path(data) if data is not None else find_shared_data()
    if folder is None or not folder.is_dir():
        raise DataError("shared data not found: pass --data DIR (the folder holding beir/, qa/, embeddings/)")
    return folder


def write_json(path: str | Path, results: dict[str, Any]) -> Path:
    """Write ``results`` as indented, key-sorted JSON, atomically; floats of numpy types allowed."""
    return atomic_write_text(path, json.dumps(results, indent=1, sort_keys=True, default=float) + "\n")

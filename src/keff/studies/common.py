"""What every study and benchmark driver shares: progress messages and writing results."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
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


def driver_parser(doc: str, out: Path) -> argparse.ArgumentParser:
    """A benchmark driver's argument parser: its description from ``doc``'s first paragraph,
    ``--data`` (the shared data folder) and ``--out`` (the results JSON, default ``out``)."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=None, help="shared data folder (default: ../shared/data)")
    p.add_argument("--out", type=Path, default=out, help="results JSON (the figure goes beside it as .png)")
    return p


def save_results(out: Path, results: dict[str, Any], draw: Callable[[Path], Any]) -> Path:
    """Write ``results`` to ``out`` (with the figure's name as ``plot``), then draw the figure
    beside it: the results first, so a figure that fails loses nothing."""
    png = Path(out).with_suffix(".png")
    write_json(out, {**results, "plot": png.name})
    draw(png)
    log(f"wrote {out} and {png}")
    return png

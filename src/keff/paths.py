"""Where keff keeps things outside the repository: its cache, and the shared real data."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """keff's cache root: ``$KEFF_CACHE_DIR``, else ``$XDG_CACHE_HOME/keff``, else ``~/.cache/keff``."""
    env = os.environ.get("KEFF_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "keff"


def models_dir() -> Path:
    """Where keff assembles models (mpnet from its PyPI parts): ``$KEFF_MODEL_DIR``, else
    ``cache_dir()/models``. A separate variable lets tests isolate the embedding cache and still
    find a model assembled once."""
    env = os.environ.get("KEFF_MODEL_DIR")
    return Path(env).expanduser() if env else cache_dir() / "models"


def find_shared_data(start: str | Path | None = None) -> Path | None:
    """Locate the shared real-data folder, or return None.

    Looks at ``$KEFF_DATA_DIR``, then ``shared/data`` in the parent of ``start`` (default: the
    working directory) and of each of its ancestors, then beside this source checkout.
    """
    env = os.environ.get("KEFF_DATA_DIR")
    if env:
        p = Path(env).expanduser()
        return p if p.is_dir() else None
    starts = [Path(start) if start else Path.cwd(), Path(__file__).resolve().parent]
    for s in starts:
        for anc in [s.resolve(), *s.resolve().parents]:
            cand = anc.parent / "shared" / "data"
            if cand.is_dir():
                return cand
    return None


def shipped_vectors(data: str | Path, encoder: str) -> Path | None:
    """The folder of precomputed vectors shipped beside a data set, or None.

    The shared data folder keeps them as ``ROOT/embeddings/NAME/ENCODER/`` for a BEIR folder
    ``ROOT/beir/NAME`` or a Q/A file ``ROOT/qa/NAME.jsonl``. They are only ever used after the
    seeding check (:mod:`keff.encoders.seeding`) proves they are this encoder's vectors.
    """
    data = Path(data).expanduser().resolve()
    name = data.stem if data.suffix == ".jsonl" else data.name
    if data.parent.name not in ("beir", "qa"):
        return None
    folder = data.parent.parent / "embeddings" / name / encoder
    return folder if folder.is_dir() else None

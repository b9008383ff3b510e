"""Fitting an alignment between two encoders from anchor texts, with its provenance.

The pieces the ``keff align`` commands and the benchmarks share: reading anchor texts from a
text file, a BEIR corpus or a Q/A file; fitting a map of a named kind on part of the anchors and
measuring it on the held-out rest; and the provenance block stored in the map's SEF file.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from keff.data import load_beir, load_qa, parse_qa_layout
from keff.data._io import read_lines
from keff.data.qa_layout import QALayout
from keff.errors import DataError, KeffError
from keff.maps import Map, make_map
from keff.maps.report import AlignmentReport, alignment_report


def read_anchor_texts(
    source: str | Path,
    *,
    n: int | None = None,
    seed: int = 0,
    qa_layout: QALayout | str = "auto",
    at_most: bool = False,
) -> tuple[list[str], str]:
    """Anchor texts and a description of where they came from.

    Parameters
    ----------
    source : path
        A ``.txt`` file (one text per line, blank lines skipped), a BEIR folder (its corpus
        documents) or a Q/A ``.jsonl`` file (its distinct answers).
    n : int, optional
        Draw this many texts at random (seeded); default all.
    seed : int
        Seed of the draw.
    qa_layout : QALayout or str
        Layout of a Q/A file (see :func:`keff.data.parse_qa_layout`); default: by its fields.
    at_most : bool
        With fewer than ``n`` texts, take them all instead of failing.
    """
    path = Path(source)
    if path.is_dir():
        texts, what = list(load_beir(path).doc_texts), f"BEIR corpus {path.name}"
    elif path.suffix == ".jsonl":
        layout = parse_qa_layout(qa_layout) if isinstance(qa_layout, str) else qa_layout
        texts, what = list(dict.fromkeys(load_qa(path, layout=layout).answers)), f"answers of {path.name}"
    elif path.is_file():
        texts = [line.strip() for _, line in read_lines(path, what="anchor text file")[1]]
        what = f"text file {path.name}"
    else:
        raise DataError("anchor source not found (a .txt file, a BEIR folder or a Q/A .jsonl)", path=path)
    if not texts:
        raise DataError("no anchor texts", path=path)
    if n is not None:
        if n < 1:
            raise DataError(f"asked for {n} anchors: give a positive number", path=path)
        if n > len(texts) and not at_most:
            raise DataError(f"asked for {n} anchors but there are only {len(texts)} texts", path=path)
        n = min(n, len(texts))
        rows = np.sort(np.random.default_rng(seed).choice(len(texts), size=n, replace=False))
        texts = [texts[i] for i in rows]
        what += f", {n} drawn with seed {seed}"
    return texts, what


def texts_sha256(texts: Sequence[str]) -> str:
    """SHA-256 identifying an ordered list of texts."""
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8") + b"\0")
    return h.hexdigest()


def fit_alignment(
    X: np.ndarray,
    Y: np.ndarray,
    kind: str = "procrustes",
    *,
    holdout: float = 0.1,
    seed: int = 0,
    **params: Any,
) -> tuple[Map, AlignmentReport | None]:
    """Fit a map on all but a seeded ``holdout`` share of the anchors; report on the rest.

    The returned map is the one the report measured (fitted without the held-out rows). With
    ``holdout=0`` every anchor is used and the report is None.
    """
    if not 0 <= holdout < 1:
        raise KeffError(f"holdout must be in [0, 1), got {holdout}")
    if len(X) != len(Y):
        raise KeffError(f"{len(X)} source rows but {len(Y)} target rows: anchors must be paired row by row")
    n = len(X)
    n_held = int(round(holdout * n))
    order = np.random.default_rng(seed).permutation(n)
    held, fit_rows = np.sort(order[:n_held]), np.sort(order[n_held:])
    m = make_map(kind, **params).fit(X[fit_rows], Y[fit_rows])
    report = alignment_report(m, X[held], Y[held], k=min(10, n_held - 1)) if n_held >= 3 else None
    return m, report


def provenance(
    *,
    source: Any,
    target: Any,
    anchors: Sequence[str] | None,
    anchor_description: str,
    n_fit: int,
    report: AlignmentReport | None,
    seed: int,
) -> dict[str, Any]:
    """The provenance block of a map's SEF file: encoders, anchors, fit quality, command."""
    from keff import __version__

    def who(enc: Any) -> dict[str, Any]:
        return {"name": enc.name, "fingerprint": enc.fingerprint, "dim": enc.dim, "normalized": True}

    return {
        "source": who(source) if hasattr(source, "fingerprint") else source,
        "target": who(target) if hasattr(target, "fingerprint") else target,
        "anchors": {
            "description": anchor_description,
            "n": None if anchors is None else len(anchors),
            "n_fit": n_fit,
            "sha256": None if anchors is None else texts_sha256(anchors),
        },
        "fit_quality": None if report is None else report.to_dict(),
        "seed": seed,
        "command": list(sys.argv),
        "keff_version": __version__,
    }

"""Reuse vectors computed elsewhere, only after proving they are this encoder's vectors.

Seeding writes stored vectors into keff's embedding cache so that a slow model need not
re-encode a whole corpus. Before anything is written, the encoder re-encodes a seeded sample of
the texts and each cosine must reach ``min_cosine`` (the embedding fingerprint check).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from keff.data import BeirDataset, QAPairs
from keff.encoders.cache import CachedEncoder
from keff.encoders.seeding import SeedReport, seed_cache
from keff.errors import DataError


def load_matrix(path: Path) -> np.ndarray:
    """A 2-D float32 array from a .npy file; DataError naming the file otherwise."""
    if not path.is_file():
        raise DataError("precomputed vectors not found", path=path)
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise DataError(f"not a readable .npy array: {exc}", path=path) from exc
    if arr.ndim != 2:
        raise DataError(f"expected a 2-D array, got shape {arr.shape}", path=path)
    return np.asarray(arr, dtype=np.float32)


def _seed_files(
    encoder: CachedEncoder,
    pairs: list[tuple[str, list[str], str]],
    folder: Path,
    *,
    probe: int,
    min_cosine: float,
    seed: int,
) -> list[SeedReport]:
    reports = []
    for filename, texts, kind in pairs:
        vectors = load_matrix(folder / filename)
        if vectors.shape[0] != len(texts):
            raise DataError(
                f"{vectors.shape[0]} rows but the data set has {len(texts)} texts for it",
                path=folder / filename,
            )
        reports.append(seed_cache(encoder, texts, vectors, kind=kind, probe=probe, min_cosine=min_cosine, seed=seed))
    return reports


def seed_beir_vectors(
    encoder: CachedEncoder,
    dataset: BeirDataset,
    folder: str | Path,
    *,
    probe: int = 16,
    min_cosine: float = 0.999,
    seed: int = 0,
) -> list[SeedReport]:
    """Seed the cache from ``folder/corpus.npy`` (corpus order) and ``folder/queries.npy``."""
    files = [("corpus.npy", list(dataset.doc_texts), "doc"), ("queries.npy", list(dataset.query_texts), "query")]
    return _seed_files(encoder, files, Path(folder), probe=probe, min_cosine=min_cosine, seed=seed)


def seed_qa_vectors(
    encoder: CachedEncoder,
    pairs: QAPairs,
    folder: str | Path,
    *,
    probe: int = 16,
    min_cosine: float = 0.999,
    seed: int = 0,
) -> list[SeedReport]:
    """Seed the cache from ``folder/questions.npy`` and ``folder/answers.npy`` (pair order)."""
    files = [("questions.npy", list(pairs.questions), "query"), ("answers.npy", list(pairs.answers), "doc")]
    return _seed_files(encoder, files, Path(folder), probe=probe, min_cosine=min_cosine, seed=seed)

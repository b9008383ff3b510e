"""Reuse vectors computed elsewhere, only after proving they are this encoder's vectors.

Seeding writes stored vectors into keff's embedding cache so that a slow model need not
re-encode a whole corpus. Before anything is written, every row gets cheap checks (finite, unit
length, no copied rows) and a random sample of rows, drawn afresh on every run, is re-encoded and
each cosine must reach ``min_cosine`` (see :mod:`keff.encoders.seeding` for the sample size and
the corruption it is sure to catch). Each file becomes one seed batch, recorded with the file's
path and SHA-256: seeding the same file again is a no-op that loads no model, and
``EmbeddingCache.drop_seed_batch`` removes a batch's entries.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from keff.arrays import read_vectors
from keff.data import BeirDataset, QAPairs
from keff.encoders.cache import CachedEncoder
from keff.encoders.seeding import SeedReport, seed_cache
from keff.errors import DataError


def load_matrix_with_sha256(path: Path) -> tuple[np.ndarray, str]:
    """A finite 2-D float32 array from a .npy file and the hex SHA-256 of the bytes it was read
    from (:func:`keff.arrays.read_vectors`); DataError naming the file otherwise."""
    return read_vectors(path, what="precomputed vectors")


def load_matrix(path: Path) -> np.ndarray:
    """A finite 2-D float32 array from a .npy file; DataError naming the file otherwise."""
    return load_matrix_with_sha256(path)[0]


def _seed_files(
    encoder: CachedEncoder,
    pairs: list[tuple[str, list[str], str]],
    folder: Path,
    *,
    probe: int | None,
    min_cosine: float,
    seed: int | None,
    show_progress: bool | None,
) -> list[SeedReport]:
    reports = []
    for filename, texts, kind in pairs:
        path = folder / filename
        vectors, digest = load_matrix_with_sha256(path)
        if vectors.shape[0] != len(texts):
            raise DataError(f"{vectors.shape[0]} rows but the data set has {len(texts)} texts for it", path=path)
        reports.append(
            seed_cache(
                encoder,
                texts,
                vectors,
                kind=kind,
                probe=probe,
                min_cosine=min_cosine,
                seed=seed,
                source=path.resolve(),
                source_sha256=digest,
                show_progress=show_progress,
            )  # fmt: skip
        )
    return reports


def seed_beir_vectors(
    encoder: CachedEncoder,
    dataset: BeirDataset,
    folder: str | Path,
    *,
    probe: int | None = None,
    min_cosine: float = 0.999,
    seed: int | None = None,
    show_progress: bool | None = None,
) -> list[SeedReport]:
    """Seed the cache from ``folder/corpus.npy`` (corpus order) and ``folder/queries.npy``.

    ``probe`` and ``seed`` default to the size rule and a fresh random sample per run (see
    :func:`keff.encoders.seeding.seed_cache`); each report's ``message`` is one line for the user.
    """
    files = [("corpus.npy", list(dataset.doc_texts), "doc"), ("queries.npy", list(dataset.query_texts), "query")]
    return _seed_files(
        encoder, files, Path(folder), probe=probe, min_cosine=min_cosine, seed=seed, show_progress=show_progress
    )


def seed_qa_vectors(
    encoder: CachedEncoder,
    pairs: QAPairs,
    folder: str | Path,
    *,
    probe: int | None = None,
    min_cosine: float = 0.999,
    seed: int | None = None,
    show_progress: bool | None = None,
) -> list[SeedReport]:
    """Seed the cache from ``folder/questions.npy`` and ``folder/answers.npy`` (pair order).

    ``probe`` and ``seed`` as in :func:`seed_beir_vectors`.
    """
    files = [("questions.npy", list(pairs.questions), "query"), ("answers.npy", list(pairs.answers), "doc")]
    return _seed_files(
        encoder, files, Path(folder), probe=probe, min_cosine=min_cosine, seed=seed, show_progress=show_progress
    )

"""Fixtures for the keff.uncertainty tests: seeded synthetic domains and small real slices."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

D = 16


def unit(X: np.ndarray) -> np.ndarray:
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(2024)


@pytest.fixture
def axes() -> tuple[np.ndarray, np.ndarray]:
    """Two orthogonal unit directions in D dimensions: domain A's and domain B's centre."""
    return np.eye(D, dtype=np.float32)[0], np.eye(D, dtype=np.float32)[1]


@pytest.fixture
def cluster(rng) -> Callable[[np.ndarray, int, float], np.ndarray]:
    """``cluster(centre, n, spread)``: n unit rows scattered around ``centre`` (spread ~ angle)."""

    def make(centre: np.ndarray, n: int, spread: float) -> np.ndarray:
        return unit(centre + spread * rng.standard_normal((n, centre.shape[0])) / np.sqrt(centre.shape[0]))

    return make


@pytest.fixture(scope="session")
def minilm_slices(shared_data: Path) -> dict[str, np.ndarray]:
    """Small real slices (all-MiniLM-L6-v2, 384-d): SciFact documents and claims (one domain)
    and skills Q/A questions (another)."""
    emb = shared_data / "embeddings"
    paths = {
        "scifact_docs": emb / "scifact/minilm/corpus.npy",
        "scifact_queries": emb / "scifact/minilm/queries.npy",
        "skills_questions": emb / "skills_qa/minilm/questions.npy",
    }
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        pytest.skip(f"precomputed MiniLM embeddings not found: {missing}")
    sizes = {"scifact_docs": 1500, "scifact_queries": 300, "skills_questions": 300}
    return {k: np.array(np.load(p, mmap_mode="r")[: sizes[k]]) for k, p in paths.items()}

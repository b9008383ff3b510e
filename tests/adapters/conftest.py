"""Fixtures shared by the keff.adapters tests: one torch thread, unit rows and synthetic
question/answer pairs (a planted task, or pure noise)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

TORCH_REASON = "adapters train with torch: pip install 'keff[st]'"


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` scaled to unit length, as float32."""
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def planted_pairs(n: int = 400, d: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Questions are their answers through a fixed random linear map plus noise; groups of two."""
    rng = np.random.default_rng(seed)
    M = np.eye(d) + 1.5 * rng.standard_normal((d, d)) / np.sqrt(d)
    groups = np.arange(n) // 2
    centres = rng.standard_normal((n // 2, d))
    Y = unit_rows(centres[groups] + 0.3 * rng.standard_normal((n, d)))
    X = unit_rows(Y @ M + 0.1 * rng.standard_normal((n, d)))
    return X, Y, groups


def noise_pairs(n: int = 300, d: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Answers unrelated to their questions (groups of two pairs). Both sides share one offset
    direction, so their mean cosine is positive as for real question/answer vectors; it carries no
    pairing information."""
    rng = np.random.default_rng(seed)
    shared = rng.standard_normal(d)
    shared *= 0.75 / np.linalg.norm(shared)
    X = unit_rows(rng.standard_normal((n, d)) / np.sqrt(d) + shared)
    Y = unit_rows(rng.standard_normal((n, d)) / np.sqrt(d) + shared)
    return X, Y, np.arange(n) // 2


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models train faster on one thread, especially on a busy 2-core machine."""
    torch = pytest.importorskip("torch", reason=TORCH_REASON)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def unit() -> Callable[[np.ndarray], np.ndarray]:
    """``unit(x)``: the rows of ``x`` scaled to unit length, as float32."""
    return unit_rows


@pytest.fixture(scope="session")
def planted() -> Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``planted(n=400, d=32, seed=0)``: ``(X, Y, groups)`` of a planted linear task."""
    return planted_pairs


@pytest.fixture(scope="session")
def noise() -> Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``noise(n=300, d=32, seed=0)``: ``(X, Y, groups)`` with no pairing information."""
    return noise_pairs

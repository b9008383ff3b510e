"""Fixtures shared by the keff.maps tests: seeded generators and random orthogonal matrices."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture
def orthonormal(rng) -> Callable[..., np.ndarray]:
    """``orthonormal(d_s, d_t, det=None)``: a random (d_s, d_t) matrix with orthonormal rows or
    columns; for square matrices ``det=+1`` or ``-1`` fixes the determinant."""

    def make(d_s: int, d_t: int, det: int | None = None) -> np.ndarray:
        Q, R = np.linalg.qr(rng.standard_normal((max(d_s, d_t), min(d_s, d_t))))
        Q = Q * np.sign(np.diag(R))  # Haar-distributed
        if det is not None:
            assert d_s == d_t
            if np.sign(np.linalg.det(Q)) != det:
                Q[:, 0] *= -1
        return Q if d_s >= d_t else Q.T

    return make

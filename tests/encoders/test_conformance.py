"""Protocol conformance of every installed encoder backend (shared checks, sklearn-style)."""

from __future__ import annotations

import numpy as np
import pytest

from keff.encoders import Encoder, available_encoders, get_encoder

from .conftest import TEXTS

SPECS = {s.name: s for s in available_encoders()}


@pytest.fixture(scope="module", params=list(SPECS))
def encoder(request, isolated_cache_dir):
    spec = SPECS[request.param]
    if not spec.is_available():  # checked here, with the test cache dir in place
        pytest.skip(f"{spec.name} is not installed here (installed by: {spec.package})")
    if spec.name == "minilm":
        return request.getfixturevalue("minilm")  # reuse the loaded model
    return get_encoder(spec.name, cache=False)


def test_protocol(encoder):
    spec = SPECS[encoder.name]
    assert isinstance(encoder, Encoder)
    assert encoder.dim == spec.dim
    assert len(encoder.fingerprint) == 64


def test_shape_dtype_normalised_deterministic(encoder):
    a = encoder.encode(TEXTS)
    b = encoder.encode(list(reversed(TEXTS)), batch_size=3)[::-1]
    assert a.shape == (len(TEXTS), encoder.dim) and a.dtype == np.float32
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert np.allclose(a, b, atol=1e-5)
    assert np.array_equal(a, encoder.encode(TEXTS))


def test_query_kind_and_empty(encoder):
    assert encoder.encode([], kind="query").shape == (0, encoder.dim)
    assert np.allclose(encoder.encode(TEXTS[:1], kind="query"), encoder.encode(TEXTS[:1]), atol=1e-6)


def test_distinguishes_texts(encoder):
    v = encoder.encode(TEXTS)
    sims = v @ v.T
    assert (sims[~np.eye(len(TEXTS), dtype=bool)] < 0.99).all()

"""Tests for keff.encoders.hash_encoder (the test-only bag-of-words encoder)."""

from __future__ import annotations

import numpy as np
import pytest

from keff.encoders.hash_encoder import HashEncoder
from keff.errors import KeffError


def test_deterministic_and_seeded():
    texts = ["alpha beta", "gamma"]
    a, b = HashEncoder(seed=1).encode(texts), HashEncoder(seed=1).encode(texts)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, HashEncoder(seed=2).encode(texts))
    assert HashEncoder(seed=1).fingerprint != HashEncoder(seed=2).fingerprint


def test_shared_words_give_similarity():
    v = HashEncoder(dim=256).encode(["red apple pie", "apple pie recipe", "quantum chromodynamics"])
    assert v[0] @ v[1] > 0.5 > abs(v[0] @ v[2])


def test_case_insensitive_word_bag():
    v = HashEncoder().encode(["Apple, PIE!", "pie apple"])
    assert np.allclose(v[0], v[1])


def test_dim_and_dtype():
    v = HashEncoder(dim=7).encode(["a b c"])
    assert v.shape == (1, 7) and v.dtype == np.float32


def test_says_it_is_not_semantic():
    assert "NOT a semantic model" in (HashEncoder.__doc__ or "")
    assert "not a semantic model" in HashEncoder.description.lower()


def test_rejects_bad_dim():
    with pytest.raises(KeffError, match="dim must be >= 1"):
        HashEncoder(dim=0)

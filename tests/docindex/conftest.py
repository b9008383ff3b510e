"""Fixtures for the persistent index: an isolated cache and small document sets."""

from __future__ import annotations

import numpy as np
import pytest

from keff.docindex import Document


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KEFF_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def docs():
    topics = ["bread dough kneading", "git rebase branches", "chocolate tempering", "python virtual environments"]
    return [Document(f"d{i}", f"{topics[i % 4]} note {i}", {"n": i}) for i in range(40)]


@pytest.fixture
def unit_vectors():
    def make(n, d=32, seed=0):
        v = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    return make

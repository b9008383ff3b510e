"""Fixtures for CLI tests: an isolated keff cache (the `run` fixture is in tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every CLI test writes its cache and demo output under its own tmp folder."""
    monkeypatch.setenv("KEFF_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"

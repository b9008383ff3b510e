"""Fixtures for CLI tests: an isolated keff cache and a typer runner."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from keff.cli import app


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every CLI test writes its cache and demo output under its own tmp folder."""
    monkeypatch.setenv("KEFF_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def run():
    """Invoke ``keff ARGS...`` in-process; returns the click Result."""
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args), catch_exceptions=False)

    return invoke

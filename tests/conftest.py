"""Fixtures shared by every test package."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from keff.cli import app
from keff.paths import find_shared_data


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real shared data folder (../shared/data or $KEFF_DATA_DIR), or skip with a reason."""
    root = find_shared_data()
    if root is None:
        pytest.skip("shared real data not found: set KEFF_DATA_DIR or place it at ../shared/data")
    return root


@pytest.fixture
def run():
    """Invoke ``keff ARGS...`` in-process; returns the click Result."""
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args), catch_exceptions=False)

    return invoke

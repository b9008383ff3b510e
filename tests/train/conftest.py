"""Fixtures for the keff.train tests (torch required: each test module skips without it)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models train faster on one thread, especially on a busy 2-core machine."""
    torch = pytest.importorskip("torch", reason="keff.train needs torch: pip install 'keff[st]'")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

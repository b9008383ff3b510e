"""Input checks shared by the index backends."""

from __future__ import annotations

import numpy as np

from keff.errors import KeffError


def check_k(k: int) -> int:
    """Return ``k`` as an int if it is a positive integer, else raise :class:`KeffError`."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise KeffError(f"k must be a positive integer; got {k!r}")
    return int(k)

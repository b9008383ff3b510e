"""Input checks shared by the index backends."""

from __future__ import annotations

import numpy as np

from keff.errors import KeffError


def as_float32_matrix(x: np.ndarray, name: str) -> np.ndarray:
    """Return ``x`` as a C-contiguous float32 (n, d) array, or raise :class:`KeffError`.

    Parameters
    ----------
    x : array_like, shape (n, d)
        Real floating-point values; every entry must be finite.
    name : str
        What ``x`` is, used in error messages ("vectors", "queries").

    Returns
    -------
    ndarray of float32, shape (n, d)
    """
    arr = np.asarray(x)
    if arr.ndim == 1:
        raise KeffError(
            f"{name} must be 2-D (n, d); got a 1-D array of shape {arr.shape}. "
            f"For a single row use {name}[None, :] (shape (1, d))."
        )
    if arr.ndim != 2:
        raise KeffError(f"{name} must be 2-D (n, d); got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise KeffError(f"{name} must be a floating-point array; got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if arr.size and not np.isfinite(arr).all():
        bad = int(np.argwhere(~np.isfinite(arr))[0, 0])
        raise KeffError(f"{name} must be finite; row {bad} holds NaN or inf")
    return arr


def check_k(k: int) -> int:
    """Return ``k`` as an int if it is a positive integer, else raise :class:`KeffError`."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise KeffError(f"k must be a positive integer; got {k!r}")
    return int(k)

"""Vector files from users: a ``.npy`` of shape (n, d), read safely and checked before use.

A vector file is untrusted input: it may be empty, hold strings or objects (which would need
pickle, never allowed), be an ``.npz`` archive, be truncated, or hold NaN. :func:`load_vectors`
turns each of these into one :class:`~keff.errors.DataError` naming the file.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from keff.atomic import sha256_bytes
from keff.errors import DataError


def load_vectors(path: str | Path, *, what: str = "vectors") -> np.ndarray:
    """A finite 2-D float32 array with at least one row, from a ``.npy`` file (see
    :func:`read_vectors`)."""
    return read_vectors(path, what=what)[0]


def read_vectors(path: str | Path, *, what: str = "vectors") -> tuple[np.ndarray, str]:
    """A finite 2-D float32 array with at least one row from a ``.npy`` file, and the hex
    SHA-256 of exactly the bytes it was read from.

    Parameters
    ----------
    path : str or Path
        The ``.npy`` file.
    what : str
        What the file should hold, for the "not found" message.

    Returns
    -------
    vectors : numpy.ndarray
        float32, shape (n, d) with n >= 1 and d >= 1.
    sha256 : str
        Of the file's bytes.

    Raises
    ------
    DataError
        Missing file, not a ``.npy`` array (an ``.npz``, pickled objects, truncated data), not
        2-D, not numeric, empty, or NaN/infinite values (the first bad row is named).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} not found (expected a .npy file)", path=path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {what} ({exc.strerror or exc})", path=path) from None
    if zipfile.is_zipfile(io.BytesIO(data)):
        raise DataError("an .npz archive; give one .npy array (np.save) instead", path=path)
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"not a readable .npy array ({' '.join(str(exc).split())})", path=path) from None
    if not isinstance(arr, np.ndarray):
        raise DataError("not a single .npy array", path=path)
    if arr.dtype.kind not in "fiu":
        raise DataError(f"holds {arr.dtype} values; expected numbers (float vectors)", path=path)
    if arr.ndim != 2:
        raise DataError(f"expected a 2-D array (rows x dimensions), got shape {arr.shape}", path=path)
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataError(f"holds no vectors (shape {arr.shape})", path=path)
    arr = np.asarray(arr, dtype=np.float32)
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise DataError(f"row {int(np.flatnonzero(bad)[0])} holds NaN or infinite values", path=path)
    return arr, sha256_bytes(data)


def unit_norm_rows(X: np.ndarray, *, rtol: float = 1e-3) -> np.ndarray:
    """Boolean mask (n,) of the rows whose L2 norm is 1 within ``rtol``."""
    norms = np.linalg.norm(np.asarray(X, dtype=np.float32), axis=1)
    return np.abs(norms - 1.0) <= rtol

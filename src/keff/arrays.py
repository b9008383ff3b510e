"""Row-vector matrices: the one matrix check, the one row normalisation, and vector files.

Everything in keff passes vectors as float32 matrices of shape (n, d), rows are items.
:func:`as_matrix` is the single check of such an input (2-D, numeric, finite) and
:func:`l2_normalize` the single row normalisation, with one documented rule for zero rows.

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
from keff.errors import DataError, KeffError


def as_matrix(X: object, name: str = "X", *, floating: bool = False) -> np.ndarray:
    """``X`` as a C-contiguous float32 matrix (n, d), checked; copies only when needed.

    Parameters
    ----------
    X : array_like, shape (n, d)
        Numbers; every entry must be finite.
    name : str
        What ``X`` is, for messages ("queries", "specialist 1 vectors").
    floating : bool
        Refuse integer input too (where an integer array is surely a mistake, e.g. an index).

    Raises
    ------
    KeffError
        Not 2-D (a 1-D array gets the hint ``X[None, :]``), not numeric (or not floating when
        asked), or a NaN/inf entry (the message names its row).
    """
    arr = np.asarray(X)
    if arr.ndim == 1:
        raise KeffError(
            f"{name} must be 2-D (n, d); got a 1-D array of shape {arr.shape}. "
            f"For a single row use {name}[None, :] (shape (1, d))."
        )
    if arr.ndim != 2:
        raise KeffError(f"{name} must be 2-D (n, d); got shape {arr.shape}")
    kinds = "f" if floating else "fiu"
    if arr.dtype.kind not in kinds:
        wanted = "a floating-point array" if floating else "numeric"
        raise KeffError(f"{name} must be {wanted}; got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if arr.size and not np.isfinite(arr).all():
        bad = int(np.argwhere(~np.isfinite(arr))[0, 0])
        raise KeffError(f"{name} must be finite; row {bad} holds NaN or inf")
    return arr


def l2_normalize(X: object, *, zero_rows: str = "keep", name: str = "X", inplace: bool = False) -> np.ndarray:
    """Rows of ``X`` (n, d) scaled to unit L2 norm, as float32.

    Parameters
    ----------
    X : array_like, shape (n, d)
        Rows to scale (not re-validated: pass the output of :func:`as_matrix` for untrusted input).
    zero_rows : {"keep", "error"}
        A row of norm zero has no direction: ``"keep"`` leaves it zero (an encoder's vector of
        an empty text), ``"error"`` raises naming the row (where a cosine must be defined).
    name : str
        What the rows are, for the error.
    inplace : bool
        Scale a float32 ``X`` in place (saves a copy on a hot path).
    """
    if zero_rows not in ("keep", "error"):
        raise KeffError(f"zero_rows must be 'keep' or 'error'; got {zero_rows!r}")
    X = np.asarray(X)
    out = X if inplace and X.dtype == np.float32 else X.astype(np.float32)
    norms = np.sqrt(np.einsum("nd,nd->n", out, out))
    zero = ~(norms > 0)
    if zero.any():
        if zero_rows == "error":
            raise KeffError(f"{name} row {int(np.flatnonzero(zero)[0])} has zero norm: its cosine is undefined")
        norms[zero] = 1.0
    out /= norms[:, None]
    return out


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

"""SEF: keff's one file format for every fitted artifact (maps, specialists, routed models).

A ``.sef`` file is a plain safetensors file, so any safetensors reader can open its arrays. keff
adds three entries to the safetensors header metadata:

- ``keff.format``: ``"keff.sef"``;
- ``keff.meta``: a JSON object (``format_version``, artifact ``kind``, parameters, encoder
  identities, anchor hashes, fit quality, creation command, ...);
- ``keff.sha256``: SHA-256 over the canonical metadata JSON and every array's name, dtype, shape
  and bytes.

Loading parses the header with a strict reader of its own (bounds, offsets, dtypes, shapes),
recomputes the SHA-256 and compares it before returning anything, and never executes code: no
pickle, no imports named by the file. Any defect (truncation, tampering, unknown version) is a
:class:`~keff.errors.FormatError` naming the file.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from keff.atomic import atomic_write_bytes
from keff.errors import FormatError

FORMAT = "keff.sef"
FORMAT_VERSION = 1
SUFFIX = ".sef"
_DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64, "I32": np.int32, "U8": np.uint8}
_MAX_HEADER = 100 << 20  # a header larger than 100 MB is not a keff file


def _canonical(meta: Mapping[str, Any]) -> bytes:
    try:
        return json.dumps(meta, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise FormatError(f"SEF metadata must be finite JSON: {exc}") from exc


def payload_sha256(meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 over the canonical metadata and each array's name, dtype, shape and bytes."""
    h = hashlib.sha256(b"keff.sef\n")
    h.update(_canonical(meta))
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"\n{name}\n{a.dtype.str}\n{list(a.shape)}\n".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_sef(path: str | Path, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> Path:
    """Write ``arrays`` and ``meta`` to ``path`` atomically; returns the path.

    Parameters
    ----------
    path : str or Path
        Destination (``.sef`` by convention).
    arrays : mapping of str to ndarray
        Named arrays; dtypes float16/32/64, int32/64 or uint8.
    meta : mapping
        JSON-serialisable metadata; ``format_version`` is added.
    """
    from safetensors.numpy import save

    clean = {}
    for name, a in arrays.items():
        a = np.ascontiguousarray(a)
        if a.dtype.type not in _DTYPES.values():
            raise FormatError(f"array {name!r}: dtype {a.dtype} cannot be stored in SEF")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise FormatError(f"array {name!r} holds NaN or infinite values")
        clean[name] = a
    full_meta = {**meta, "format_version": FORMAT_VERSION}
    header_meta = {
        "keff.format": FORMAT,
        "keff.meta": _canonical(full_meta).decode("utf-8"),
        "keff.sha256": payload_sha256(full_meta, clean),
    }
    return atomic_write_bytes(path, save(clean, metadata=header_meta))


def _parse_header(data: bytes, path: Path) -> tuple[dict, int]:
    if len(data) < 8:
        raise FormatError(f"{path}: truncated SEF file ({len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > _MAX_HEADER or 8 + n > len(data):
        raise FormatError(f"{path}: truncated or corrupt SEF header (declares {n} bytes)")
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormatError(f"{path}: SEF header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise FormatError(f"{path}: SEF header is not a JSON object")
    return header, 8 + n


def _read_arrays(header: dict, data: bytes, start: int, path: Path) -> dict[str, np.ndarray]:
    body = len(data) - start
    spans, arrays = [], {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = np.dtype(_DTYPES[spec["dtype"]]).newbyteorder("<")
            shape = tuple(int(s) for s in spec["shape"])
            lo, hi = (int(o) for o in spec["data_offsets"])
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"{path}: bad SEF entry for array {name!r} ({exc!r})") from None
        if any(s < 0 for s in shape) or not 0 <= lo <= hi <= body:
            raise FormatError(f"{path}: array {name!r} has a bad shape or lies outside the file")
        if int(np.prod(shape, dtype=np.int64)) * dtype.itemsize != hi - lo:
            raise FormatError(f"{path}: array {name!r} size does not match its shape {shape}")
        spans.append((lo, hi, name))
        arrays[name] = np.frombuffer(data, dtype=dtype, count=(hi - lo) // dtype.itemsize, offset=start + lo)
        arrays[name] = arrays[name].reshape(shape).astype(dtype.newbyteorder("="))
    spans.sort()
    for (_, hi, a), (lo, _, b) in zip(spans, spans[1:]):
        if lo < hi:
            raise FormatError(f"{path}: arrays {a!r} and {b!r} overlap")
    return arrays


def load_sef(path: str | Path, *, kind: str | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read and verify a SEF file: returns ``(arrays, meta)``.

    Parameters
    ----------
    path : str or Path
        The file.
    kind : str, optional
        Expected ``meta["kind"]``; another kind is a :class:`FormatError`.

    Raises
    ------
    FormatError
        Missing, truncated, tampered (checksum mismatch), not a keff file, a different format
        version, or the wrong kind.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FormatError(f"{path}: cannot read SEF file ({exc.strerror or exc})") from None
    header, start = _parse_header(data, path)
    extra = header.get("__metadata__")
    if not isinstance(extra, dict) or extra.get("keff.format") != FORMAT:
        raise FormatError(f"{path}: not a keff SEF file (no keff.format entry in the safetensors metadata)")
    try:
        meta = json.loads(extra["keff.meta"])
        stored = str(extra["keff.sha256"])
    except (KeyError, TypeError, ValueError) as exc:
        raise FormatError(f"{path}: SEF metadata is missing or not JSON ({exc!r})") from None
    if not isinstance(meta, dict):
        raise FormatError(f"{path}: SEF metadata is not a JSON object")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise FormatError(
            f"{path}: SEF format_version {version!r} is not supported by this keff (reads {FORMAT_VERSION})"
        )
    arrays = _read_arrays(header, data, start, path)
    if payload_sha256(meta, arrays) != stored:
        raise FormatError(f"{path}: SHA-256 mismatch: the file was modified or damaged after it was written")
    if kind is not None and meta.get("kind") != kind:
        raise FormatError(f"{path}: holds a {meta.get('kind')!r}, expected a {kind!r}")
    return arrays, meta

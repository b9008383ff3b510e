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

The SHA-256 detects damage, not malice: anyone can write a file whose checksum verifies. So the
reader treats every file as untrusted and bounds its work before it trusts anything:

- the header is at most :data:`MAX_HEADER_BYTES` and holds at most :data:`MAX_ARRAYS` arrays;
- JSON (the header and ``keff.meta``) nests at most :data:`MAX_JSON_DEPTH` deep (checked by one
  linear scan before parsing) and holds finite numbers only;
- every shape is a list of at most :data:`MAX_NDIM` non-negative ``int`` (no floats, bools or
  strings), every ``data_offsets`` a pair of ``int`` inside the file; sizes are computed with
  Python integers against the byte span, and arrays may not overlap, all before any numpy call;
- the nominal size of an array (empty axes counted as 1) is at most :data:`MAX_NOMINAL_BYTES`,
  so numpy never sees a shape it cannot represent.

What the arrays must look like for a given artifact (shapes against its declared dimensions,
dtypes, fitted scalars) is checked by the estimators that use them (:mod:`keff.estimator`).
"""

from __future__ import annotations

import hashlib
import json
import math
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
#: Largest safetensors header (JSON, including ``keff.meta``) read, in bytes.
MAX_HEADER_BYTES = 8 << 20
#: Most arrays one file may hold.
MAX_ARRAYS = 4096
#: Deepest nesting of JSON arrays/objects in the header and in ``keff.meta``.
MAX_JSON_DEPTH = 64
#: Most axes of one array.
MAX_NDIM = 8
#: Largest nominal size of one array (product of its axes, empty axes counted as 1, times the
#: item size): larger shapes are refused even when an empty axis makes the array itself empty.
MAX_NOMINAL_BYTES = 1 << 40
_SPEC_KEYS = {"dtype", "shape", "data_offsets"}
# Byte tables for json_depth: which bytes matter (quotes, brackets), and each bracket's step.
_JSON_MARKS = np.zeros(256, dtype=bool)
_JSON_MARKS[list(b'"[]{}')] = True
_JSON_STEPS = np.zeros(256, dtype=np.int8)
_JSON_STEPS[list(b"[{")] = 1
_JSON_STEPS[list(b"]}")] = -1


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

    Raises
    ------
    FormatError
        Anything :func:`load_sef` would refuse: an unsupported dtype, NaN/inf entries, more
        than :data:`MAX_ARRAYS` arrays or :data:`MAX_NDIM` axes, metadata nested deeper than
        :data:`MAX_JSON_DEPTH` or a header over :data:`MAX_HEADER_BYTES`.
    """
    from safetensors.numpy import save

    if len(arrays) > MAX_ARRAYS:
        raise FormatError(f"cannot save {len(arrays)} arrays in one SEF file (at most {MAX_ARRAYS})")
    clean = {}
    for name, a in arrays.items():
        a = np.ascontiguousarray(a)
        if a.dtype.type not in _DTYPES.values():
            raise FormatError(f"array {name!r}: dtype {a.dtype} cannot be stored in SEF")
        if a.ndim > MAX_NDIM:
            raise FormatError(f"array {name!r} has {a.ndim} axes; SEF stores at most {MAX_NDIM}")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise FormatError(f"array {name!r} holds NaN or infinite values")
        clean[name] = a
    full_meta = {**meta, "format_version": FORMAT_VERSION}
    meta_text = _canonical(full_meta)
    if json_depth(meta_text) > MAX_JSON_DEPTH:
        raise FormatError(f"SEF metadata nests deeper than {MAX_JSON_DEPTH} levels: it could not be loaded")
    header_meta = {
        "keff.format": FORMAT,
        "keff.meta": meta_text.decode("utf-8"),
        "keff.sha256": payload_sha256(full_meta, clean),
    }
    data = save(clean, metadata=header_meta)
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER_BYTES:
        raise FormatError(f"SEF header would be {n} bytes (at most {MAX_HEADER_BYTES}): the metadata is too large")
    return atomic_write_bytes(path, data)


def shown(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters: how a value read from an untrusted file is
    quoted in an error message (a hostile file may hold megabyte-long names)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def json_depth(text: bytes) -> int:
    """Deepest nesting of JSON arrays and objects in ``text``, by a few linear numpy passes.

    Escaped backslashes and quotes are dropped first, so every quote left opens or closes a
    string; brackets inside strings do not count. On malformed JSON the count is exact up to
    the first syntax error (the furthest a parser gets), so it never under-counts what a parser
    would nest.
    """
    plain = np.frombuffer(text.replace(b"\\\\", b"").replace(b'\\"', b""), dtype=np.uint8)
    marks = plain[_JSON_MARKS[plain]]  # quotes and brackets, in order
    inside = (np.cumsum(marks == ord('"'), dtype=np.int32) & 1).astype(bool)
    steps = _JSON_STEPS[marks].astype(np.int32)
    steps[inside] = 0
    return int(np.cumsum(steps, out=steps).max(initial=0))


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a finite number")


def parse_json(text: bytes | str, what: str, path: Path, *, object_pairs_hook: Any = None) -> Any:
    """Parse untrusted JSON: at most :data:`MAX_JSON_DEPTH` deep, finite numbers only
    (``object_pairs_hook`` as in :func:`json.loads`; a :class:`FormatError` it raises passes through).

    Raises
    ------
    FormatError
        Naming ``path`` and ``what`` (e.g. "SEF header"), on any defect.
    """
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    depth = json_depth(raw)
    if depth > MAX_JSON_DEPTH:
        raise FormatError(f"{path}: {what} nests {depth} levels deep (at most {MAX_JSON_DEPTH} allowed)")
    try:
        decoded = raw.decode("utf-8") if isinstance(text, bytes) else text
        return json.loads(
            decoded, parse_float=_finite_float, parse_constant=_no_constant, object_pairs_hook=object_pairs_hook
        )
    except FormatError:
        raise
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise FormatError(f"{path}: {what} is not valid JSON ({shown(str(exc), 120)})") from None


def _array_counter(path: Path) -> Any:
    """A JSON object hook that stops parsing as soon as a header holds more array entries than
    :data:`MAX_ARRAYS` (a hostile header of 40,000 entries is refused after reading a tenth of it)."""
    count = 0

    def hook(pairs: list[tuple[str, Any]]) -> dict:
        nonlocal count
        obj = dict(pairs)
        if obj.keys() == _SPEC_KEYS:
            count += 1
            if count > MAX_ARRAYS:
                raise FormatError(
                    f"{path}: SEF header lists more than {MAX_ARRAYS} arrays (at most {MAX_ARRAYS} allowed)"
                )
        return obj

    return hook


def _parse_header(data: bytes, path: Path) -> tuple[dict, int]:
    if len(data) < 8:
        raise FormatError(f"{path}: truncated SEF file ({len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER_BYTES:
        raise FormatError(f"{path}: SEF header declares {n} bytes (at most {MAX_HEADER_BYTES} allowed)")
    if 8 + n > len(data):
        raise FormatError(f"{path}: truncated or corrupt SEF header (declares {n} bytes)")
    header = parse_json(data[8 : 8 + n], "SEF header", path, object_pairs_hook=_array_counter(path))
    if not isinstance(header, dict):
        raise FormatError(f"{path}: SEF header is not a JSON object")
    n_arrays = len(header) - ("__metadata__" in header)
    if n_arrays > MAX_ARRAYS:
        raise FormatError(f"{path}: SEF header lists {n_arrays} arrays (at most {MAX_ARRAYS} allowed)")
    return header, 8 + n


def _is_count(value: Any) -> bool:
    """A JSON integer >= 0 (not a float, bool or string)."""
    return type(value) is int and value >= 0


def _array_entry(name: str, spec: Any, body: int, path: Path) -> tuple[np.dtype, tuple[int, ...], int, int]:
    """Validate one header entry against the data section of ``body`` bytes, with Python
    integers only; returns ``(dtype, shape, lo, hi)``."""
    where = f"{path}: array {shown(name)}"
    if not isinstance(spec, dict) or set(spec) != _SPEC_KEYS:
        raise FormatError(f"{where}: its entry must be an object with exactly dtype, shape and data_offsets")
    code, shape, offsets = spec["dtype"], spec["shape"], spec["data_offsets"]
    if not isinstance(code, str) or code not in _DTYPES:
        raise FormatError(f"{where}: dtype {shown(code)} is not one of {', '.join(_DTYPES)}")
    if not (isinstance(shape, list) and len(shape) <= MAX_NDIM and all(_is_count(s) for s in shape)):
        raise FormatError(f"{where}: shape {shown(shape)} is not a list of at most {MAX_NDIM} integers >= 0")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(o) for o in offsets)):
        raise FormatError(f"{where}: data_offsets {shown(offsets)} is not a pair of integers >= 0")
    lo, hi = offsets
    if not lo <= hi <= body:
        raise FormatError(f"{where}: data_offsets {shown(offsets)} lie outside the {body}-byte data section")
    dtype = np.dtype(_DTYPES[code]).newbyteorder("<")
    if math.prod(max(s, 1) for s in shape) * dtype.itemsize > MAX_NOMINAL_BYTES:
        raise FormatError(f"{where}: shape {shown(shape)} is too large (over {MAX_NOMINAL_BYTES} bytes)")
    needed = math.prod(shape) * dtype.itemsize
    if needed != hi - lo:
        raise FormatError(f"{where}: shape {shape} of {code} needs {needed} bytes but its data spans {hi - lo}")
    return dtype, tuple(shape), lo, hi


def _read_arrays(header: dict, data: bytes, start: int, path: Path) -> dict[str, np.ndarray]:
    body = len(data) - start
    entries = {name: _array_entry(name, spec, body, path) for name, spec in header.items() if name != "__metadata__"}
    spans = sorted((lo, hi, name) for name, (_, _, lo, hi) in entries.items())
    for (_, hi, a), (lo, _, b) in zip(spans, spans[1:]):
        if lo < hi:
            raise FormatError(f"{path}: arrays {shown(a)} and {shown(b)} overlap")
    arrays = {}
    for name, (dtype, shape, lo, _) in entries.items():
        flat = np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=start + lo)
        arrays[name] = flat.reshape(shape).astype(dtype.newbyteorder("="))
    return arrays


def load_sef(path: str | Path, *, kind: str | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read and verify a SEF file: returns ``(arrays, meta)``.

    The work is linear in the file size and bounded (see the module notes); no array is
    allocated before the whole header has been checked.

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
        version, the wrong kind, or over one of the bounds.
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
    meta_text, stored = extra.get("keff.meta"), extra.get("keff.sha256")
    if not isinstance(meta_text, str) or not isinstance(stored, str):
        raise FormatError(f"{path}: SEF metadata lacks the keff.meta or keff.sha256 string")
    meta = parse_json(meta_text, "SEF metadata (keff.meta)", path)
    if not isinstance(meta, dict):
        raise FormatError(f"{path}: SEF metadata is not a JSON object")
    version = meta.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise FormatError(
            f"{path}: SEF format_version {shown(version)} is not supported by this keff (reads {FORMAT_VERSION})"
        )
    arrays = _read_arrays(header, data, start, path)
    if payload_sha256(meta, arrays) != stored:
        raise FormatError(f"{path}: SHA-256 mismatch: the file was modified or damaged after it was written")
    if kind is not None and meta.get("kind") != kind:
        raise FormatError(f"{path}: holds a {shown(meta.get('kind'))}, expected a {kind!r}")
    return arrays, meta

"""Shared readers for the text formats in :mod:`keff.data`: numbered lines, JSONL objects, fields.

Every reader reads the file once as bytes, so the SHA-256 recorded for provenance is the hash of
exactly the bytes that were parsed. Errors are :class:`~keff.errors.DataError` naming the file and
the 1-based line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from keff.atomic import sha256_bytes
from keff.errors import DataError


def read_lines(path: str | Path, *, what: str = "file") -> tuple[str, list[tuple[int, str]]]:
    """Read a UTF-8 text file as numbered non-blank lines.

    Parameters
    ----------
    path : str or Path
        The file to read.
    what : str
        What the file should be, used in the "missing file" message.

    Returns
    -------
    sha256 : str
        Hex SHA-256 of the file's bytes.
    lines : list of (int, str)
        ``(line_number, line)`` for every line that is not blank, 1-based, with the line ending
        (``\\n`` or ``\\r\\n``) removed.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"missing {what}: expected a file here", path=path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(f"not valid UTF-8 ({exc.reason})", path=path, line=line) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    out = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw[:-1] if raw.endswith("\r") else raw
        if line.strip():
            out.append((number, line))
    return sha256_bytes(data), out


def read_jsonl(path: str | Path, *, what: str = "JSONL file") -> tuple[str, list[tuple[int, dict]]]:
    """Read a JSONL file whose every non-blank line is a JSON object.

    Returns
    -------
    sha256 : str
        Hex SHA-256 of the file's bytes.
    records : list of (int, dict)
        ``(line_number, object)`` per non-blank line, 1-based.

    Raises
    ------
    DataError
        Missing file, invalid UTF-8, malformed JSON, or a line that is not a JSON object.
    """
    sha, lines = read_lines(path, what=what)
    records = []
    for number, line in lines:
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"malformed JSON: {exc.msg} at column {exc.colno}", path=path, line=number) from None
        if not isinstance(obj, dict):
            raise DataError(f"expected a JSON object, got {type(obj).__name__}", path=path, line=number)
        records.append((number, obj))
    return sha, records


def get_str(
    obj: dict[str, Any],
    field: str,
    *,
    path: str | Path,
    line: int,
    item_id: str | None = None,
    default: str | None = None,
    allow_int: bool = False,
) -> str:
    """Return ``obj[field]`` as a string, or raise a DataError naming file, line and id.

    Parameters
    ----------
    obj : dict
        One parsed JSON record.
    field : str
        The key to read.
    path, line, item_id
        Where the record came from (for the error message).
    default : str, optional
        Value when the field is absent; when None the field is required.
    allow_int : bool
        Accept a JSON integer (not a boolean) and return its decimal string.
    """
    if field not in obj:
        if default is not None:
            return default
        raise DataError(f"missing field {field!r}", path=path, line=line, item_id=item_id)
    value = obj[field]
    if isinstance(value, str):
        return value
    if allow_int and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    kind = "a string or an integer" if allow_int else "a string"
    raise DataError(
        f"field {field!r} must be {kind}, got {type(value).__name__}",
        path=path,
        line=line,
        item_id=item_id,
    )


class UniqueIds:
    """Track ids seen in one file and reject a repeat, naming the line of the first occurrence."""

    def __init__(self, path: str | Path, what: str = "id") -> None:
        self.path = path
        self.what = what
        self.first_line: dict[str, int] = {}

    def add(self, item_id: str, line: int) -> None:
        """Record ``item_id`` seen at ``line``; raise DataError if it was seen before."""
        first = self.first_line.setdefault(item_id, line)
        if first != line:
            raise DataError(
                f"duplicate {self.what} (first seen on line {first})",
                path=self.path,
                line=line,
                item_id=item_id,
            )

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.first_line

    def __iter__(self) -> Iterator[str]:
        return iter(self.first_line)

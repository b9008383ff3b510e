"""Atomic file writes and content hashes.

A write goes to a temporary file in the destination folder and is renamed over the target only
when complete, so a crash or an exception never leaves a half-written file behind and never
destroys the previous version.

Permissions: a file keff writes gets the mode an ordinary ``open(path, "w")`` would give it,
``0o666 & ~umask`` (the temporary file is created with ``os.open(..., 0o666)``, so the kernel
applies the umask and any default ACL), unless the target already exists, in which case the new
version keeps the old file's mode. So a shared cache or results folder is as readable as the
user's umask says, never silently private (``tempfile.mkstemp`` would give 0600).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

#: Mode asked for when creating a file; the process umask is applied by the kernel.
CREATE_MODE = 0o666


def _existing_mode(target: Path) -> int | None:
    """Permission bits of ``target``, or None when it does not exist."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        return None


def _create_temp(target: Path, suffix: str) -> Path:
    """Create an empty, uniquely named file beside ``target`` with mode ``0o666 & ~umask``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}{suffix}"
        try:
            fd = os.open(tmp, flags, CREATE_MODE)
        except FileExistsError:  # pragma: no cover - 48 random bits collided
            continue
        os.close(fd)
        return tmp


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success.

    The new file's mode is ``0o666 & ~umask``, or the mode of the ``target`` it replaces (see the
    module docstring). On an exception the temporary file is removed and ``target`` is left
    untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    keep_mode = _existing_mode(target)
    tmp_path = _create_temp(target, suffix)
    try:
        yield tmp_path
        if keep_mode is not None:
            os.chmod(tmp_path, keep_mode)
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def atomic_write_bytes(target: str | Path, data: bytes, *, fsync: bool = True) -> Path:
    """Write ``data`` to ``target`` atomically and return the target path.

    Parameters
    ----------
    target : str or Path
        File to (re)place.
    data : bytes
        Its new content.
    fsync : bool
        Flush the file to disk before the rename (default). Bulk writers of self-verifying files
        may pass False and sync once at the end (see :mod:`keff.encoders.cache`).
    """
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
    return Path(target)


def atomic_write_text(target: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``target`` atomically and return the target path."""
    return atomic_write_bytes(target, text.encode("utf-8"))


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's contents, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(chunk_size), b""):
            h.update(chunk)
    return h.hexdigest()

"""Output paths of CLI verbs: checked before any long work, never replaced without ``--overwrite``.

Every verb that writes files calls :func:`check_output` (or :func:`check_output_dir`) for each of
its outputs first, so a typo in ``--out`` or an unwritable folder fails in the first second, not
after an hour of encoding; the files themselves are written atomically (``keff.atomic``), so a
failure never leaves a half-written output behind.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from keff.errors import DataError

OVERWRITE = typer.Option(False, "--overwrite", help="Replace existing output files.")


def _nearest_existing(path: Path) -> Path:
    for candidate in [path, *path.parents]:
        if candidate.exists():
            return candidate
    return Path.cwd()


def _check_writable_folder(folder: Path, target: Path) -> None:
    """Prove ``folder`` (existing) accepts a new file by creating and removing one."""
    import tempfile

    if not folder.is_dir():
        raise DataError(f"cannot write here: {folder} is not a folder", path=target)
    try:
        fd, probe = tempfile.mkstemp(prefix=".keff-write-check-", dir=folder)
    except OSError as exc:
        raise DataError(f"cannot write in {folder} ({exc.strerror or exc})", path=target) from None
    os.close(fd)
    os.unlink(probe)


def check_output(path: Path | None, *, overwrite: bool, option: str = "--out") -> Path | None:
    """Check that the file ``path`` may be written: not a folder, not an existing file unless
    ``overwrite``, and its folder (or the nearest existing parent) writable. None passes.

    Raises
    ------
    DataError
        Naming the path and what to do.
    """
    if path is None:
        return None
    path = Path(path).expanduser()
    if path.is_dir():
        raise DataError(f"{option} names a folder; give a file name", path=path)
    if path.exists() and not overwrite:
        raise DataError(f"already exists; pass --overwrite to replace it (or choose another {option})", path=path)
    _check_writable_folder(_nearest_existing(path.parent), path)
    return path


def check_output_dir(path: Path, names: list[str], *, overwrite: bool, option: str = "--out") -> Path:
    """Check that files ``names`` may be written into the folder ``path`` (created later)."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise DataError(f"{option} must be a folder, but a file has that name", path=path)
    clash = [n for n in names if (path / n).exists()]
    if clash and not overwrite:
        raise DataError(
            f"already holds {', '.join(clash)}; pass --overwrite to replace them (or choose another {option})",
            path=path,
        )
    _check_writable_folder(_nearest_existing(path), path)
    return path

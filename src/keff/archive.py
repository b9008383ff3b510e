"""Safe zip extraction and atomic folder replacement, for downloaded data sets and models.

An archive is checked whole (CRCs, no absolute paths, no ``..``, no symbolic links) before a
single file is written, and a finished folder replaces its target in one rename, so a failure
never leaves a half-extracted data set or model where keff would load it.
"""

from __future__ import annotations

import os
import re
import stat
import zipfile
from collections.abc import Collection
from pathlib import Path, PurePosixPath

from keff.errors import DataError
from keff.progress import progress_bar


def unsafe_member_reason(info: zipfile.ZipInfo) -> str | None:
    """Why a zip member must not be extracted, or None when it is safe."""
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "absolute path"
    if ".." in PurePosixPath(name).parts:
        return "'..' in path"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link"
    return None


def safe_extract(
    zip_path: Path,
    into: Path,
    *,
    what: str,
    skip_names: Collection[str] = (),
    progress: bool | None = False,
) -> None:
    """Check ``zip_path`` whole, then extract it into ``into``.

    Parameters
    ----------
    zip_path : Path
        The archive.
    into : Path
        Destination folder (created as needed).
    what : str
        How to name the archive in errors (a URL, "the joined mpnet archive", ...).
    skip_names : collection of str
        Lower-case file names not to extract (e.g. ``{"desktop.ini"}``).
    progress : bool, optional
        Progress bar over members (None: on a terminal).

    Raises
    ------
    DataError
        Not a zip, a member failing its CRC, or an unsafe member; nothing is extracted then.
    """
    try:
        with zipfile.ZipFile(zip_path) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise DataError(f"{what}: corrupt zip archive (bad CRC in member {bad!r})")
            members = zf.infolist()
            for info in members:
                reason = unsafe_member_reason(info)
                if reason is not None:
                    raise DataError(f"{what}: refusing unsafe zip member {info.filename!r} ({reason})")
            with progress_bar(f"extracting {zip_path.name}", len(members), enabled=progress) as bar:
                for info in members:
                    bar.advance(1)
                    if PurePosixPath(info.filename.replace("\\", "/")).name.lower() not in skip_names:
                        zf.extract(info, into)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise DataError(f"{what}: not a valid zip archive ({exc})") from None


def swap_into_place(folder: Path, target: Path, aside: Path) -> None:
    """Rename ``folder`` to ``target``; an existing target is moved to ``aside`` first and put
    back if the second rename fails, so a failed replacement never loses the old copy."""
    had_old = target.exists()
    if had_old:
        os.replace(target, aside)
    try:
        os.replace(folder, target)
    except OSError:
        if had_old:
            os.replace(aside, target)
        raise

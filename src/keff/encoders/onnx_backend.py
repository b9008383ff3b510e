"""ONNX backend: an onnxruntime session plus a ``tokenizers`` tokenizer, no torch.

The sentence vector is pooled by keff from the graph's token-level hidden state (the single
float output of rank 3, found by shape, not by name): ``"mean"`` averages it over the attention
mask (sentence-transformers' mean pooling), ``"cls"`` takes the first token. Texts are truncated
to ``max_length`` tokens and each batch is padded to its longest item. They arrive already cut to
:data:`keff.encoders.base.MAX_TEXT_CHARS` characters (:meth:`BaseEncoder.prepare`), since the
tokenizer reads a whole text before truncating it.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np

from keff.encoders.base import BaseEncoder
from keff.encoders.fingerprint import files_identity
from keff.errors import KeffError, ModelNotAvailable, require

Pooling = Literal["mean", "cls"]
_FEEDABLE = ("input_ids", "attention_mask", "token_type_ids")


def bundled_tokenizer() -> Path:
    """Path of keff's bundled uncased BERT tokenizer (see ``resources/README.md``)."""
    return Path(str(resources.files("keff.encoders") / "resources" / "bert-base-uncased-tokenizer.json"))


def pool(hidden: np.ndarray, mask: np.ndarray, pooling: Pooling) -> np.ndarray:
    """Pool token vectors into one vector per text.

    Parameters
    ----------
    hidden : numpy.ndarray
        (batch, seq, dim) token vectors.
    mask : numpy.ndarray
        (batch, seq) attention mask, 1 for real tokens.
    pooling : {"mean", "cls"}
        Masked mean over tokens, or the first token.

    Returns
    -------
    numpy.ndarray
        float32, (batch, dim).
    """
    if pooling == "cls":
        return hidden[:, 0].astype(np.float32)
    m = mask[..., None].astype(np.float32)
    summed = (hidden.astype(np.float32) * m).sum(axis=1)
    return (summed / np.maximum(m.sum(axis=1), 1e-9)).astype(np.float32)


class OnnxEncoder(BaseEncoder):
    """A transformer exported to ONNX, pooled by keff.

    Parameters
    ----------
    model_path : str or Path
        The ``.onnx`` graph. Its inputs must be ``input_ids`` and ``attention_mask``, plus
        optionally ``token_type_ids`` (all int64).
    tokenizer_path : str or Path, optional
        A ``tokenizers`` JSON file (default: keff's bundled uncased BERT tokenizer).
    name : str, optional
        Display/registry name (default: the model path).
    pooling : {"mean", "cls"}
        How token vectors become a sentence vector.
    max_length : int
        Truncate texts to this many tokens (including special tokens).
    output_name : str, optional
        The hidden-state output to pool; by default the only float output of rank 3.
    dim : int, optional
        Declared width (the session then loads on first use and is checked against it).
    normalize, batch_size, query_prefix, doc_prefix
        See :class:`keff.encoders.base.BaseEncoder`.
    """

    backend = "onnx"

    def __init__(
        self,
        model_path: str | Path,
        *,
        tokenizer_path: str | Path | None = None,
        name: str | None = None,
        pooling: Pooling = "mean",
        max_length: int = 256,
        output_name: str | None = None,
        dim: int | None = None,
        normalize: bool = True,
        batch_size: int = 32,
        query_prefix: str = "",
        doc_prefix: str = "",
    ) -> None:
        if pooling not in ("mean", "cls"):
            raise KeffError(f"pooling must be 'mean' or 'cls', got {pooling!r}")
        if max_length < 2:
            raise KeffError(f"max_length must be >= 2, got {max_length}")
        self.model_path = Path(model_path).expanduser().resolve()
        self.tokenizer_path = Path(tokenizer_path or bundled_tokenizer()).expanduser().resolve()
        for p in (self.model_path, self.tokenizer_path):
            if not p.is_file():
                raise ModelNotAvailable(f"{p}: file not found")
        super().__init__(
            name or str(self.model_path),
            dim=dim,
            normalize=normalize,
            batch_size=batch_size,
            query_prefix=query_prefix,
            doc_prefix=doc_prefix,
        )
        self.pooling = pooling
        self.max_length = int(max_length)
        self.max_tokens = self.max_length
        self.output_name = output_name
        self._requested_output = output_name
        self._session: Any = None
        self._tokenizer: Any = None
        self._inputs: list[str] = []

    # -- loading -------------------------------------------------------------------------------
    def _select_output(self, outputs: list[Any]) -> Any:
        def is_hidden(o: Any) -> bool:
            return o.type == "tensor(float)" and len(o.shape) == 3 and isinstance(o.shape[2], int)

        listing = ", ".join(f"{o.name} {o.type} {o.shape}" for o in outputs)
        if self.output_name is not None:
            chosen = [o for o in outputs if o.name == self.output_name]
            if not chosen or not is_hidden(chosen[0]):
                raise ModelNotAvailable(
                    f"{self.model_path}: output {self.output_name!r} is not a float hidden state "
                    f"of shape (batch, seq, dim); outputs are: {listing}"
                )
            return chosen[0]
        hidden = [o for o in outputs if is_hidden(o)]
        if len(hidden) != 1:
            raise ModelNotAvailable(
                f"{self.model_path}: expected exactly one float output of shape (batch, seq, dim), "
                f"found {len(hidden)}; pass output_name=. Outputs are: {listing}"
            )
        return hidden[0]

    def _load(self) -> int:
        ort = require("onnxruntime", "onnx")
        tokenizers = require("tokenizers", "onnx")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = os.cpu_count() or 1
        opts.inter_op_num_threads = 1
        try:
            session = ort.InferenceSession(str(self.model_path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelNotAvailable(f"{self.model_path}: onnxruntime cannot load it: {exc}") from exc
        names = [i.name for i in session.get_inputs()]
        unknown = [n for n in names if n not in _FEEDABLE]
        if unknown or not {"input_ids", "attention_mask"} <= set(names):
            raise ModelNotAvailable(
                f"{self.model_path}: graph inputs {names}; keff can feed only {list(_FEEDABLE)} "
                "and needs input_ids and attention_mask"
            )
        output = self._select_output(session.get_outputs())
        tok = tokenizers.Tokenizer.from_file(str(self.tokenizer_path))
        pad = tok.padding or {}
        pad_token = pad.get("pad_token", "[PAD]")
        pad_id = tok.token_to_id(pad_token)
        if pad_id is None:
            raise ModelNotAvailable(f"{self.tokenizer_path}: no padding token {pad_token!r}")
        tok.enable_truncation(max_length=self.max_length)
        tok.enable_padding(pad_id=pad_id, pad_token=pad_token)  # pad to the batch's longest
        self._session, self._tokenizer, self._inputs = session, tok, names
        self.output_name = output.name
        return int(output.shape[2])

    @property
    def session(self) -> Any:
        """The onnxruntime ``InferenceSession`` (loaded on first use)."""
        self._ensure_loaded()
        return self._session

    def _identity(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "model": files_identity([self.model_path, self.tokenizer_path]),
            "max_seq_length": self.max_length,
            "pooling": self.pooling,
            "output": self._requested_output,
        }

    # -- encoding ------------------------------------------------------------------------------
    def tokenize(self, texts: list[str]) -> dict[str, np.ndarray]:
        """Graph inputs for prepared ``texts``: int64 arrays of shape (batch, seq)."""
        self._ensure_loaded()
        enc = self._tokenizer.encode_batch(texts)
        arrays = {
            "input_ids": [e.ids for e in enc],
            "attention_mask": [e.attention_mask for e in enc],
            "token_type_ids": [e.type_ids for e in enc],
        }
        return {n: np.asarray(arrays[n], dtype=np.int64) for n in self._inputs}

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        feeds = self.tokenize(texts)
        (hidden,) = self._session.run([self.output_name], feeds)
        return pool(hidden, feeds["attention_mask"], self.pooling)

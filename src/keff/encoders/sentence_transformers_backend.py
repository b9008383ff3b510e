"""Sentence-transformers backend: a local model folder, or a hub name where a hub is reachable.

torch and sentence_transformers are imported only when the model is loaded. A local folder is
loaded lazily (on the first encode, or when ``dim`` is asked and was not declared), so a fully
cached encode never imports torch. keff applies query/document prefixes itself and passes
``prompt=""`` so a folder's ``default_prompt_name`` never adds a hidden prefix. A model loads
quietly (:func:`quiet_model_load`): no "Loading weights" progress bars.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from keff.encoders.base import BaseEncoder
from keff.encoders.fingerprint import files_identity, model_files
from keff.errors import DataError, ModelNotAvailable, require


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise DataError(f"invalid JSON ({exc})", path=path) from exc


def read_st_config(folder: Path) -> dict[str, Any]:
    """max_seq_length and pooling of a sentence-transformers folder, read without loading it.

    Returns
    -------
    dict
        ``{"max_seq_length": int or None, "pooling": list of mode names or None}``.
    """
    modules_file = folder / "modules.json"
    if not modules_file.is_file():
        raise ModelNotAvailable(f"{folder}: not a sentence-transformers folder (no modules.json)")
    max_len = None
    bert_cfg = folder / "sentence_bert_config.json"
    if bert_cfg.is_file():
        max_len = _read_json(bert_cfg).get("max_seq_length")
    tok_cfg = folder / "tokenizer_config.json"
    if max_len is None and tok_cfg.is_file():  # sentence-transformers >= 6 keeps it with the tokenizer
        max_len = _read_json(tok_cfg).get("model_max_length")
    pooling = None
    for module in _read_json(modules_file):
        if str(module.get("type", "")).endswith(".Pooling"):
            cfg = folder / module.get("path", "") / "config.json"
            if cfg.is_file():
                conf = _read_json(cfg)
                pooling = sorted(
                    k.removeprefix("pooling_mode_")
                    for k, v in conf.items()
                    if k.startswith("pooling_mode_") and v is True
                )
                if not pooling and isinstance(conf.get("pooling_mode"), str):  # sentence-transformers >= 6
                    pooling = [conf["pooling_mode"]]
    return {"max_seq_length": max_len, "pooling": pooling}


@contextlib.contextmanager
def quiet_model_load() -> Iterator[None]:
    """Load a model without transformers' progress bars ("Loading weights") or info logs.

    For the duration of the block, transformers' progress bars are off and its log level is at
    least WARNING (so warnings such as weights missing from a checkpoint still show);
    huggingface_hub's download bars keep their setting, so a first download from the hub still
    shows progress. Both settings are restored afterwards. Imports transformers: call it only
    where a model loads.
    """
    import huggingface_hub.utils as hub_utils
    from transformers.utils import logging as tf_logging

    bars_on = tf_logging.is_progress_bar_enabled()
    hub_off = hub_utils.are_progress_bars_disabled()
    verbosity = tf_logging.get_verbosity()
    tf_logging.disable_progress_bar()  # this turns huggingface_hub's bars off too ...
    if not hub_off:
        hub_utils.enable_progress_bars()  # ... so put them back as they were
    tf_logging.set_verbosity(max(verbosity, tf_logging.WARNING))
    try:
        yield
    finally:
        tf_logging.set_verbosity(verbosity)
        if bars_on:
            with warnings.catch_warnings():  # huggingface_hub warns when its env variable forbids bars
                warnings.simplefilter("ignore")
                tf_logging.enable_progress_bar()
            if hub_off:
                hub_utils.disable_progress_bars()


def _hub_snapshot(name: str) -> tuple[Any, Path]:
    """Load a hub model with sentence-transformers and return it with its local snapshot folder."""
    st = require("sentence_transformers", "st")
    hub = require("huggingface_hub", "st")
    try:
        with quiet_model_load():
            model = st.SentenceTransformer(name, device="cpu")
        folder = Path(hub.snapshot_download(repo_id=name, local_files_only=True))
    except Exception as exc:  # any loader failure means: not available here
        raise ModelNotAvailable(
            f"could not load sentence-transformers model {name!r} from the hub: {type(exc).__name__}: {exc}"
        ) from exc
    return model, folder


class SentenceTransformerEncoder(BaseEncoder):
    """A sentence-transformers model run on CPU with torch.

    Parameters
    ----------
    model : str or Path
        A local sentence-transformers folder (with ``modules.json``), or a hub name such as
        ``"sentence-transformers/all-MiniLM-L6-v2"`` (downloaded and loaded at construction;
        fails with :class:`ModelNotAvailable` where no hub is reachable).
    name : str, optional
        Display/registry name (default: ``str(model)``).
    dim : int, optional
        Declared width; lets a local folder stay unloaded until it must run.
    normalize, batch_size, query_prefix, doc_prefix
        See :class:`keff.encoders.base.BaseEncoder`.
    """

    backend = "sentence-transformers"

    def __init__(
        self,
        model: str | Path,
        *,
        name: str | None = None,
        dim: int | None = None,
        normalize: bool = True,
        batch_size: int = 32,
        query_prefix: str = "",
        doc_prefix: str = "",
    ) -> None:
        super().__init__(
            name or str(model),
            dim=dim,
            normalize=normalize,
            batch_size=batch_size,
            query_prefix=query_prefix,
            doc_prefix=doc_prefix,
        )
        self._model: Any = None
        path = Path(model).expanduser()
        if path.is_dir():
            self.folder = path.resolve()
            self.config = read_st_config(self.folder)
        else:
            self._model, self.folder = _hub_snapshot(str(model))
            self.config = read_st_config(self.folder)
            self._ensure_loaded()
        max_len = self.config.get("max_seq_length")
        self.max_tokens = int(max_len) if isinstance(max_len, int) and max_len > 0 else None

    def _load(self) -> int:
        torch = require("torch", "st")
        torch.set_num_threads(os.cpu_count() or 1)
        if self._model is None:
            st = require("sentence_transformers", "st")
            try:
                with quiet_model_load():
                    self._model = st.SentenceTransformer(str(self.folder), device="cpu")
            except Exception as exc:
                raise ModelNotAvailable(
                    f"{self.folder}: sentence-transformers could not load this folder: {type(exc).__name__}: {exc}"
                ) from exc
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dim = get_dim()
        if dim is None:
            raise ModelNotAvailable(f"{self.folder}: the model does not report its output width")
        return int(dim)

    def _identity(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "model": files_identity(model_files(self.folder), root=self.folder),
            **self.config,
        }

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        vecs = self._model.encode(
            texts,
            prompt="",
            batch_size=len(texts),
            show_progress_bar=False,
            convert_to_numpy=True,
            normalize_embeddings=False,
        )
        return np.asarray(vecs, dtype=np.float32)

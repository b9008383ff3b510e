"""Sentence-transformers plumbing for :mod:`keff.train.finetune` (torch imported on first call).

Loading a base model by keff encoder name or folder, inserting a seeded orthogonal output layer,
running the model up to (not through) its final L2 normalisation, and saving a model folder
atomically. sentence_transformers and torch are imported inside the functions, so importing this
module stays light.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from keff.archive import swap_into_place
from keff.encoders import SentenceTransformerEncoder, get_encoder
from keff.encoders.sentence_transformers_backend import quiet_model_load
from keff.errors import KeffError, ModelNotAvailable, require

#: Marker file that makes a folder a keff fine-tuning output (and so safe to replace).
MARKER = "keff_finetune.json"


def st_modules() -> Any:
    """The module namespace holding ``Dense`` and ``Normalize`` in this sentence-transformers.

    sentence-transformers >= 6 moved them to ``sentence_transformers.sentence_transformer.modules``
    and deprecated ``sentence_transformers.models``, which older releases (>= 3) use.
    """
    require("sentence_transformers", "st")
    try:
        from sentence_transformers.sentence_transformer import modules
    except ImportError:
        from sentence_transformers import models as modules
    return modules


def resolve_base_model(base: str | Path) -> Path:
    """The sentence-transformers folder of ``base``.

    Parameters
    ----------
    base : str or Path
        A keff encoder name (``"minilm"``), a sentence-transformers folder, or a hub name where a
        hub is reachable; resolved with :func:`keff.encoders.get_encoder`.

    Raises
    ------
    ModelNotAvailable
        ``base`` is unknown, not installed, or not a sentence-transformers model (e.g. an ONNX
        encoder), with the message of the registry.
    """
    encoder = get_encoder(str(base), cache=False)
    if not isinstance(encoder, SentenceTransformerEncoder):
        raise ModelNotAvailable(
            f"cannot fine-tune {str(base)!r}: it is a {getattr(encoder, 'backend', type(encoder).__name__)} "
            "encoder; fine-tuning needs a sentence-transformers model (e.g. 'minilm' or a model folder)"
        )
    return Path(encoder.folder)


def load_model(folder: Path) -> Any:
    """Load a sentence-transformers folder on CPU as a ``SentenceTransformer``."""
    st = require("sentence_transformers", "st")
    require("torch", "st")
    try:
        with quiet_model_load():
            return st.SentenceTransformer(str(folder), device="cpu")
    except Exception as exc:  # any loader failure: the folder is not usable here
        raise ModelNotAvailable(
            f"{folder}: sentence-transformers could not load this folder: {type(exc).__name__}: {exc}"
        ) from exc


def embedding_dim(model: Any) -> int:
    """Width of ``model``'s sentence embeddings."""
    get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    dim = get_dim()
    if dim is None:
        raise KeffError("the model does not report its sentence-embedding width")
    return int(dim)


def _ends_with_normalize(model: Any) -> bool:
    return isinstance(list(model.children())[-1], st_modules().Normalize)


def random_orthogonal(d: int, seed: int) -> np.ndarray:
    """A Haar-random orthogonal matrix (QR of a seeded Gaussian, signs fixed).

    Returns
    -------
    numpy.ndarray, shape (d, d), float32
    """
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return (q * np.sign(np.diag(r))).astype(np.float32)


def with_rotation(model: Any, seed: int) -> Any:
    """A copy of ``model``'s pipeline with a trainable rotation after pooling, before normalising.

    The new module is ``Dense(d, d, bias=False, activation=identity)`` whose weight starts as a
    seeded random orthogonal matrix (:func:`random_orthogonal`), so output vectors are those of
    ``model`` expressed in a rotated frame. It is inserted just before a trailing ``Normalize``
    module, or appended when there is none. The returned model shares the other modules'
    weights with ``model``.
    """
    st = require("sentence_transformers", "st")
    torch = require("torch", "st")
    d = embedding_dim(model)
    dense = st_modules().Dense(
        d, d, bias=False, activation_function=torch.nn.Identity(),
        init_weight=torch.from_numpy(random_orthogonal(d, seed)),
    )  # fmt: skip
    modules = list(model.children())
    at = len(modules) - 1 if _ends_with_normalize(model) else len(modules)
    return st.SentenceTransformer(
        modules=[*modules[:at], dense, *modules[at:]],
        device="cpu",
        prompts=getattr(model, "prompts", None),
        default_prompt_name=getattr(model, "default_prompt_name", None),
        similarity_fn_name=getattr(model, "similarity_fn_name", None),
        truncate_dim=getattr(model, "truncate_dim", None),
    )


def raw_embedder(model: Any) -> Callable[[list[str]], Any]:
    """A function ``texts -> (b, d) tensor``: ``model``'s embeddings before its final normalisation.

    Tokenises with the model's own tokeniser (``preprocess`` in sentence-transformers >= 6,
    ``tokenize`` before; truncation follows ``model.max_seq_length``) and runs every module except
    a trailing ``Normalize``, so the norms the guardrails watch are the real ones.
    """
    body = list(model.children())
    if _ends_with_normalize(model):
        body = body[:-1]
    tokenize = getattr(model, "preprocess", None) or model.tokenize

    def embed(texts: list[str]) -> Any:
        features = tokenize(texts)
        for module in body:
            features = module(features)
        return features["sentence_embedding"]

    return embed


@contextlib.contextmanager
def max_seq_length(model: Any, limit: int) -> Iterator[int]:
    """Truncate inputs to ``min(limit, model.max_seq_length)`` tokens inside the block; restore after.

    Yields the length in force.
    """
    original = model.max_seq_length
    model.max_seq_length = limit if original is None else min(limit, original)
    try:
        yield model.max_seq_length
    finally:
        model.max_seq_length = original


def check_out_dir(out_dir: Path) -> None:
    """Refuse an ``out_dir`` that exists and is not an empty folder or a previous keff output.

    Replacing it must never destroy a file or folder keff did not write.
    """
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise KeffError(f"{out_dir}: exists and is not a folder; choose another out_dir")
    if any(out_dir.iterdir()) and not (out_dir / MARKER).is_file():
        raise KeffError(
            f"{out_dir}: a non-empty folder without {MARKER}, so not a keff fine-tuning output; "
            "refusing to replace it (remove it or choose another out_dir)"
        )


def save_folder(out_dir: Path, write: Callable[[Path], None]) -> None:
    """Run ``write(tmp)`` on a temporary folder beside ``out_dir``, then move it into place.

    An existing ``out_dir`` is replaced only after ``write`` succeeded (and only if
    :func:`check_out_dir` still accepts it); on any failure the temporary folder is removed and
    ``out_dir`` is left as it was.
    """
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stem = f".{out_dir.name}.{secrets.token_hex(6)}"
    tmp, aside = out_dir.parent / f"{stem}.tmp", out_dir.parent / f"{stem}.old"
    tmp.mkdir()  # not mkdtemp: the folder keeps the usual (umask) permissions once renamed
    try:
        write(tmp)
        check_out_dir(out_dir)  # again: it may have changed while the model trained
        swap_into_place(tmp, out_dir, aside)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if aside.exists():
        shutil.rmtree(aside)


def save_model(model: Any, folder: Path) -> None:
    """Save ``model`` as a sentence-transformers folder (safetensors weights, no model card)."""
    model.save(os.fspath(folder), create_model_card=False, safe_serialization=True)

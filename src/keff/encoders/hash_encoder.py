"""A deterministic token-hash encoder for unit tests. It is NOT a semantic model."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import numpy as np

from keff.encoders.base import BaseEncoder
from keff.errors import KeffError

_TOKEN = re.compile(r"\w+", re.UNICODE)

DESCRIPTION = "test-only token-hash bag of words; NOT a semantic model (no meaning, only shared words)"


class HashEncoder(BaseEncoder):
    """Signed feature hashing of lower-cased word tokens: a test double, NOT a semantic model.

    It is fast, needs no weights and is deterministic, but it captures no meaning beyond shared
    words. Never use it to measure retrieval quality. Like every backend it reads only the first
    :data:`keff.encoders.base.MAX_TEXT_CHARS` characters of a text.

    Parameters
    ----------
    dim : int
        Output width (>= 1).
    seed : int
        Changes which bucket and sign each token hashes to.
    normalize, batch_size, query_prefix, doc_prefix
        See :class:`keff.encoders.base.BaseEncoder`.
    """

    backend = "hash"
    description = DESCRIPTION

    def __init__(
        self,
        dim: int = 64,
        seed: int = 0,
        *,
        normalize: bool = True,
        batch_size: int = 256,
        query_prefix: str = "",
        doc_prefix: str = "",
    ) -> None:
        if dim < 1:
            raise KeffError(f"HashEncoder dim must be >= 1, got {dim}")
        super().__init__(
            "hash",
            dim=int(dim),
            normalize=normalize,
            batch_size=batch_size,
            query_prefix=query_prefix,
            doc_prefix=doc_prefix,
        )
        self.seed = int(seed)

    def _load(self) -> int:
        return self.dim

    def _identity(self) -> dict[str, Any]:
        return {"backend": self.backend, "model": {"dim": self.dim, "seed": self.seed}}

    def _bucket(self, token: str) -> tuple[int, float]:
        key = str(self.seed).encode()
        digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8, key=key).digest()
        value = int.from_bytes(digest, "little")
        return (value >> 1) % self.dim, 1.0 if value & 1 else -1.0

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for token in _TOKEN.findall(text.lower()):
                col, sign = self._bucket(token)
                out[row, col] += sign
        return out

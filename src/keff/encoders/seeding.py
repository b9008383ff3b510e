"""Seed an embedding cache with precomputed vectors, after checking a sample of them.

Precomputed vectors save hours of encoding, but only if they are what this encoder produces.
:func:`seed_cache` re-encodes a seeded random sample of rows with the real (uncached) model and
writes nothing unless every sampled row agrees (cosine >= ``min_cosine``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from keff.encoders.base import Kind, check_kind, check_texts, l2_normalize
from keff.encoders.cache import CachedEncoder
from keff.errors import FingerprintMismatch, KeffError

#: Relative norm difference tolerated in the probe when the encoder does not normalise.
NORM_RTOL = 1e-3


@dataclass
class SeedReport:
    """Outcome of :func:`seed_cache`.

    Attributes
    ----------
    n_seeded : int
        Distinct cache entries written.
    n_probed : int
        Rows re-encoded with the model to check the vectors.
    min_cosine, mean_cosine : float
        Agreement of the probed rows with the given vectors.
    fingerprint : str
        Fingerprint of the encoder the entries were stored under.
    """

    n_seeded: int
    n_probed: int
    min_cosine: float
    mean_cosine: float
    fingerprint: str


def _check_vectors(vectors: np.ndarray, n_texts: int, dim: int) -> np.ndarray:
    v = np.asarray(vectors)
    if v.ndim != 2:
        raise KeffError(f"vectors must be 2-D (n, d), got shape {v.shape}")
    if v.shape[0] != n_texts:
        raise KeffError(f"{n_texts} texts but {v.shape[0]} vector rows")
    if v.shape[1] != dim:
        raise FingerprintMismatch(
            f"vectors are {v.shape[1]}-d but the encoder produces {dim}-d vectors: they come from another model"
        )
    bad = ~np.isfinite(v).all(axis=1)
    if bad.any():
        raise KeffError(f"vectors row {int(np.flatnonzero(bad)[0])} is not finite")
    return v.astype(np.float32, copy=False)


def seed_cache(
    encoder: CachedEncoder,
    texts: Sequence[str],
    vectors: np.ndarray,
    *,
    kind: Kind = "doc",
    probe: int = 16,
    min_cosine: float = 0.999,
    seed: int = 0,
) -> SeedReport:
    """Check precomputed ``vectors`` against the model, then store them in ``encoder``'s cache.

    Parameters
    ----------
    encoder : CachedEncoder
        The cache to fill; its wrapped encoder is the reference model.
    texts : sequence of str
        n texts (before any kind prefix).
    vectors : numpy.ndarray
        (n, encoder.dim) vectors claimed to be ``encoder``'s encodings of ``texts``.
    kind : {"doc", "query"}
        How the texts were encoded.
    probe : int
        Rows to re-encode (a seeded random sample; all rows if n is smaller). Must be >= 1.
    min_cosine : float
        Every probed row must reach this cosine.
    seed : int
        Seed of the probe sample.

    Returns
    -------
    SeedReport

    Raises
    ------
    FingerprintMismatch
        The vectors have the wrong width, or a probed row disagrees (the message names the worst
        row and its cosine); nothing is written.
    KeffError
        Row count differs from ``len(texts)``, non-finite vectors, or bad arguments.
    """
    if not isinstance(encoder, CachedEncoder):
        raise KeffError("seed_cache needs a CachedEncoder (get_encoder(..., cache=True))")
    check_kind(kind)
    texts = check_texts(texts)
    vectors = _check_vectors(vectors, len(texts), encoder.dim)
    if probe < 1:
        raise KeffError(f"probe must be >= 1, got {probe}")
    if not texts:
        return SeedReport(0, 0, float("nan"), float("nan"), encoder.fingerprint)

    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(texts), size=min(probe, len(texts)), replace=False))
    fresh = encoder.encoder.encode([texts[i] for i in rows], kind)
    given = vectors[rows]
    cos = np.sum(l2_normalize(fresh) * l2_normalize(given), axis=1)
    worst = int(np.argmin(cos))
    if cos[worst] < min_cosine:
        raise FingerprintMismatch(
            f"precomputed vectors do not match encoder {encoder.name!r}: row {int(rows[worst])} "
            f"has cosine {cos[worst]:.6f} < {min_cosine} (probed {len(rows)} rows); nothing written"
        )
    if encoder.normalize:
        to_store = l2_normalize(vectors)
    else:
        fn, gn = np.linalg.norm(fresh, axis=1), np.linalg.norm(given, axis=1)
        rel = np.abs(fn - gn) / np.maximum(fn, 1e-12)
        bad = int(np.argmax(rel))
        if rel[bad] > NORM_RTOL:
            raise FingerprintMismatch(
                f"precomputed vectors have the right direction but not the scale of encoder "
                f"{encoder.name!r} (normalize=False): row {int(rows[bad])} norm {gn[bad]:.6g} vs "
                f"{fn[bad]:.6g}; nothing written"
            )
        to_store = vectors
    n = encoder.put(texts, to_store, kind)
    return SeedReport(n, len(rows), float(cos.min()), float(cos.mean()), encoder.fingerprint)

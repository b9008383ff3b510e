"""Seed an embedding cache with precomputed vectors, after checking them against the model.

Precomputed vectors save hours of encoding, but only if they are what this encoder produces.
:func:`seed_cache` runs, in this order:

1. **Seed once.** A batch is identified by (encoder fingerprint, kind, SHA-256 of the vectors'
   source, SHA-256 of the model texts). If the cache holds a complete record of that batch and
   an entry for every text, nothing is checked again and no model is loaded.
2. **Whole-folder checks, no model needed.** Every row finite; unit norm (within
   :data:`NORM_ATOL`) when the encoder L2-normalises; rows of the same text agree (cosine >=
   ``min_cosine``); rows of *different* texts with bit-identical vectors (the symptom of a copied
   row; an uncased or truncating model can legitimately produce them) are all re-encoded, and
   more than :data:`DUPLICATE_PROBE_MAX` such rows are refused outright.
3. **Random probe.** :func:`probe_size` rows, drawn afresh from OS entropy on every run (an
   explicit ``seed`` only when asked, e.g. in tests), are compared with the model's own vectors:
   re-encoded now, or read from cache entries the model wrote earlier. Every other row that
   already has a model entry in the cache is compared too, at no cost. One row below
   ``min_cosine`` refuses the whole file. The freshly encoded vectors are real model output and
   are cached as ordinary entries whatever the outcome, so the probe is never wasted work.
4. **Write.** The batch record is written first (``complete: false``), then one entry per text
   without a valid entry yet, tagged with the batch id, then one sync, then the record is marked
   complete. ``EmbeddingCache.seed_batches()`` lists batches (an interrupted one shows as
   incomplete) and ``EmbeddingCache.drop_seed_batch(id)`` removes every entry of one batch.

Probe size and detection power: ``probe_size(n)`` is ``n`` for ``n <= 64``, else
``min(500, max(64, ceil(0.02 * n)))``. Rows are sampled without replacement, so a file in which
``b`` rows are wrong passes with probability ``C(n - b, s) / C(n, s)``;
:func:`detectable_rows` gives the smallest ``b`` caught with 99% probability. SciFact corpus
(5,183 rows, probe 104): 4.3% of rows; SciFact queries (1,109, probe 64): 6.8%; skills
questions or answers (1,888, probe 64): 6.8%; MedQuAD answers (14,809, probe 297): 1.5%;
25,000 rows or more (probe 500): 0.9% or less.
Fewer wrong rows can pass: a handful of bad rows in a large file are found only by re-encoding
it all (encode without ``--precomputed``).
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from keff.arrays import l2_normalize
from keff.atomic import sha256_bytes
from keff.encoders.base import Kind, check_kind, check_texts
from keff.encoders.cache import MODEL_ORIGIN, CachedEncoder, CacheEntry
from keff.errors import FingerprintMismatch, KeffError

logger = logging.getLogger(__name__)

#: Relative norm difference tolerated in the probe when the encoder does not normalise.
NORM_RTOL = 1e-3
#: |norm - 1| tolerated for every row when the encoder L2-normalises its vectors.
NORM_ATOL = 1e-3
#: Probe every row of files this small; larger files get at least this many rows.
PROBE_MIN = 64
#: Share of rows probed in files larger than PROBE_MIN / PROBE_FRACTION rows.
PROBE_FRACTION = 0.02
#: Largest random probe (about 25 s of minilm abstracts on 2 CPU cores).
PROBE_MAX = 500
#: Confidence of the detection power quoted in :class:`SeedReport`.
CONFIDENCE = 0.99
#: Rows of different texts sharing a bit-identical vector that are re-encoded; more are refused.
DUPLICATE_PROBE_MAX = 256
#: Version of the seed-batch record layout.
RECORD_FORMAT = 1

_SHA256 = re.compile(r"[0-9a-f]{64}")


def probe_size(n: int) -> int:
    """Rows to re-encode out of ``n``: all up to 64, else 2% (at least 64, at most 500)."""
    if n <= PROBE_MIN:
        return n
    return min(n, PROBE_MAX, max(PROBE_MIN, math.ceil(PROBE_FRACTION * n)))


def _log_miss(n: int, s: int, b: int) -> float:
    """log P(a uniform s-of-n sample without replacement contains none of b marked rows)."""
    if n - b < s:
        return -math.inf
    return math.lgamma(n - b + 1) - math.lgamma(n - b - s + 1) - math.lgamma(n + 1) + math.lgamma(n - s + 1)


def detectable_rows(n: int, s: int, confidence: float = CONFIDENCE) -> int:
    """Smallest number of wrong rows that a random probe of ``s`` of ``n`` rows finds with
    probability >= ``confidence`` (sampling without replacement).

    Returns
    -------
    int
        1 when every row is probed; 0 when ``n`` is 0.
    """
    if not 0.0 < confidence < 1.0:
        raise KeffError(f"confidence must be in (0, 1), got {confidence}")
    if n <= 0:
        return 0
    if not 1 <= s <= n:
        raise KeffError(f"probe size must be in [1, {n}], got {s}")
    target = math.log1p(-confidence)
    lo, hi = 1, n - s + 1  # _log_miss(hi) is -inf
    while lo < hi:
        mid = (lo + hi) // 2
        if _log_miss(n, s, mid) <= target:
            hi = mid
        else:
            lo = mid + 1
    return lo


@dataclass
class SeedReport:
    """Outcome of :func:`seed_cache`.

    Attributes
    ----------
    n_seeded : int
        Precomputed vectors written to the cache (entries tagged with ``batch_id``).
    n_probed : int
        Rows in the random probe (plus rows re-encoded because they looked copied).
    min_cosine, mean_cosine : float
        Agreement of every row compared with the model's vectors.
    fingerprint : str
        Fingerprint of the encoder the entries were stored under.
    batch_id : str
        Id of the seed batch (16 hex digits; see ``EmbeddingCache.seed_batches``).
    n_rows : int
        Rows in the file.
    n_encoded : int
        Texts the model encoded now (cached as ordinary model entries).
    n_checked : int
        Rows compared with model vectors: the probe plus rows already cached by the model.
    n_cached : int
        Texts that already had a valid entry and were left alone.
    detect_rows, detect_fraction : int, float
        The smallest number (share) of wrong rows the random probe finds with probability
        ``confidence``.
    confidence : float
        See above.
    already_seeded : bool
        The batch was complete in the cache: nothing was checked or loaded (the cosines and
        detection power are those recorded when it was seeded).
    sample_seed : int
        Seed of the probe sample (drawn from OS entropy unless one was given).
    source : str
        The vectors' file, or ``"<array>"``.
    kind : str
        ``"doc"`` or ``"query"``.
    created : str
        When the batch was seeded (ISO 8601, UTC).
    """

    n_seeded: int
    n_probed: int
    min_cosine: float
    mean_cosine: float
    fingerprint: str
    batch_id: str = ""
    n_rows: int = 0
    n_encoded: int = 0
    n_checked: int = 0
    n_cached: int = 0
    detect_rows: int = 0
    detect_fraction: float = float("nan")
    confidence: float = CONFIDENCE
    already_seeded: bool = False
    sample_seed: int | None = None
    source: str = "<array>"
    kind: str = "doc"
    created: str = ""

    @property
    def power(self) -> str:
        """``"a corruption of >= 4.3% of rows (223) is caught with 99% probability"``."""
        return (
            f"a corruption of >= {100 * self.detect_fraction:.1f}% of rows ({self.detect_rows:,}) "
            f"is caught with {100 * self.confidence:g}% probability"
        )

    @property
    def message(self) -> str:
        """One line for the user."""
        name = Path(self.source).name if self.source != "<array>" else self.source
        if self.n_rows == 0:
            return f"{name}: no rows, nothing seeded"
        if self.already_seeded:
            return (
                f"{name}: already seeded as batch {self.batch_id} ({self.created}; min cosine "
                f"{self.min_cosine:.5f} then, {self.power}); nothing re-checked, no model loaded"
            )
        return (
            f"{name}: seeded {self.n_seeded:,} {self.kind} vectors (batch {self.batch_id}) after comparing "
            f"{self.n_checked:,} of {self.n_rows:,} rows with the model ({self.n_encoded:,} re-encoded now, "
            f"min cosine {self.min_cosine:.5f}, mean {self.mean_cosine:.5f}); {self.power}"
        )


# -- input checks --------------------------------------------------------------------------------
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
    return np.ascontiguousarray(v, dtype=np.float32)


def _check_unit_norm(vectors: np.ndarray, name: str) -> None:
    """Refuse rows that are not unit length (the encoder normalises every vector it makes)."""
    norms = np.linalg.norm(vectors.astype(np.float64), axis=1)
    bad = np.flatnonzero(np.abs(norms - 1.0) > NORM_ATOL)
    if bad.size:
        i = int(bad[0])
        raise FingerprintMismatch(
            f"precomputed vectors are not encoder {name!r}'s: it L2-normalises its vectors, but "
            f"{bad.size:,} of {len(vectors):,} rows are not unit length (row {i} has norm {norms[i]:.6g}); "
            "if they are this model's unnormalised output, normalise them first; nothing written"
        )


def _first_rows(prepared: list[str]) -> dict[str, int]:
    first: dict[str, int] = {}
    for i, t in enumerate(prepared):
        first.setdefault(t, i)
    return first


def _check_same_text_agrees(vectors: np.ndarray, prepared: list[str], first: dict[str, int], min_cosine: float) -> None:
    """Rows of one text must carry (nearly) one vector: otherwise at least one of them is wrong."""
    ref = np.fromiter((first[t] for t in prepared), dtype=np.int64, count=len(prepared))
    rows = np.flatnonzero(ref != np.arange(len(prepared)))
    if not rows.size:
        return
    unit = l2_normalize(vectors)
    cos = np.sum(unit[rows] * unit[ref[rows]], axis=1)
    bad = np.flatnonzero(cos < min_cosine)
    if bad.size:
        i = int(rows[bad[0]])
        raise FingerprintMismatch(
            f"precomputed rows {int(ref[i])} and {i} are the same text but their vectors differ "
            f"(cosine {cos[bad[0]]:.6f} < {min_cosine}): at least one of them is wrong; nothing written"
        )


def _suspect_copies(vectors: np.ndarray, prepared: list[str]) -> np.ndarray:
    """Rows whose bit-identical vector is shared with a row of a different text.

    Returns
    -------
    numpy.ndarray
        int64 row numbers, sorted (possibly empty).
    """
    by_vector: dict[bytes, list[int]] = {}
    for i, row in enumerate(vectors):
        by_vector.setdefault(row.tobytes(), []).append(i)
    suspects = [i for rows in by_vector.values() if len({prepared[j] for j in rows}) > 1 for i in rows]
    return np.array(sorted(suspects), dtype=np.int64)


def _copies_to_probe(vectors: np.ndarray, prepared: list[str], name: str) -> np.ndarray:
    """Suspected copied rows, all to be re-encoded; refuse when there are too many to probe."""
    suspects = _suspect_copies(vectors, prepared)
    if suspects.size > DUPLICATE_PROBE_MAX:
        raise FingerprintMismatch(
            f"precomputed vectors look copied: {suspects.size:,} rows share a bit-identical vector with a "
            f"row of a different text (e.g. row {int(suspects[0])}); more than {DUPLICATE_PROBE_MAX} to "
            f"re-encode with {name!r}; nothing written"
        )
    if suspects.size:
        logger.warning(
            "%d precomputed rows share a bit-identical vector with a row of a different text; "
            "re-encoding them all to check",
            suspects.size,
        )
    return suspects


# -- batch identity ------------------------------------------------------------------------------
def texts_sha256(prepared: Sequence[str]) -> str:
    """Hex SHA-256 of a list of model texts (length-prefixed, UTF-8 with surrogatepass)."""
    h = hashlib.sha256()
    for t in prepared:
        data = t.encode("utf-8", "surrogatepass")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


def batch_id_of(fingerprint: str, kind: str, source_sha256: str, text_digest: str) -> str:
    """The 16-hex-digit id of a seed batch: same encoder, kind, source bytes and texts, same id."""
    return sha256_bytes("\0".join([fingerprint, kind, source_sha256, text_digest]).encode("ascii"))[:16]


#: Fields a record needs for a "seed once" report.
_RECORD_KEYS = (
    "min_cosine", "mean_cosine", "n_rows", "n_texts", "detect_rows", "detect_fraction", "confidence",
    "source", "kind", "created",
)  # fmt: skip


def _complete_record(encoder: CachedEncoder, batch_id: str, unique: list[str]) -> dict[str, Any] | None:
    """The record of ``batch_id`` when it is complete and every text has an entry, else None."""
    record = encoder.cache.seed_batch(batch_id)
    if record is None or not record.get("complete"):
        return None
    if record.get("fingerprint") != encoder.fingerprint:
        return None
    missing = [k for k in _RECORD_KEYS if k not in record]
    if missing:
        logger.warning("seed batch %s: record lacks %s; seeding again", batch_id, ", ".join(missing))
        return None
    if not all(encoder.cache.has_entry(encoder.fingerprint, t) for t in unique):
        return None
    return record


def _report_from_record(record: dict[str, Any]) -> SeedReport:
    return SeedReport(
        0, 0, float(record["min_cosine"]), float(record["mean_cosine"]), record["fingerprint"],
        batch_id=record["batch_id"], n_rows=int(record["n_rows"]), n_cached=int(record["n_texts"]),
        detect_rows=int(record["detect_rows"]), detect_fraction=float(record["detect_fraction"]),
        confidence=float(record["confidence"]), already_seeded=True, sample_seed=record.get("sample_seed"),
        source=str(record["source"]), kind=str(record["kind"]), created=str(record["created"]),
    )  # fmt: skip


# -- probe ---------------------------------------------------------------------------------------
def _model_vectors(
    encoder: CachedEncoder,
    texts: list[str],
    prepared: list[str],
    first: dict[str, int],
    probe_rows: np.ndarray,
    cached: dict[str, CacheEntry | None],
    kind: Kind,
    show_progress: bool | None,
) -> tuple[dict[str, np.ndarray], int]:
    """Model vectors of every text cached by the model, plus the probe texts, encoded now.

    The newly encoded vectors are stored in the cache as ordinary model entries at once.

    Returns
    -------
    dict, int
        Model text -> model vector; number of texts encoded now.
    """
    ref = {t: e.vector for t, e in cached.items() if e is not None and e.origin == MODEL_ORIGIN}
    need = list(dict.fromkeys(prepared[i] for i in probe_rows if prepared[i] not in ref))
    if need:
        fresh = encoder.encoder.encode([texts[first[t]] for t in need], kind, show_progress=show_progress)
        encoder.cache.put_many(encoder.fingerprint, need, fresh, origin=MODEL_ORIGIN)
        ref.update(zip(need, np.asarray(fresh, dtype=np.float32)))
    return ref, len(need)


def _compare(
    encoder: CachedEncoder,
    vectors: np.ndarray,
    prepared: list[str],
    ref: dict[str, np.ndarray],
    min_cosine: float,
    n_encoded: int,
) -> np.ndarray:
    """Cosines of every row that has a model vector; refuse on one disagreeing row.

    Returns
    -------
    numpy.ndarray
        float64 cosines of the compared rows.
    """
    rows = np.array([i for i, t in enumerate(prepared) if t in ref], dtype=np.int64)
    model = np.stack([ref[prepared[i]] for i in rows]).astype(np.float32)
    given = vectors[rows]
    cos = np.sum(l2_normalize(model) * l2_normalize(given), axis=1, dtype=np.float64)
    kept = (
        f"the {n_encoded} texts re-encoded to check were cached as model output"
        if n_encoded
        else "compared with model vectors already in the cache"
    )
    bad = np.flatnonzero(cos < min_cosine)
    if bad.size:
        worst = int(bad[np.argmin(cos[bad])])
        raise FingerprintMismatch(
            f"precomputed vectors do not match encoder {encoder.name!r}: row {int(rows[worst])} has cosine "
            f"{cos[worst]:.6f} < {min_cosine} ({bad.size} of {rows.size} rows compared with the model "
            f"disagree); no precomputed vector written ({kept})"
        )
    if not encoder.normalize:
        fn, gn = np.linalg.norm(model, axis=1), np.linalg.norm(given, axis=1)
        rel = np.abs(fn - gn) / np.maximum(fn, 1e-12)
        worst = int(np.argmax(rel))
        if rel[worst] > NORM_RTOL:
            raise FingerprintMismatch(
                f"precomputed vectors have the right direction but not the scale of encoder "
                f"{encoder.name!r} (normalize=False): row {int(rows[worst])} norm {gn[worst]:.6g} vs "
                f"{fn[worst]:.6g}; no precomputed vector written ({kept})"
            )
    return cos


# -- the entry point -----------------------------------------------------------------------------
def seed_cache(
    encoder: CachedEncoder,
    texts: Sequence[str],
    vectors: np.ndarray,
    *,
    kind: Kind = "doc",
    probe: int | None = None,
    min_cosine: float = 0.999,
    seed: int | None = None,
    source: str | Path | None = None,
    source_sha256: str | None = None,
    show_progress: bool | None = None,
) -> SeedReport:
    """Check precomputed ``vectors`` against the model, then store them in ``encoder``'s cache.

    See the module docstring for the checks, their order and the detection power.

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
    probe : int, optional
        Random rows to compare with the model (default :func:`probe_size`; a smaller number is a
        weaker check, and the report's detection power says how much weaker). Must be >= 1.
    min_cosine : float
        Every compared row must reach this cosine.
    seed : int, optional
        Seed of the probe sample; by default a fresh one from OS entropy on every call.
    source : str or Path, optional
        The file the vectors were read from (recorded in the batch record).
    source_sha256 : str, optional
        Hex SHA-256 of that file; by default the SHA-256 of the vectors' float32 bytes.
    show_progress : bool, optional
        Progress of the probe encoding and of the entry writes.

    Returns
    -------
    SeedReport
        ``report.message`` is one line for the user.

    Raises
    ------
    FingerprintMismatch
        Wrong width, rows not unit length for a normalising encoder, one text with two vectors,
        too many copied-looking rows, or a compared row below ``min_cosine`` (the message names
        the worst row and its cosine). No precomputed vector is written; the texts re-encoded to
        check are cached as the model's own output.
    KeffError
        Row count differs from ``len(texts)``, non-finite vectors, bad arguments, or a cache
        folder that cannot be written.
    """
    if not isinstance(encoder, CachedEncoder):
        raise KeffError("seed_cache needs a CachedEncoder (get_encoder(..., cache=True))")
    check_kind(kind)
    texts = check_texts(texts)
    vectors = _check_vectors(vectors, len(texts), encoder.dim)
    if probe is not None and probe < 1:
        raise KeffError(f"probe must be >= 1, got {probe}")
    if source_sha256 is not None and not _SHA256.fullmatch(source_sha256):
        raise KeffError(f"source_sha256 must be 64 hex digits, got {source_sha256!r}")
    source_name = "<array>" if source is None else str(source)
    if not texts:
        return SeedReport(0, 0, float("nan"), float("nan"), encoder.fingerprint, source=source_name, kind=kind)

    prepared = encoder.prepare(texts, kind)
    first = _first_rows(prepared)
    unique = list(first)
    digest = source_sha256 or sha256_bytes(vectors.astype("<f4").tobytes())
    text_digest = texts_sha256(prepared)
    batch_id = batch_id_of(encoder.fingerprint, kind, digest, text_digest)
    done = _complete_record(encoder, batch_id, unique)
    if done is not None:
        return _report_from_record(done)

    if encoder.normalize:
        _check_unit_norm(vectors, encoder.name)
    _check_same_text_agrees(vectors, prepared, first, min_cosine)
    copies = _copies_to_probe(vectors, prepared, encoder.name)

    n = len(texts)
    size = probe_size(n) if probe is None else min(probe, n)
    sample_seed = secrets.randbits(64) if seed is None else int(seed)
    sample = np.random.default_rng(sample_seed).choice(n, size=size, replace=False)
    probe_rows = np.union1d(sample, copies)

    cached = dict(zip(unique, encoder.cache.get_entries(encoder.fingerprint, unique, encoder.dim)))
    ref, n_encoded = _model_vectors(encoder, texts, prepared, first, probe_rows, cached, kind, show_progress)
    cos = _compare(encoder, vectors, prepared, ref, min_cosine, n_encoded)

    detect = detectable_rows(n, size)
    record: dict[str, Any] = {
        "format": RECORD_FORMAT, "batch_id": batch_id, "fingerprint": encoder.fingerprint,
        "encoder": encoder.name, "kind": kind, "source": source_name, "source_sha256": digest,
        "texts_sha256": text_digest, "n_rows": n, "n_texts": len(unique), "probe_size": size,
        "n_probed": int(probe_rows.size), "n_encoded": n_encoded, "n_checked": int(cos.size),
        "min_cosine": float(cos.min()), "mean_cosine": float(cos.mean()), "min_cosine_required": min_cosine,
        "detect_rows": detect, "detect_fraction": detect / n, "confidence": CONFIDENCE,
        "sample_seed": sample_seed, "created": _now(), "keff_version": _keff_version(),
        "complete": False, "n_seeded": 0,
    }  # fmt: skip
    to_write = [t for t in unique if cached[t] is None and t not in ref]
    _write_batch(encoder, record, to_write, vectors[[first[t] for t in to_write]], show_progress)
    return SeedReport(
        len(to_write), int(probe_rows.size), record["min_cosine"], record["mean_cosine"], encoder.fingerprint,
        batch_id=batch_id, n_rows=n, n_encoded=n_encoded, n_checked=int(cos.size),
        n_cached=len(unique) - len(to_write) - n_encoded, detect_rows=detect, detect_fraction=detect / n,
        sample_seed=sample_seed, source=source_name, kind=kind, created=record["created"],
    )  # fmt: skip


def _write_batch(
    encoder: CachedEncoder,
    record: dict[str, Any],
    texts: list[str],
    rows: np.ndarray,
    show_progress: bool | None,
) -> None:
    """Record (incomplete), entries tagged with the batch id, one sync, record (complete)."""
    cache = encoder.cache
    cache.write_seed_batch(record)
    to_store = l2_normalize(rows) if encoder.normalize else rows
    cache.put_many(
        encoder.fingerprint, texts, to_store, origin=record["batch_id"], show_progress=show_progress,
        fsync=not cache.CAN_SYNC_ALL,
    )  # fmt: skip
    cache.sync()
    record.update(complete=True, n_seeded=len(texts), completed=_now())
    cache.write_seed_batch(record)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _keff_version() -> str:
    from keff import __version__

    return __version__

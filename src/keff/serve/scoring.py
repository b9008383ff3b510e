"""What a search request runs: which encoders and transforms, the hits, and each encoder's share of a score.

The service searches exactly as :meth:`keff.docindex.Index.search` does (same encoders, same
attached transforms through :class:`keff.docindex.transforms.Transforms`, same
:meth:`~keff.docindex.Index.search_vectors`), with two choices a request may make: the encoders
to use (default all of the index's) and the attached transforms to apply (``"all"``, ``"none"``
or a list of names). Query texts are encoded by the caller (the micro-batcher), once per encoder.

A fused score is the weighted sum of the encoders' cosines, ``sum_j w_j * cos_j``;
:func:`contributions` recomputes each term ``w_j * cos_j`` from the same query vectors, weights
and document vectors the search used (query maps applied). With the exact backend (and for fused
search with any backend, which re-scores candidates exactly) the terms add up to the score; a
single-encoder approximate backend's score comes from FAISS and may differ from the exact cosine
in the last float digits. During an encoder upgrade the upgraded slot is scored by the upgrade's
serving mode, not a plain cosine, so no breakdown is given there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from keff.docindex import Index
from keff.docindex.transforms import Transforms
from keff.errors import KeffError


class RequestError(KeffError):
    """A request the index cannot answer as asked (unknown encoder or transform); HTTP ``status``."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


def resolve_encoders(index: Index, asked: Sequence[str] | None) -> list[str]:
    """Index encoder keys for ``asked`` (keys or encoder names; default all, primary first)."""
    if asked is None:
        return index.encoder_keys
    by_name = {spec["name"]: key for key, spec in index.manifest.encoders.items()}
    keys = []
    for item in asked:
        key = item if item in index.manifest.encoders else by_name.get(item)
        if key is None:
            have = ", ".join(f"{k} ({spec['name']})" for k, spec in index.manifest.encoders.items())
            raise RequestError(f"unknown encoder {item!r}: this index has {have}")
        if key in keys:
            raise RequestError(f"encoder {item!r} is named twice")
        keys.append(key)
    if not keys:
        raise RequestError("name at least one encoder, or leave 'encoders' out to use all of them")
    return keys


def resolve_transforms(index: Index, asked: str | Sequence[str]) -> Transforms:
    """The attached transforms to apply: ``"all"``, ``"none"`` or a list of attached names."""
    if asked == "all":
        return index.transforms
    if asked == "none":
        return Transforms([], index.encoder_keys)
    if isinstance(asked, str):
        raise RequestError(f"transforms must be 'all', 'none' or a list of names; got {asked!r}")
    attached = {t.name: t for t in index.transforms}
    unknown = [name for name in asked if name not in attached]
    if unknown:
        have = ", ".join(attached) or "none"
        raise RequestError(f"unknown transform {unknown[0]!r}: the index has {have} attached")
    chosen = set(asked)
    return Transforms([t for t in index.transforms if t.name in chosen], index.encoder_keys)


@dataclass
class Plan:
    """How one request's queries are searched.

    Attributes
    ----------
    encoders : list of str
        Keys the request allows (its choice or all).
    transforms : Transforms
        The transforms applied.
    query_keys : list of str
        Encoders that encode the queries for the transformed search (weight-0 encoders skipped;
        during an upgrade, the new encoder in the old one's place).
    raw_key : str
        The encoder of the raw column: the first allowed encoder, no transforms.
    """

    encoders: list[str]
    transforms: Transforms
    query_keys: list[str]
    raw_key: str

    def describe(self, index: Index) -> dict[str, Any]:
        """What the transformed search applies, for the response and the page."""
        names = {k: spec["name"] for k, spec in index.manifest.encoders.items()}
        return {
            "encoders": [{"key": k, "name": names.get(k, k)} for k in self.query_keys],
            "transforms": [{"name": t.name, "kind": t.kind, "summary": t.summary} for t in self.transforms],
            "weighting": self.transforms.weighting,
            "fusion_weights": self.transforms.fusion,
            "upgrade": None if index.upgrade is None else index.upgrade.mode,
        }


def plan(index: Index, encoders: Sequence[str] | None, transforms: str | Sequence[str]) -> Plan:
    """Resolve a request's choices against ``index`` (:class:`RequestError` on an unknown name)."""
    keys = resolve_encoders(index, encoders)
    chosen = resolve_transforms(index, transforms)
    query_keys = chosen.keys(keys)
    if index.upgrade is not None:
        query_keys = index.upgrade.query_keys(query_keys)
    return Plan(keys, chosen, query_keys, keys[0])


def search_prepared(
    index: Index, chosen: Transforms, vectors: dict[str, np.ndarray], k: int
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], np.ndarray | None]:
    """Apply ``chosen`` to the encoders' query vectors and search: scores, rows, the searched query
    vectors and the weights (as :meth:`Index.prepare_queries` + :meth:`Index.search_vectors`)."""
    queries, weights = chosen.apply(vectors)
    scores, rows = index.search_vectors(queries, k, weights=weights)
    return scores, rows, queries, weights


def contributions(
    index: Index, queries: dict[str, np.ndarray], weights: np.ndarray | None, scores: np.ndarray, rows: np.ndarray
) -> list[list[list[dict[str, Any]]]] | None:
    """Each encoder's term ``weight x cosine`` of each hit's score (see the module docstring).

    Parameters
    ----------
    queries : dict
        Encoder key -> (n, dim) query vectors as searched (maps applied).
    weights : ndarray or None
        As :meth:`Transforms.apply` returns them: None (equal), (S,) or (S, n).
    scores, rows : ndarray, shape (n, k')
        As the search returned them; entries of non-finite score are no hit (as in :meth:`Index.hits`).

    Returns
    -------
    list or None
        Per query, per hit, one ``{"encoder", "weight", "cosine", "contribution"}`` per encoder;
        None during an upgrade (the upgraded slot is not a plain cosine).
    """
    if index.upgrade is not None and index.upgrade.handles(queries):
        return None
    keys = list(queries)
    n = rows.shape[0]
    if weights is None:
        w = np.full((len(keys), n), 1.0 / len(keys))
    else:
        w = np.asarray(weights, dtype=np.float64)
        w = np.repeat(w[:, None], n, axis=1) if w.ndim == 1 else w
    out = []
    for i in range(n):
        per_hit = []
        for row in rows[i][np.isfinite(scores[i])]:
            terms = []
            for j, key in enumerate(keys):
                cos = float(np.dot(index.vectors[key][int(row)], queries[key][i]))
                terms.append({"encoder": key, "weight": float(w[j, i]), "cosine": cos,
                              "contribution": float(w[j, i]) * cos})  # fmt: skip
            per_hit.append(terms)
        out.append(per_hit)
    return out

"""A specialist: an encoder, its map into the shared frame, its domain centroid and its sigma^2.

Fusion combines specialists' query vectors, which is only meaningful in one coordinate frame:
each specialist carries the map that takes its own vectors there (``None`` when it already is the
reference). Its domain centroid (in the frame, fitted on its training texts) drives routing, and
its variance estimator gives each query a sigma^2 for precision weighting. A specialist saves to
one SEF file (kind ``"specialist"``) holding all of it, plus the encoder's fingerprint so that a
different model behind the same name is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from keff.encoders.base import l2_normalize
from keff.errors import FingerprintMismatch, FormatError, KeffError
from keff.estimator import prefixed
from keff.maps.base import Map, map_from_description
from keff.sef import load_sef, save_sef
from keff.uncertainty.base import VarianceEstimator, rebuild_uncertainty


@dataclass
class Specialist:
    """One member of a fused ensemble.

    Attributes
    ----------
    name : str
        Short display name (``"ft-scifact"``).
    encoder : str
        What :func:`keff.encoders.get_encoder` loads it from (registry name or folder).
    fingerprint : str
        The encoder fingerprint its map, centroid and estimator were fitted with.
    map : Map or None
        Own space -> shared frame (None: the specialist's space is the frame).
    centroid : ndarray, shape (d_frame,)
        Unit mean of its domain's training texts, in the frame.
    uncertainty : VarianceEstimator
        sigma^2 of a query, from its frame vector.
    domain : str, optional
        The domain it was trained for (None for a generalist).
    info : dict
        Free-form provenance (training data hash, fit quality, command).
    """

    name: str
    encoder: str
    fingerprint: str
    map: Map | None
    centroid: np.ndarray
    uncertainty: VarianceEstimator
    domain: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def to_frame(self, V: np.ndarray) -> np.ndarray:
        """The specialist's own vectors (n, d_own) in the shared frame, L2-normalised."""
        out = V if self.map is None else self.map.transform(V)
        return l2_normalize(np.asarray(out, dtype=np.float32))

    def variance(self, V_frame: np.ndarray) -> np.ndarray:
        """sigma^2 (n,) of frame vectors."""
        return self.uncertainty.variance(V_frame)

    def centroid_similarity(self, V_frame: np.ndarray) -> np.ndarray:
        """Cosine (n,) of frame vectors to the domain centroid."""
        return np.asarray(V_frame, dtype=np.float32) @ self.centroid

    def load_encoder(self):
        """The encoder, after checking it still has the fingerprint the specialist was fitted on."""
        from keff.encoders import get_encoder

        enc = get_encoder(self.encoder)
        if enc.fingerprint != self.fingerprint:
            raise FingerprintMismatch(
                f"specialist {self.name!r} was fitted on encoder {self.encoder!r} with fingerprint "
                f"{self.fingerprint[:12]}, but it now has {enc.fingerprint[:12]}: refit the specialist"
            )
        return enc

    # -- persistence ------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the specialist to one SEF file."""
        arrays = {"centroid": np.asarray(self.centroid, dtype=np.float32)}
        arrays.update({f"uncertainty/{k}": v for k, v in self.uncertainty.get_state().items()})
        if self.map is not None:
            arrays.update({f"map/{k}": v for k, v in self.map.get_state().items()})
        meta = {
            "kind": "specialist",
            "name": self.name,
            "encoder": self.encoder,
            "fingerprint": self.fingerprint,
            "domain": self.domain,
            "map": None if self.map is None else self.map.describe(),
            "uncertainty": self.uncertainty.describe(),
            "info": self.info,
        }
        return save_sef(path, arrays, meta)

    @classmethod
    def load(cls, path: str | Path) -> Specialist:
        """Read a specialist saved by :meth:`save` (verified SEF; no code is executed)."""
        arrays, meta = load_sef(path, kind="specialist")
        try:
            mapping = None if meta["map"] is None else map_from_description(meta["map"], prefixed(arrays, "map"))
            return cls(
                name=str(meta["name"]),
                encoder=str(meta["encoder"]),
                fingerprint=str(meta["fingerprint"]),
                map=mapping,
                centroid=arrays["centroid"],
                uncertainty=rebuild_uncertainty(meta["uncertainty"], prefixed(arrays, "uncertainty")),
                domain=meta.get("domain"),
                info=meta.get("info", {}),
            )
        except (KeyError, TypeError, KeffError) as exc:
            raise FormatError(f"{path}: not a valid specialist ({exc})") from None


def fit_specialist(
    name: str,
    encoder: Any,
    *,
    anchors_own: np.ndarray,
    anchors_frame: np.ndarray | None,
    domain_texts_own: np.ndarray,
    uncertainty: VarianceEstimator,
    map_kind: str = "procrustes",
    domain: str | None = None,
    info: dict[str, Any] | None = None,
) -> Specialist:
    """Fit a specialist's map, centroid and variance estimator on TRAINING vectors only.

    Parameters
    ----------
    name : str
        Display name.
    encoder : Encoder
        Its encoder (name and fingerprint are recorded).
    anchors_own, anchors_frame : ndarray, shape (n, d_own) and (n, d_frame)
        The same anchor texts in the specialist's space and in the reference frame; with
        ``anchors_frame=None`` the specialist is the reference (no map).
    domain_texts_own : ndarray, shape (m, d_own)
        Its domain's training texts (documents and/or queries) in its own space: the centroid
        and the variance estimator are fitted on these, mapped into the frame.
    uncertainty : VarianceEstimator
        An unfitted estimator, fitted here on the domain texts.
    map_kind : str
        Map type (see :data:`keff.alignment.MAP_KINDS`).
    """
    from keff.alignment import make_map

    mapping = None if anchors_frame is None else make_map(map_kind).fit(anchors_own, anchors_frame)
    spec = Specialist(name, encoder.name, encoder.fingerprint, mapping, np.zeros(1), uncertainty, domain, info or {})
    frame = spec.to_frame(domain_texts_own)
    centroid = frame.mean(axis=0)
    spec.centroid = (centroid / np.linalg.norm(centroid)).astype(np.float32)
    spec.uncertainty = uncertainty.fit(frame)
    return spec

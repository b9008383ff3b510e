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

from keff.arrays import l2_normalize
from keff.encoders.registry import encoder_for_artifact
from keff.errors import FormatError, KeffError
from keff.estimator import ArraySpec, check_arrays, split_prefixes
from keff.maps.base import Map, make_map, map_from_description
from keff.sef import load_sef, save_sef, shown
from keff.uncertainty.base import VarianceEstimator, rebuild_uncertainty

_PARTS = ("map", "uncertainty")
#: The specialist's own array: its domain centroid in the frame.
_CENTROID = {"centroid": ArraySpec(("frame_dim",))}


@dataclass
class Specialist:
    """One member of a fused ensemble.

    Attributes
    ----------
    name : str
        Short display name (``"ft-scifact"``).
    encoder : str
        What its encoder is loaded from (registry name or folder; see :meth:`load_encoder`).
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

    def load_encoder(self, explicit: str | None = None):
        """The encoder, after checking it still has the fingerprint the specialist was fitted on.

        The recorded name is loaded only if it is a keff registry name or a model folder inside
        keff's cache (a specialist file is untrusted input); ``explicit`` names the encoder
        yourself instead (see :func:`keff.encoders.registry.encoder_for_artifact`).

        Raises
        ------
        UntrustedEncoder
            The recorded name is not trusted and ``explicit`` was not given.
        FingerprintMismatch
            The encoder is not the one the specialist was fitted on.
        """
        return encoder_for_artifact(
            self.encoder, self.fingerprint, what=f"specialist {shown(self.name)}", explicit=explicit
        )

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
        """Read a specialist saved by :meth:`save` (verified SEF; no code is executed).

        Raises
        ------
        FormatError
            Any defect, in one message naming the file: a field of the wrong type, a map or
            estimator that does not rebuild, a centroid that is not one finite vector of the
            frame's dimension, an estimator of another dimension than the frame, stray arrays.
        """
        arrays, meta = load_sef(path, kind="specialist")
        try:
            return cls._from_meta(meta, arrays)
        except (KeyError, TypeError, KeffError) as exc:
            raise FormatError(f"{path}: not a valid specialist ({exc})") from None

    @classmethod
    def _from_meta(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Specialist:
        """Rebuild from verified SEF content, checking every field, part and array (FormatError)."""
        missing = [key for key in ("name", "encoder", "fingerprint", *_PARTS) if key not in meta]
        if missing:
            raise FormatError(f"the metadata lacks {missing}")
        groups = split_prefixes(arrays)
        stray = sorted(k for k in groups if k not in ("", *_PARTS))
        if stray:
            raise FormatError(f"arrays under {shown(stray)} belong to no part of a specialist")
        texts = {key: _text(meta, key) for key in ("name", "encoder", "fingerprint")}
        domain, info = meta.get("domain"), meta.get("info", {})
        if domain is not None and not isinstance(domain, str):
            raise FormatError(f"domain must be a string or null; got {shown(domain)}")
        if not isinstance(info, dict):
            raise FormatError(f"info must be a JSON object; got {shown(info)}")
        mapping = None if meta["map"] is None else map_from_description(meta["map"], groups.get("map", {}))
        if mapping is None and "map" in groups:
            raise FormatError("the specialist has no map but the file holds map arrays")
        uncertainty = rebuild_uncertainty(meta["uncertainty"], groups.get("uncertainty", {}))
        frame_dim = uncertainty.n_features_in_ if mapping is None else mapping.target_dim_
        if uncertainty.n_features_in_ != frame_dim:
            raise FormatError(
                f"the uncertainty estimator takes {uncertainty.n_features_in_}-d vectors but the map outputs "
                f"{frame_dim}-d frame vectors"
            )
        own = check_arrays("Specialist", _CENTROID, groups.get("", {}), {"frame_dim": frame_dim})
        return cls(**texts, map=mapping, centroid=own["centroid"], uncertainty=uncertainty, domain=domain, info=info)


def _text(meta: dict[str, Any], key: str) -> str:
    """``meta[key]``, which must be a non-empty string."""
    value = meta[key]
    if not isinstance(value, str) or not value:
        raise FormatError(f"{key} must be a non-empty string; got {shown(value)}")
    return value


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
        Map kind (a name in :data:`keff.maps.MAPS`).
    """
    mapping = None if anchors_frame is None else make_map(map_kind).fit(anchors_own, anchors_frame)
    spec = Specialist(name, encoder.name, encoder.fingerprint, mapping, np.zeros(1), uncertainty, domain, info or {})
    frame = spec.to_frame(domain_texts_own)
    centroid = frame.mean(axis=0)
    spec.centroid = (centroid / np.linalg.norm(centroid)).astype(np.float32)
    spec.uncertainty = uncertainty.fit(frame)
    return spec

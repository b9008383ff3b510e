"""The vector-map contract shared by every estimator in :mod:`keff.maps`.

Rows are items and a map is applied as ``X @ W + b`` (one convention everywhere). Estimators
follow scikit-learn's habits: ``__init__`` stores arguments only, ``fit(X, Y)`` validates its
input and returns ``self``, learned state ends with ``_``, and ``transform`` refuses an unfitted
estimator. Every map saves to and loads from one SEF file (:mod:`keff.sef`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from keff.errors import FormatError, KeffError
from keff.estimator import DIM, ArraySpec, Estimator, ScalarSpec, rebuild
from keff.sef import load_sef, save_sef

#: Map classes by name, filled by :func:`register_map`; :func:`load_map` dispatches on it.
MAP_TYPES: dict[str, type[Map]] = {}


def register_map(cls: type[Map]) -> type[Map]:
    """Class decorator: make ``cls`` loadable by name from SEF files."""
    MAP_TYPES[cls.__name__] = cls
    return cls


def as_matrix(X: Any, name: str = "X") -> np.ndarray:
    """Validate a 2-D finite numeric array and return it as float32 (a copy only if needed)."""
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise KeffError(f"{name} must be 2-D (n, d); got shape {arr.shape}")
    if arr.dtype.kind not in "fiu":
        raise KeffError(f"{name} must be numeric; got dtype {arr.dtype}")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise KeffError(f"{name} holds NaN or infinite values")
    return arr


def check_pair(X: Any, Y: Any, *, min_rows: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Validate paired training rows: both 2-D and finite, the same number of rows."""
    X, Y = as_matrix(X, "X"), as_matrix(Y, "Y")
    if X.shape[0] != Y.shape[0]:
        raise KeffError(f"X has {X.shape[0]} rows but Y has {Y.shape[0]}: rows must be paired")
    if X.shape[0] < min_rows:
        raise KeffError(f"need at least {min_rows} paired rows to fit, got {X.shape[0]}")
    return X, Y


class Map(Estimator):
    """Base class of vector maps: ``fit(X, Y)`` then ``transform(X)``.

    Subclasses implement ``_fit(X, Y)`` (float32 inputs, validated), ``_transform(X)``, and
    declare their fitted arrays in ``_state`` (shapes in terms of ``source_dim_``,
    ``target_dim_`` and other symbols, see :mod:`keff.estimator`) and their fitted scalars in
    ``_scalars``. ``source_dim_`` and ``target_dim_`` are set by :meth:`fit`.
    """

    #: Fitted arrays saved to SEF (each ends with ``_``): name -> shape or ArraySpec.
    _state: ClassVar[Mapping[str, ArraySpec]] = {}
    #: Fitted scalars (numbers, strings) saved in the SEF metadata JSON: name -> ScalarSpec.
    _scalars: ClassVar[Mapping[str, ScalarSpec]] = {}
    _fitted_marker: ClassVar[str] = "source_dim_"

    # -- fitting and applying -------------------------------------------------------------
    def fit(self, X: Any, Y: Any) -> Map:
        """Learn the map from paired rows ``X`` (n, d_source) -> ``Y`` (n, d_target)."""
        X, Y = check_pair(X, Y)
        self._fit(X, Y)
        self.source_dim_ = int(X.shape[1])
        self.target_dim_ = int(Y.shape[1])
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Map rows ``X`` (n, d_source) to float32 (n, d_target)."""
        self._check_fitted()
        X = as_matrix(X)
        if X.shape[1] != self.source_dim_:
            raise KeffError(f"{type(self).__name__} was fitted on {self.source_dim_}-d input; got {X.shape[1]}-d")
        return np.asarray(self._transform(X), dtype=np.float32)

    def fit_transform(self, X: Any, Y: Any) -> np.ndarray:
        return self.fit(X, Y).transform(X)

    def _fit(self, X: np.ndarray, Y: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _transform(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- parameters and state -------------------------------------------------------------
    def set_state(self, arrays: dict[str, np.ndarray], source_dim: int, target_dim: int) -> Map:
        """Restore fitted arrays (the inverse of :meth:`get_state`).

        Raises
        ------
        FormatError
            A dimension that is not an int in ``[1, MAX_DIM]``, or arrays that do not match
            the declared ``_state`` (see :func:`keff.estimator.check_arrays`).
        """
        owner = type(self).__name__
        self.source_dim_ = DIM.check(owner, "source_dim", source_dim)
        self.target_dim_ = DIM.check(owner, "target_dim", target_dim)
        self._restore_arrays(arrays)
        return self

    def describe(self) -> dict[str, Any]:
        """``type``, ``params`` and dimensions: how the map appears in SEF metadata and reports."""
        self._check_fitted()
        description = {
            "type": type(self).__name__,
            "params": self.get_params(),
            "source_dim": self.source_dim_,
            "target_dim": self.target_dim_,
        }
        if self._scalars:
            description["fitted"] = {name: getattr(self, name) for name in self._scalars}
        return description

    @classmethod
    def from_description(cls, description: dict[str, Any], arrays: dict[str, np.ndarray]) -> Map:
        """Rebuild a fitted map, checking parameters, fitted scalars, dimensions and arrays;
        composite maps (a chain) override this."""
        est = cls._from_params(description)
        est._restore_scalars(description.get("fitted", {}), cls._scalars)
        return est.set_state(arrays, description.get("source_dim"), description.get("target_dim"))

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: str | Path, *, meta: dict[str, Any] | None = None) -> Path:
        """Write the fitted map to one SEF file; ``meta`` adds provenance (encoders, anchors,
        fit quality, command) under ``meta["provenance"]``."""
        return save_sef(path, self.get_state(), {"kind": "map", **self.describe(), "provenance": meta or {}})


def map_from_description(description: dict[str, Any], arrays: dict[str, np.ndarray]) -> Map:
    """Rebuild a fitted map from its :meth:`Map.describe` dict and :meth:`Map.get_state` arrays."""
    return rebuild(MAP_TYPES, description, arrays, what="map")


def load_map(path: str | Path) -> tuple[Map, dict[str, Any]]:
    """Load a map saved with :meth:`Map.save`: returns ``(map, meta)``.

    Raises
    ------
    FormatError
        Any defect of the file or of the map it describes (wrong shapes, types, dimensions,
        unknown map type), in one message naming the file.
    """
    arrays, meta = load_sef(path, kind="map")
    try:
        return map_from_description(meta, arrays), meta
    except FormatError as exc:
        raise FormatError(f"{path}: {exc}") from None

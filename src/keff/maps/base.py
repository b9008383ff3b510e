"""The vector-map contract shared by every estimator in :mod:`keff.maps`.

Rows are items and a map is applied as ``X @ W + b`` (one convention everywhere). Estimators
follow scikit-learn's habits: ``__init__`` stores arguments only, ``fit(X, Y)`` validates its
input and returns ``self``, learned state ends with ``_``, and ``transform`` refuses an unfitted
estimator. Every map saves to and loads from one SEF file (:mod:`keff.sef`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from keff.arrays import as_matrix
from keff.errors import FormatError, KeffError
from keff.estimator import DIM, ArraySpec, Estimator, ScalarSpec, rebuild, registrar
from keff.sef import load_sef, save_sef, shown

#: The map registry: short name (``"procrustes"``) -> class, filled by :func:`register_map`. The
#: CLI, the studies and the index all read it; adding a map kind is its module plus one import line
#: in :mod:`keff.maps`.
MAPS: dict[str, type[Map]] = {}
#: The same classes by class name, as SEF files record them; :func:`load_map` dispatches on it.
MAP_TYPES: dict[str, type[Map]] = {}


#: Class decorator: register a map class under the short ``name`` (and its class name).
register_map = registrar("map", MAPS, MAP_TYPES)


def map_params(kind: str) -> tuple[str, ...]:
    """Constructor parameters of the map registered as ``kind``."""
    cls = _map_class(kind)
    return tuple(p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "args", "kwargs"))


def _map_class(kind: str) -> type[Map]:
    if kind not in MAPS:
        raise KeffError(f"unknown map kind {kind!r} (choose from {', '.join(MAPS)})")
    return MAPS[kind]


def make_map(kind: str, **params: Any) -> Map:
    """An unfitted map by short name, e.g. ``make_map("lowrank", rank=64)``.

    Raises
    ------
    KeffError
        An unknown kind (the message lists the registered ones) or a parameter the map does not
        take (the message lists those it does).
    """
    cls = _map_class(kind)
    unknown = sorted(set(params) - set(map_params(kind)))
    if unknown:
        raise KeffError(f"map {kind!r} takes no parameter {unknown} (it takes {', '.join(map_params(kind))})")
    return cls(**params)


def resolve_base(base: Any, choices: tuple[str, ...], source_dim: int, target_dim: int, *, unequal: str) -> str:
    """The base mode a map with a ``base`` parameter uses for these dimensions.

    ``"auto"`` is ``"identity"`` when the dimensions match and ``unequal`` otherwise;
    ``"identity"`` needs equal dimensions. ``choices`` are the modes the map accepts ("auto"
    among them).
    """
    if not isinstance(base, str) or base not in choices:
        raise KeffError(f"base must be one of {', '.join(map(repr, choices))}; got {shown(base)}")
    if base == "auto":
        return "identity" if source_dim == target_dim else unequal
    if base == "identity" and source_dim != target_dim:
        others = " or ".join(repr(c) for c in choices if c not in ("auto", "identity"))
        raise KeffError(
            f"base='identity' needs equal dimensions; got source {source_dim}-d and target {target_dim}-d "
            f"(use base={others})"
        )
    return base


#: One chain of matrix products: the shapes of ``M1, M2, ...`` in ``x @ M1 @ M2 @ ...``.
ProductChain = tuple[tuple[int, int], ...]
#: A map's cost floor: rows (n, source_dim) -> (n, target_dim) by plain float32 matrix products.
Floor = Callable[[np.ndarray], np.ndarray]


def product_floor(rng: np.random.Generator, *chains: ProductChain) -> Floor:
    """``x -> sum over chains of x @ M1 @ M2 @ ...``, with random float32 matrices of the shapes given.

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws the matrices (their values are irrelevant: only their shapes cost time).
    *chains : tuple of (int, int) shapes
        At least one chain; every chain must start at the input width and end at the same width.
    """
    if not chains or not all(chains):
        raise KeffError("a product floor needs at least one non-empty chain of matrix shapes")
    matrices = [[rng.standard_normal(shape).astype(np.float32) for shape in chain] for chain in chains]

    def floor(x: np.ndarray) -> np.ndarray:
        total = None
        for chain in matrices:
            out = x
            for M in chain:
                out = out @ M
            if total is None:
                total = out
            else:
                total += out
        return total

    return floor


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
    #: The short name the map is registered under (set by :func:`register_map`).
    registered_as: ClassVar[str] = ""
    #: Whether ``fit`` takes ``groups`` (pairs whose answers count as right for each other).
    fit_takes_groups: ClassVar[bool] = False

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

    def matmul_floor(self, rng: np.random.Generator) -> Floor:
        """The map's cost floor: plain float32 matrix products of the shapes its own arithmetic uses.

        Timing :meth:`transform` against this function separates the map's unavoidable matrix
        products from its overhead (biases, non-linearities, routing, input checks). The
        matrices are random (their values cost nothing); biases and element-wise steps are left
        out.

        Parameters
        ----------
        rng : numpy.random.Generator
            Draws the random matrices.

        Returns
        -------
        callable
            ``floor(x)`` for float32 ``x`` (n, source_dim_) returns float32 (n, target_dim_). The
            default is one ``x @ W`` with ``W`` (source_dim_, target_dim_); maps whose arithmetic
            differs override it.
        """
        self._check_fitted()
        return product_floor(rng, ((self.source_dim_, self.target_dim_),))

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

"""The estimator contract shared by maps, uncertainty estimators and gates.

scikit-learn's habits: ``__init__`` stores its arguments only, ``fit`` validates its input and
returns ``self``, learned state ends with ``_``, and using an unfitted estimator is a clear
error. On top of that, every keff estimator can describe itself as JSON (type, parameters,
fitted scalars) plus named arrays, which is exactly what a SEF file holds, so one mechanism
saves and restores all of them.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import numpy as np

from keff.errors import FormatError, KeffError, NotFittedError


class Estimator:
    """Base of every fitted keff component.

    Subclasses list their fitted array attributes in ``_state`` and their fitted scalar
    attributes (numbers, strings, small lists) in ``_scalars``; :meth:`is_fitted` is true once
    the attribute named by ``_fitted_marker`` exists.
    """

    _state: ClassVar[tuple[str, ...]] = ()
    _scalars: ClassVar[tuple[str, ...]] = ()
    _fitted_marker: ClassVar[str] = "n_features_in_"

    # -- fitted or not ----------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        return hasattr(self, self._fitted_marker)

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit first")

    # -- parameters and state ---------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serialisable), as scikit-learn's ``get_params``."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p not in ("self", "args", "kwargs")]
        # JSON has no tuples: report them as lists so save/load gives back equal parameters
        return {n: list(v) if isinstance(v, tuple) else v for n in names for v in [getattr(self, n)]}

    def get_state(self) -> dict[str, np.ndarray]:
        """Fitted arrays by attribute name."""
        self._check_fitted()
        return {name: np.asarray(getattr(self, name)) for name in self._state}

    def _restore_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        missing = [n for n in self._state if n not in arrays]
        if missing:
            raise FormatError(f"{type(self).__name__} state lacks arrays {missing}")
        for name in self._state:
            setattr(self, name, arrays[name])

    def fitted_scalars(self) -> dict[str, Any]:
        """Fitted scalar attributes by name (saved in the SEF metadata JSON)."""
        return {name: getattr(self, name) for name in (*self._scalars, self._fitted_marker)}

    def describe(self) -> dict[str, Any]:
        """``type``, ``params`` and fitted scalars: the JSON half of a saved estimator."""
        self._check_fitted()
        return {"type": type(self).__name__, "params": self.get_params(), "fitted": self.fitted_scalars()}

    @classmethod
    def from_description(cls, description: dict[str, Any], arrays: dict[str, np.ndarray]) -> Estimator:
        """Rebuild a fitted estimator from :meth:`describe` and :meth:`get_state` output."""
        est = cls(**description.get("params", {}))
        est._restore_arrays(arrays)
        fitted = description.get("fitted", {})
        names = (*est._scalars, est._fitted_marker)
        missing = [n for n in names if n not in fitted]
        if missing:
            raise FormatError(f"{cls.__name__} description lacks fitted values {missing}")
        for name in names:
            setattr(est, name, fitted[name])
        return est

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def rebuild(
    registry: dict[str, type[Estimator]], description: dict[str, Any], arrays: dict[str, np.ndarray], *, what: str
):
    """Rebuild an estimator of a registered type (``what`` names the family in errors, e.g.
    "map"); any defect is a :class:`FormatError`."""
    name = description.get("type")
    cls = registry.get(name) if isinstance(name, str) else None
    if cls is None:
        raise FormatError(f"unknown {what} type {name!r} (known: {', '.join(sorted(registry))})")
    try:
        return cls.from_description(description, arrays)
    except (TypeError, KeyError, ValueError, KeffError) as exc:
        raise FormatError(f"cannot rebuild {name}: {exc}") from None


def prefixed(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The arrays whose names start with ``prefix + "/"``, with the prefix removed."""
    head = prefix + "/"
    return {k[len(head) :]: v for k, v in arrays.items() if k.startswith(head)}

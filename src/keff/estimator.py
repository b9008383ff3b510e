"""The estimator contract shared by maps, uncertainty estimators and gates.

scikit-learn's habits: ``__init__`` stores its arguments only, ``fit`` validates its input and
returns ``self``, learned state ends with ``_``, and using an unfitted estimator is a clear
error. On top of that, every keff estimator can describe itself as JSON (type, parameters,
fitted scalars) plus named arrays, which is exactly what a SEF file holds, so one mechanism
saves and restores all of them.

Restoring is also where untrusted files are checked, in one place and from one declaration per
class: ``_state`` maps each fitted array to its :class:`ArraySpec` (shape in symbols, dtype)
and ``_scalars`` maps each fitted scalar to its :class:`ScalarSpec`. :func:`check_arrays` and
:meth:`ScalarSpec.check` turn every mismatch into a :class:`~keff.errors.FormatError`.

Shape symbols
    An axis is an ``int`` or a symbol. A symbol that names an attribute of the estimator when
    its arrays are restored (a dimension such as ``source_dim_`` or ``n_features_in_``, a
    fitted integer scalar such as ``n_clusters_``, an integer parameter such as ``hidden``)
    must equal that value. Any other symbol (by convention a short name: ``r``, ``m``, ``n``)
    is free: the first array that uses it binds it, and every later use must agree.

Dtype policy
    A floating array (F16, F32 or F64 in SEF) is cast to the declared float dtype (float32,
    or float64 where the estimator computes in float64) and must be finite; an integer array
    where floats are declared, or a floating one where integers are declared, is a
    :class:`~keff.errors.FormatError` (never cast). Integer arrays (I32, I64, U8) are cast to
    the declared int64.

Dimensions
    Declared dimensions (``source_dim``, ``target_dim``, ``n_features_in_``) are ``int`` in
    ``[1, MAX_DIM]``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from keff.errors import FormatError, KeffError, NotFittedError
from keff.sef import shown

#: Largest dimension an estimator may declare (source_dim, target_dim, n_features_in_).
MAX_DIM = 1 << 20

Axis = int | str


def is_finite_number(value: Any) -> bool:
    """A real number (not a bool) whose float value is finite (a huge integer is not)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


@dataclass(frozen=True)
class ArraySpec:
    """The declared form of one fitted array.

    Parameters
    ----------
    shape : tuple of int or str
        One entry per axis: a fixed size or a symbol (see the module notes).
    dtype : numpy dtype, default float32
        float32 or float64 (floating arrays are cast to it and must be finite), or int64
        (integer arrays are cast to it).
    """

    shape: tuple[Axis, ...]
    dtype: type = np.float32


@dataclass(frozen=True)
class ScalarSpec:
    """The declared type of one fitted scalar (a value of the SEF metadata JSON).

    Parameters
    ----------
    kind : {float, int, bool, str}
        ``float`` accepts any finite number (ints too) and returns a float; ``int`` accepts an
        integer only (not a bool, not 3.0).
    minimum, maximum : float, optional
        Inclusive bounds for numbers.
    above : float, optional
        Exclusive lower bound for numbers.
    choices : tuple of str, optional
        The allowed strings.
    optional : bool, default False
        ``None`` is allowed too.
    """

    kind: type
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    choices: tuple[str, ...] = ()
    optional: bool = False

    def check(self, owner: str, name: str, value: Any) -> Any:
        """``value`` as the declared Python type, or a :class:`FormatError` naming ``owner`` and ``name``."""
        if value is None and self.optional:
            return None
        checked = self._typed(value)
        if checked is None:
            raise FormatError(f"{owner}: {name} = {shown(value)} is not {self._wanted()}")
        return checked

    def _typed(self, value: Any) -> Any:
        if self.kind is bool:
            return bool(value) if isinstance(value, (bool, np.bool_)) else None
        if self.kind is str:
            return value if isinstance(value, str) and (not self.choices or value in self.choices) else None
        if self.kind is int:
            ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
            number = int(value) if ok else None
        else:
            number = float(value) if is_finite_number(value) else None
        return number if number is not None and self._in_range(number) else None

    def _in_range(self, number: float) -> bool:
        return (
            (self.minimum is None or number >= self.minimum)
            and (self.maximum is None or number <= self.maximum)
            and (self.above is None or number > self.above)
        )

    def _wanted(self) -> str:
        if self.kind is str:
            return f"one of {list(self.choices)}" if self.choices else "a string"
        words = {bool: "true or false", int: "an integer", float: "a finite number"}[self.kind]
        bounds = [f">= {self.minimum}"] if self.minimum is not None else []
        bounds += [f"> {self.above}"] if self.above is not None else []
        bounds += [f"<= {self.maximum}"] if self.maximum is not None else []
        return " ".join([words, " and ".join(bounds)]).strip() + (" (or null)" if self.optional else "")


#: A declared dimension: an int in [1, MAX_DIM].
DIM = ScalarSpec(int, minimum=1, maximum=MAX_DIM)
#: Any finite number.
FINITE = ScalarSpec(float)
#: A finite number >= 0.
NON_NEGATIVE = ScalarSpec(float, minimum=0)
#: An integer >= 0.
COUNT = ScalarSpec(int, minimum=0)
#: True or False.
FLAG = ScalarSpec(bool)


def _array_specs(owner: str, state: Any) -> dict[str, ArraySpec]:
    """Normalise a ``_state`` declaration: a bare shape tuple means a float32 array."""
    if not isinstance(state, Mapping):
        raise TypeError(f"{owner}._state must map each fitted array name to its shape or ArraySpec")
    return {name: spec if isinstance(spec, ArraySpec) else ArraySpec(tuple(spec)) for name, spec in state.items()}


def split_prefixes(arrays: Mapping[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """Group arrays by the part of their name before the first ``"/"``, in one pass.

    ``{"W_": a, "0/W_": b, "0/1/A_": c}`` gives ``{"": {"W_": a}, "0": {"W_": b, "1/A_": c}}``.

    Raises
    ------
    FormatError
        A name starting with ``"/"`` (an empty prefix would alias an unprefixed array).
    """
    groups: dict[str, dict[str, np.ndarray]] = {}
    for name, arr in arrays.items():
        head, sep, rest = name.partition("/")
        if sep and not head:
            raise FormatError(f"array name {shown(name)} starts with '/'")
        key, rest = (head, rest) if sep else ("", name)
        groups.setdefault(key, {})[rest] = arr
    return groups


def prefixed(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The arrays whose names start with ``prefix + "/"``, with the prefix removed."""
    return split_prefixes(arrays).get(prefix, {})


def check_arrays(
    owner: str, specs: Mapping[str, ArraySpec], arrays: Mapping[str, Any], symbols: Mapping[str, int]
) -> dict[str, np.ndarray]:
    """Check named arrays against their declared specs; returns them cast to the declared dtypes.

    Parameters
    ----------
    owner : str
        Who holds the arrays, for messages (e.g. ``"Procrustes"``).
    specs : mapping of str to ArraySpec
        Every array expected, and only those.
    arrays : mapping of str to array
        What the file (or caller) holds.
    symbols : mapping of str to int
        Values of the bound shape symbols; any other symbol is free (see the module notes).

    Raises
    ------
    FormatError
        A missing or unexpected array, a wrong number of axes, an axis that disagrees with its
        symbol, a wrong dtype kind, or a NaN/inf entry.
    """
    missing = [name for name in specs if name not in arrays]
    if missing:
        raise FormatError(f"{owner} state lacks arrays {missing}")
    extra = [name for name in arrays if name not in specs]
    if extra:
        raise FormatError(f"{owner} state holds unexpected arrays {shown(sorted(extra))}")
    bound = dict(symbols)
    return {name: _checked_array(owner, name, spec, np.asarray(arrays[name]), bound) for name, spec in specs.items()}


def _checked_array(owner: str, name: str, spec: ArraySpec, arr: np.ndarray, bound: dict[str, int]) -> np.ndarray:
    fits = arr.ndim == len(spec.shape) and all(_axis_fits(a, n, bound) for a, n in zip(spec.shape, arr.shape))
    if not fits:
        want = ", ".join(str(a) if isinstance(a, int) or a not in bound else f"{a}={bound[a]}" for a in spec.shape)
        raise FormatError(f"{owner} array {name} has shape {arr.shape}, expected ({want})")
    target = np.dtype(spec.dtype)
    if target.kind == "f":
        if arr.dtype.kind != "f":
            raise FormatError(f"{owner} array {name} has dtype {arr.dtype}, expected floating point")
        with np.errstate(over="ignore"):  # a float64 beyond float32's range becomes inf, refused below
            out = arr.astype(target, copy=False)
        if not np.isfinite(out).all():
            raise FormatError(f"{owner} array {name} holds NaN or infinite values (as {target})")
        return out
    if arr.dtype.kind not in "iu":
        raise FormatError(f"{owner} array {name} has dtype {arr.dtype}, expected integers")
    return arr.astype(target, copy=False)


def _axis_fits(axis: Axis, size: int, bound: dict[str, int]) -> bool:
    if isinstance(axis, int):
        return size == axis
    return bound.setdefault(axis, size) == size  # a free symbol is bound by its first use


class Estimator:
    """Base of every fitted keff component.

    Subclasses declare their fitted arrays in ``_state`` (name -> shape tuple or
    :class:`ArraySpec`) and their fitted scalars in ``_scalars`` (name -> :class:`ScalarSpec`);
    :meth:`is_fitted` is true once the attribute named by ``_fitted_marker`` exists. Hooks:
    ``_check_params`` validates constructor arguments (at fit and at load), ``_state_specs``
    adds arrays that depend on parameters, ``_after_restore`` checks what shapes cannot say and
    derives cached attributes.
    """

    _state: ClassVar[Mapping[str, ArraySpec]] = {}
    _scalars: ClassVar[Mapping[str, ScalarSpec]] = {}
    _fitted_marker: ClassVar[str] = "n_features_in_"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "_state" in cls.__dict__:
            cls._state = _array_specs(cls.__name__, cls.__dict__["_state"])
        scalars = cls.__dict__.get("_scalars", {})
        if not isinstance(scalars, Mapping) or not all(isinstance(s, ScalarSpec) for s in scalars.values()):
            raise TypeError(f"{cls.__name__}._scalars must map each fitted scalar name to its ScalarSpec")

    # -- fitted or not ----------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        return hasattr(self, self._fitted_marker)

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit first")

    def _check_params(self) -> None:
        """Validate the constructor arguments (raise :class:`KeffError`); called by ``fit`` and on load."""

    # -- parameters and state ---------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serialisable), as scikit-learn's ``get_params``."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p not in ("self", "args", "kwargs")]
        # JSON has no tuples: report them as lists so save/load gives back equal parameters
        return {n: list(v) if isinstance(v, tuple) else v for n in names for v in [getattr(self, n)]}

    def _state_specs(self) -> Mapping[str, ArraySpec]:
        """The arrays this estimator saves: ``_state``, plus any its parameters add."""
        return self._state

    def get_state(self) -> dict[str, np.ndarray]:
        """Fitted arrays by attribute name."""
        self._check_fitted()
        return {name: np.asarray(getattr(self, name)) for name in self._state_specs()}

    def _restore_arrays(self, arrays: Mapping[str, Any]) -> None:
        """Check ``arrays`` against :meth:`_state_specs` and set them (cast to the declared dtypes)."""
        specs = self._state_specs()
        checked = check_arrays(type(self).__name__, specs, arrays, self._shape_symbols(specs))
        for name, arr in checked.items():
            setattr(self, name, arr)
        self._after_restore()

    def _shape_symbols(self, specs: Mapping[str, ArraySpec]) -> dict[str, int]:
        """The shape symbols of ``specs`` that name an attribute, with its (integer) value."""
        symbols = {}
        for axis in {a for spec in specs.values() for a in spec.shape if isinstance(a, str)}:
            value = getattr(self, axis, None)
            if value is None:
                continue  # a free symbol
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
                raise FormatError(f"{type(self).__name__}: {axis} = {shown(value)} is not an integer")
            symbols[axis] = int(value)
        return symbols

    def _after_restore(self) -> None:
        """Check what shapes cannot say and derive cached attributes (raise :class:`FormatError`)."""

    def _restore_scalars(self, fitted: Any, specs: Mapping[str, ScalarSpec]) -> None:
        """Check ``fitted`` (the description's JSON object) against ``specs`` and set each value."""
        owner = type(self).__name__
        if not isinstance(fitted, dict):
            raise FormatError(f"{owner} fitted values must be a JSON object; got {shown(fitted)}")
        missing = [name for name in specs if name not in fitted]
        if missing:
            raise FormatError(f"{owner} description lacks fitted values {missing}")
        for name, spec in specs.items():
            setattr(self, name, spec.check(owner, name, fitted[name]))

    def fitted_scalars(self) -> dict[str, Any]:
        """Fitted scalar attributes by name (saved in the SEF metadata JSON)."""
        return {name: getattr(self, name) for name in (*self._scalars, self._fitted_marker)}

    def describe(self) -> dict[str, Any]:
        """``type``, ``params`` and fitted scalars: the JSON half of a saved estimator."""
        self._check_fitted()
        return {"type": type(self).__name__, "params": self.get_params(), "fitted": self.fitted_scalars()}

    @classmethod
    def _from_params(cls, description: dict[str, Any]) -> Estimator:
        """A new, unfitted estimator from ``description["params"]``, its arguments validated."""
        params = description.get("params", {})
        if not isinstance(params, dict):
            raise FormatError(f"{cls.__name__} params must be a JSON object; got {shown(params)}")
        try:
            est = cls(**params)
        except TypeError:
            raise FormatError(f"{cls.__name__} does not take the parameters {shown(sorted(params))}") from None
        est._check_params()
        return est

    @classmethod
    def from_description(cls, description: dict[str, Any], arrays: dict[str, np.ndarray]) -> Estimator:
        """Rebuild a fitted estimator from :meth:`describe` and :meth:`get_state` output; every
        parameter, scalar and array is checked first (a defect is a :class:`FormatError`)."""
        est = cls._from_params(description)
        est._restore_scalars(description.get("fitted", {}), {**cls._scalars, cls._fitted_marker: DIM})
        est._restore_arrays(arrays)
        return est

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def registrar(what: str, by_name: dict[str, type], by_type: dict[str, type]) -> Callable[[str], Callable[[type], type]]:
    """The ``register_<kind>(name)`` class decorator of one registry: it files a class under its
    short ``name`` in ``by_name`` and under its class name (as SEF files record it) in
    ``by_type``, and sets ``cls.registered_as``; a name taken by another class is an error."""

    def register(name: str) -> Callable[[type], type]:
        def add(cls: type) -> type:
            if name in by_name and by_name[name] is not cls:
                raise KeffError(f"{what} name {name!r} is taken by {by_name[name].__name__}")
            by_name[name] = cls
            by_type[cls.__name__] = cls
            cls.registered_as = name  # type: ignore[attr-defined]
            return cls

        return add

    return register


def n_parameters(est: Estimator | None) -> int:
    """Stored numbers of a fitted estimator (every fitted array's size; 0 for None, the identity)."""
    return 0 if est is None else int(sum(np.asarray(a).size for a in est.get_state().values()))


def rebuild(
    registry: dict[str, type[Estimator]], description: Any, arrays: dict[str, np.ndarray], *, what: str
) -> Estimator:
    """Rebuild an estimator of a registered type (``what`` names the family in errors, e.g.
    "map"); any defect is a :class:`FormatError`."""
    if not isinstance(description, dict):
        raise FormatError(f"a {what} description must be a JSON object; got {shown(description)}")
    name = description.get("type")
    cls = registry.get(name) if isinstance(name, str) else None
    if cls is None:
        raise FormatError(f"unknown {what} type {shown(name)} (known: {', '.join(sorted(registry))})")
    try:
        return cls.from_description(description, arrays)
    except (TypeError, KeyError, ValueError, KeffError) as exc:
        raise FormatError(f"cannot rebuild {name}: {exc}") from None

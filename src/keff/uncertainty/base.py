"""The per-query variance contract shared by every estimator in :mod:`keff.uncertainty`.

A variance estimator is fitted on reference vectors of one specialist (its training documents
or validation queries, never test data) and then gives every query a variance
``sigma^2(q) > 0``; Kalman fusion weights the specialist's query vector by ``1 / sigma^2``.
Every estimator also exposes its un-squashed statistic (:meth:`VarianceEstimator.raw_score`,
e.g. a distance), which :class:`~keff.uncertainty.calibrated.CalibratedVariance` can map to an
observed retrieval error.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np

from keff.arrays import as_matrix
from keff.errors import KeffError
from keff.estimator import Estimator, is_finite_number, rebuild
from keff.sef import shown

#: Variance estimator classes by name, filled by :func:`register_uncertainty`.
UNCERTAINTY_TYPES: dict[str, type[VarianceEstimator]] = {}


def register_uncertainty(cls: type[VarianceEstimator]) -> type[VarianceEstimator]:
    """Class decorator: make ``cls`` rebuildable by name with :func:`rebuild_uncertainty`."""
    UNCERTAINTY_TYPES[cls.__name__] = cls
    return cls


def as_vectors(X: Any, name: str, *, min_rows: int = 1) -> np.ndarray:
    """Validate a finite float (n, d) array with at least ``min_rows`` rows; returns float32.

    Raises
    ------
    KeffError
        On a 1-D or non-2-D array, a non-float dtype, a NaN/inf entry (the row is named) or too
        few rows.
    """
    arr = as_matrix(X, name, floating=True)
    if arr.shape[0] < min_rows:
        raise KeffError(f"{name} needs at least {min_rows} rows; got {arr.shape[0]}")
    if arr.shape[1] == 0:
        raise KeffError(f"{name} has dimension 0")
    return arr


def as_scores(values: Any, name: str, n: int | None = None) -> np.ndarray:
    """Validate a finite 1-D array (of length ``n`` when given); returns float64."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise KeffError(f"{name} must be 1-D (n,); got shape {arr.shape}")
    if arr.dtype.kind not in "fiu":
        raise KeffError(f"{name} must be numeric; got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise KeffError(f"{name} must be finite; entry {int(np.flatnonzero(~np.isfinite(arr))[0])} is NaN or inf")
    if n is not None and arr.shape[0] != n:
        raise KeffError(f"{name} has {arr.shape[0]} entries but there are {n} rows: they must be paired")
    return arr


def check_positive(name: str, value: Any, *, allow_zero: bool = False, integer: bool = False) -> float | int:
    """Validate a finite number > 0 (>= 0 with ``allow_zero``; an int with ``integer``)."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool) if integer else is_finite_number(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        kind = "an integer" if integer else "a finite number"
        raise KeffError(f"{name} must be {kind} {'>= 0' if allow_zero else '> 0'}; got {shown(value)}")
    return int(value) if integer else float(value)


class VarianceEstimator(Estimator):
    """Base class: ``fit(V)`` on reference vectors, then ``variance(Q)`` per query.

    Subclasses implement ``_fit(V, **kw)`` (``V`` validated float32), ``_raw_score(Q)``
    (validated float32 queries of the fitted dimension) and ``_squash(raw)`` (raw score ->
    variance), validate their parameters in ``_check_params`` (run by ``_fit`` and on load),
    and declare their fitted arrays in ``_state`` (shapes in terms of ``n_features_in_`` and
    other symbols, see :mod:`keff.estimator`) and fitted scalars in ``_scalars``.

    Attributes
    ----------
    n_features_in_ : int
        Dimension of the vectors seen by :meth:`fit`; queries must match it.
    """

    _fitted_marker: ClassVar[str] = "n_features_in_"
    #: Fewest reference rows :meth:`fit` accepts.
    _min_rows: ClassVar[int] = 1

    def fit(self, V: Any, **kw: Any) -> Self:
        """Fit on reference vectors ``V`` (n, d) (train/validation only, never test).

        Parameters
        ----------
        V : ndarray, shape (n, d)
            Reference vectors in the specialist's frame, one row per item; finite floats.
        **kw
            Estimator-specific inputs (e.g. validation scores and errors).

        Returns
        -------
        self
        """
        V = as_vectors(V, "V", min_rows=self._min_rows)
        self._fit(V, **kw)
        self.n_features_in_ = int(V.shape[1])
        return self

    def _check_queries(self, Q: Any) -> np.ndarray:
        self._check_fitted()
        Q = as_vectors(Q, "Q", min_rows=0)
        if Q.shape[1] != self.n_features_in_:
            raise KeffError(
                f"{type(self).__name__} was fitted on {self.n_features_in_}-d vectors; got {Q.shape[1]}-d queries"
            )
        return Q

    def raw_score(self, Q: Any) -> np.ndarray:
        """The un-squashed statistic per query (e.g. a cosine distance); higher = less certain.

        Parameters
        ----------
        Q : ndarray, shape (n_q, d)
            Query vectors in the specialist's frame.

        Returns
        -------
        ndarray of float64, shape (n_q,)
        """
        return np.asarray(self._raw_score(self._check_queries(Q)), dtype=np.float64)

    def variance(self, Q: Any) -> np.ndarray:
        """Per-query variance ``sigma^2(q)``.

        Parameters
        ----------
        Q : ndarray, shape (n_q, d)
            Query vectors in the specialist's frame.

        Returns
        -------
        ndarray of float64, shape (n_q,)
            Finite and > 0 (anything else is raised as a :class:`KeffError`, never returned).
        """
        raw = self._raw_score(self._check_queries(Q))
        var = np.asarray(self._squash(np.asarray(raw, dtype=np.float64)), dtype=np.float64)
        bad = np.flatnonzero(~(np.isfinite(var) & (var > 0)))
        if bad.size:
            raise KeffError(f"{type(self).__name__} produced variance {var[bad[0]]!r} for query {int(bad[0])}")
        return var

    def _fit(self, V: np.ndarray, **kw: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _raw_score(self, Q: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _squash(self, raw: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


def rebuild_uncertainty(description: dict[str, Any], arrays: dict[str, np.ndarray]) -> VarianceEstimator:
    """Rebuild a fitted estimator from its ``describe()`` dict and ``get_state()`` arrays.

    Raises
    ------
    FormatError
        On an unknown type or missing/broken state.
    """
    return rebuild(UNCERTAINTY_TYPES, description, arrays, what="uncertainty")

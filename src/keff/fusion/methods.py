"""The fusion registries: one name per method, read by the searcher, the CLI and the studies.

Three kinds of fusion, one registry each:

- :data:`FUSERS` and :func:`fuse`: specialists' query vectors in one frame, (S, n, d) -> (n, d);
- :data:`WEIGHTINGS` and :func:`fusion_weights`: per-query specialist weights (S, n) from their
  sigma^2, for per-specialist indexes whose scores are combined (no common frame needed);
- :data:`SCORE_FUSERS` and :func:`score_fuse`: specialists' score matrices, (S, n, N) -> (n, N).

A new method is a function in its module and one line in its registry here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from keff.errors import KeffError
from keff.fusion.score import convex_scores, rrf_scores
from keff.fusion.vector import (
    check_stack,
    check_var,
    hard_route,
    kalman_fuse,
    mean_fuse,
    precision_weights,
    weighted_fuse,
    weighted_scores,
)


def _needs(method: str, name: str, value: Any) -> Any:
    if value is None:
        raise KeffError(f"fusion method {method!r} needs {name}")
    return value


def _uniform_weights(var: Any) -> np.ndarray:
    v = np.asarray(var)
    return np.full(v.shape[:2], 1.0 / v.shape[0], dtype=np.float32)


def _route_weights(var: Any) -> np.ndarray:
    v = np.asarray(var)
    check_var(v, (*v.shape[:2], 1), scalar_only=True)
    w = np.zeros(v.shape, dtype=np.float32)
    w[np.argmin(v, axis=0), np.arange(v.shape[1])] = 1.0
    return w


#: Vector fusers: ``f(Z, var, weights) -> (n, d)`` unit rows.
FUSERS: dict[str, Callable[[Any, Any, Any], np.ndarray]] = {
    "mean": lambda Z, var, weights: mean_fuse(Z),
    "kalman": lambda Z, var, weights: kalman_fuse(Z, _needs("kalman", "var", var)),
    "route": lambda Z, var, weights: hard_route(Z, _needs("route", "var", var))[0],
    "weighted": lambda Z, var, weights: weighted_fuse(Z, _needs("weighted", "weights", weights)),
}

#: Per-query specialist weights from sigma^2: ``f(var) -> (S, n)``, columns summing to 1.
WEIGHTINGS: dict[str, Callable[[Any], np.ndarray]] = {
    "mean": _uniform_weights,
    "kalman": precision_weights,
    "route": _route_weights,
}

#: Score fusers: ``f(scores (S, n, N), weights, k) -> (n, N)``.
SCORE_FUSERS: dict[str, Callable[[np.ndarray, Any, float], np.ndarray]] = {
    "weighted": lambda S, weights, k: weighted_scores(S, _needs("weighted", "per-query weights (S, n)", weights)),
    "convex": lambda S, weights, k: convex_scores(list(S), _needs("convex", "one weight per specialist", weights)),
    "rrf": lambda S, weights, k: rrf_scores([np.argsort(-s, axis=1, kind="stable") for s in S], S.shape[2], k),
}


def _method(registry: dict, method: str, what: str):
    if method not in registry:
        raise KeffError(f"unknown {what} method {method!r} (choose from {', '.join(registry)})")
    return registry[method]


def fuse(Z: Any, var: Any = None, *, method: str = "kalman", weights: Any = None) -> np.ndarray:
    """Fuse specialists' query vectors ``Z`` (S, n, d), already in one frame.

    Parameters
    ----------
    Z : array, shape (S, n, d)
    var : array, shape (S, n) or (S, n, d), optional
        sigma^2 per specialist and query (``kalman``, ``route``).
    method : str
        A name in :data:`FUSERS`: ``mean``, ``kalman``, ``route``, ``weighted``.
    weights : array, shape (S, n), optional
        Per-query weights (``weighted``; e.g. a :class:`~keff.fusion.LearnedGate`'s, transposed).

    Returns
    -------
    ndarray, shape (n, d), float32, unit rows
    """
    return _method(FUSERS, method, "fusion")(Z, var, weights)


def fusion_weights(var: Any, method: str = "kalman") -> np.ndarray:
    """Per-query specialist weights (S, n) from sigma^2 ``var`` (S, n), by a name in
    :data:`WEIGHTINGS` (``mean``, ``kalman``, ``route``)."""
    return _method(WEIGHTINGS, method, "weighting")(var)


def score_fuse(scores: Any, *, method: str = "weighted", weights: Any = None, k: float = 60.0) -> np.ndarray:
    """Fuse specialists' score matrices ``scores`` (S, n, N).

    Parameters
    ----------
    scores : array, shape (S, n, N)
        Specialist i's score of query q against document j at ``[i, q, j]``.
    method : str
        A name in :data:`SCORE_FUSERS`: ``weighted`` (per-query weights (S, n)), ``convex`` (one
        weight per specialist), ``rrf`` (reciprocal rank fusion of the full rankings).
    weights : array, optional
        As the method needs.
    k : float
        The RRF constant.

    Returns
    -------
    ndarray, shape (n, N), float32
    """
    fn = _method(SCORE_FUSERS, method, "score fusion")
    return fn(check_stack(scores, "scores"), weights, k)

"""Score-level fusion baselines: reciprocal rank fusion, convex score mixing, concatenation.

These combine what each specialist retrieves (its ranking or its dense score matrix) instead of
its query vector, so they need no common frame; they are the baselines vector fusion has to beat.
The tuners pick their one setting on VALIDATION queries through a caller-built ``objective``
(e.g. mean nDCG@10 of a dense score matrix); they never see relevance judgements themselves.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from keff.arrays import l2_normalize
from keff.errors import KeffError
from keff.fusion.vector import WEIGHT_SUM_TOL, check_stack
from keff.progress import progress_bar

#: Above this many specialists, :func:`tune_convex_weights` uses coordinate ascent, not a grid.
MAX_GRID_SPECIALISTS = 5

Objective = Callable[[np.ndarray], float]


def call_objective(objective: Callable[[np.ndarray], float], arg: np.ndarray, what: str) -> float:
    """``float(objective(arg))``, or an error naming ``what`` was being tried if it is not a finite number."""
    value = objective(arg)
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise KeffError(f"objective must return a number; got {type(value).__name__} for {what}") from None
    if not math.isfinite(value):
        raise KeffError(f"objective returned {value} for {what}")
    return value


def _check_rankings(rankings: Sequence[np.ndarray], n_docs: int) -> list[np.ndarray]:
    if len(rankings) == 0:
        raise KeffError("need at least one specialist's ranking")
    if isinstance(n_docs, bool) or not isinstance(n_docs, (int, np.integer)) or n_docs < 1:
        raise KeffError(f"n_docs must be an integer >= 1; got {n_docs!r}")
    out = []
    n = None
    for i, ranking in enumerate(rankings):
        arr = np.asarray(ranking)
        if arr.ndim != 2 or arr.dtype.kind not in "iu":
            raise KeffError(f"ranking {i} must be a 2-D integer array (n, K); got {arr.dtype} {arr.shape}")
        n = arr.shape[0] if n is None else n
        if arr.shape[0] != n:
            raise KeffError(f"ranking {i} has {arr.shape[0]} query rows; ranking 0 has {n}")
        bad = (arr < 0) | (arr >= n_docs)
        if bad.any():
            q, j = (int(x) for x in np.argwhere(bad)[0])
            raise KeffError(f"ranking {i}, query row {q}, rank {j + 1}: doc index {arr[q, j]} outside [0, {n_docs})")
        ordered = np.sort(arr, axis=1)
        dup = ordered[:, 1:] == ordered[:, :-1]
        if dup.any():
            q = int(np.argwhere(dup)[0][0])
            raise KeffError(f"ranking {i}, query row {q} lists a document more than once")
        out.append(arr)
    return out


def rrf_scores(rankings: Sequence[np.ndarray], n_docs: int, k: float = 60.0) -> np.ndarray:
    """Reciprocal rank fusion as a dense score matrix.

    Parameters
    ----------
    rankings : sequence of S integer arrays, each shape (n, K_i)
        Specialist i's top-K_i document indices per query, best first, no repeats in a row.
    n_docs : int
        Number of documents N (indices lie in [0, N)).
    k : float
        RRF constant (>= 0).

    Returns
    -------
    ndarray, shape (n, n_docs), float32
        ``sum_i 1 / (k + rank_i(d))`` with 1-based ranks; a document that specialist i did not
        rank contributes 0 for i.
    """
    if not (isinstance(k, (int, float, np.number)) and math.isfinite(k) and k >= 0):
        raise KeffError(f"k must be a finite number >= 0; got {k!r}")
    arrays = _check_rankings(rankings, n_docs)
    n = arrays[0].shape[0]
    out = np.zeros((n, int(n_docs)), dtype=np.float32)
    rows = np.arange(n)[:, None]
    for arr in arrays:
        contrib = (1.0 / (k + np.arange(1, arr.shape[1] + 1))).astype(np.float32)
        out[rows, arr] += contrib  # (row, doc) pairs are unique within one ranking
    return out


def _check_score_mats(score_mats: Sequence[np.ndarray]) -> np.ndarray:
    if len(score_mats) == 0:
        raise KeffError("need at least one specialist's score matrix")
    shapes = {np.shape(m) for m in score_mats}
    if len(shapes) != 1:
        raise KeffError(f"score matrices must share one shape (n, N); got {sorted(shapes)}")
    return check_stack(np.stack([np.asarray(m) for m in score_mats]), "score_mats")


def _check_convex(weights: Any, S: int) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (S,):
        raise KeffError(f"need {S} weights, one per score matrix; got shape {w.shape}")
    if not (np.isfinite(w).all() and (w >= 0).all() and abs(w.sum() - 1.0) <= WEIGHT_SUM_TOL):
        raise KeffError(f"weights must be finite, >= 0 and sum to 1; got {w.tolist()}")
    return w


def _mix(stacked: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``sum_i w_i stacked[i]`` for stacked (S, n, N), as float32 (n, N)."""
    return np.tensordot(w.astype(np.float32), stacked, axes=1)


def convex_scores(score_mats: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Convex combination of per-specialist score matrices with one global weight each.

    Parameters
    ----------
    score_mats : sequence of S arrays, each shape (n, N)
    weights : sequence of S floats
        Finite, >= 0, summing to 1.

    Returns
    -------
    ndarray, shape (n, N), float32
    """
    stacked = _check_score_mats(score_mats)
    return _mix(stacked, _check_convex(weights, stacked.shape[0]))


def tune_rrf_k(
    rankings_val: Sequence[np.ndarray],
    n_docs: int,
    objective: Objective,
    ks: Sequence[float] = (1, 5, 10, 20, 40, 60, 100, 200),
) -> tuple[float, dict]:
    """Pick the RRF constant that maximises ``objective`` on validation queries.

    Parameters
    ----------
    rankings_val : sequence of S integer arrays, each shape (n_val, K_i)
    n_docs : int
    objective : callable
        ``objective(scores (n_val, n_docs)) -> float``, higher is better.
    ks : sequence of float
        Candidates; ties go to the earliest in this order.

    Returns
    -------
    k : float
    table : dict
        ``{"evaluated": [{"k": k, "objective": v}, ...], "best_objective": v}``.
    """
    if len(ks) == 0:
        raise KeffError("ks must hold at least one candidate")
    _check_rankings(rankings_val, n_docs)
    evaluated = []
    with progress_bar("tuning RRF k", total=len(ks)) as bar:
        for k in ks:
            value = call_objective(objective, rrf_scores(rankings_val, n_docs, k), f"k={k}")
            evaluated.append({"k": float(k), "objective": value})
            bar.advance()
    best = max(evaluated, key=lambda row: row["objective"])  # max keeps the first of equal values
    return best["k"], {"evaluated": evaluated, "best_objective": best["objective"]}


def _simplex_grid(S: int, m: int) -> np.ndarray:
    """Every weight vector with entries in {0, 1/m, ..., 1} summing to 1: shape (C(m+S-1, S-1), S)."""
    rows = []
    for bars in itertools.combinations(range(m + S - 1), S - 1):
        edges = (-1, *bars, m + S - 1)
        rows.append([edges[i + 1] - edges[i] - 1 for i in range(S)])
    return np.asarray(rows, dtype=np.float64) / m


def _better(value: float, w: np.ndarray, best_value: float, best_w: np.ndarray | None) -> bool:
    """Higher objective wins; an exact tie goes to the more uniform weights (smaller sum of squares)."""
    if best_w is None or value > best_value:
        return True
    return value == best_value and float(w @ w) < float(best_w @ best_w) - 1e-12


def _coordinate_ascent(score: Callable[[np.ndarray], float], S: int, step: float) -> tuple[np.ndarray, float]:
    """Pairwise moves of ``step`` weight (or all a specialist has left) from uniform weights,
    taking strict improvements of ``score`` until none is left."""
    best_w = np.full(S, 1.0 / S)
    best_v = score(best_w)
    improved = True
    while improved:
        improved = False
        current = best_w
        for i, j in itertools.permutations(range(S), 2):
            moved = min(step, current[j])
            if moved <= 0:
                continue
            w = current.copy()
            w[i] += moved
            w[j] -= moved
            value = score(w)
            if value > best_v:
                best_w, best_v, improved = w, value, True
    return best_w, best_v


def tune_convex_weights(
    score_mats_val: Sequence[np.ndarray], objective: Objective, *, step: float = 0.1
) -> tuple[np.ndarray, dict]:
    """Pick the convex score weights that maximise ``objective`` on validation queries.

    With S <= 5 specialists every point of the simplex grid of spacing ``step`` is evaluated.
    With more, pairwise coordinate ascent starts from uniform weights and repeatedly applies the
    best move of ``step`` weight from one specialist to another (or all of its weight, if it has
    less) until no move improves the objective.

    Parameters
    ----------
    score_mats_val : sequence of S arrays, each shape (n_val, N)
    objective : callable
        ``objective(scores (n_val, N)) -> float``, higher is better.
    step : float
        Grid spacing; 1 / step must be a whole number.

    Returns
    -------
    weights : ndarray, shape (S,), float64
        Ties go to the more uniform weights.
    table : dict
        ``{"method": "grid" | "coordinate_ascent", "evaluated": [{"weights": [...],
        "objective": v}, ...], "best_objective": v}``.
    """
    m = round(1.0 / step) if isinstance(step, (int, float)) and 0 < step <= 1 else 0
    if m < 1 or abs(m * step - 1.0) > 1e-9:
        raise KeffError(f"step must be in (0, 1] with 1 / step a whole number; got {step!r}")
    stacked = _check_score_mats(score_mats_val)
    S = stacked.shape[0]
    grid = _simplex_grid(S, m) if S <= MAX_GRID_SPECIALISTS else None
    seen: dict[tuple[float, ...], float] = {}
    with progress_bar("tuning convex weights", total=None if grid is None else len(grid)) as bar:

        def score(w: np.ndarray) -> float:
            key = tuple(np.round(w, 12).tolist())
            if key not in seen:
                seen[key] = call_objective(objective, _mix(stacked, w), f"weights {list(key)}")
                bar.advance()
            return seen[key]

        if grid is not None:
            best_w, best_v = None, -math.inf
            for w in grid:
                value = score(w)
                if _better(value, w, best_v, best_w):
                    best_w, best_v = w, value
        else:
            best_w, best_v = _coordinate_ascent(score, S, step)
    method = "grid" if grid is not None else "coordinate_ascent"
    evaluated = [{"weights": list(k), "objective": v} for k, v in seen.items()]
    return best_w, {"method": method, "evaluated": evaluated, "best_objective": best_v}


def concat_vectors(vectors: Sequence[np.ndarray]) -> np.ndarray:
    """Concatenate per-specialist vectors so one inner product is the mean of their cosines.

    Parameters
    ----------
    vectors : sequence of S arrays, each shape (n, d_i)
        Same n; dimensions may differ (no common frame needed).

    Returns
    -------
    ndarray, shape (n, sum_i d_i), float32, unit rows
        Each part L2-normalised and scaled by ``1 / sqrt(S)``, so ``concat(q) @ concat(x)`` equals
        ``convex_scores`` of the per-specialist cosines with equal weights.
    """
    if len(vectors) == 0:
        raise KeffError("need at least one specialist's vectors")
    scale = np.float32(1.0 / math.sqrt(len(vectors)))
    parts = []
    for i, v in enumerate(vectors):
        arr = np.asarray(v)
        if arr.ndim != 2 or arr.shape[0] != np.shape(vectors[0])[0] or arr.dtype.kind not in "fiu":
            raise KeffError(
                f"specialist {i} vectors must be numeric (n, d_i) with n = {np.shape(vectors[0])[0]}; "
                f"got {arr.dtype} {arr.shape}"
            )
        part = arr.astype(np.float32)
        if not np.isfinite(part).all():
            raise KeffError(f"specialist {i} vectors hold NaN or infinite values")
        parts.append(l2_normalize(part, zero_rows="error", name=f"specialist {i} vector of query") * scale)
    return np.concatenate(parts, axis=1)

"""Paired significance for per-query scores: bootstrap CI, randomisation test, Wilcoxon, Holm.

All resampling is vectorised: a (chunk, n) matrix of indices or signs per step, never a Python
loop over resamples.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from keff.errors import KeffError

_CHUNK_ELEMENTS = 1 << 22  # resample-matrix entries per chunk (~32 MB of int64)


def paired_differences(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    """``a - b`` as float64, shape (n,), after checking both are finite, 1-D, aligned and non-empty."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.ndim != 1 or y.ndim != 1:
        raise KeffError(f"paired scores must be 1-D; got shapes {x.shape} and {y.shape}")
    if x.shape != y.shape:
        raise KeffError(f"paired scores must have one length; got {x.shape[0]} and {y.shape[0]}")
    if x.size == 0:
        raise KeffError("paired scores are empty")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise KeffError("paired scores must be finite")
    return x - y


def _chunks(n_resamples: int, n: int) -> Iterator[int]:
    """Sizes of successive resample chunks whose (size, n) matrix stays near ``_CHUNK_ELEMENTS``."""
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise KeffError(f"n_resamples must be a positive integer; got {n_resamples!r}")
    step = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, n_resamples, step):
        yield min(step, n_resamples - start)


def paired_bootstrap_ci(
    a: Sequence[float],
    b: Sequence[float],
    *,
    n_resamples: int = 10000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Percentile bootstrap confidence interval of the mean paired difference ``a - b``.

    Parameters
    ----------
    a, b : array_like, shape (n,)
        Per-query scores of two systems on the same queries, in the same order.
    n_resamples : int
        Bootstrap resamples of the n queries (with replacement).
    confidence : float
        Two-sided coverage in (0, 1).
    seed : int
        Seed of numpy's default generator; the same seed gives the same interval.

    Returns
    -------
    (mean_diff, low, high) : tuple of float
    """
    if not 0.0 < confidence < 1.0:
        raise KeffError(f"confidence must be in (0, 1); got {confidence!r}")
    d = paired_differences(a, b)
    rng = np.random.default_rng(seed)
    means = np.concatenate(
        [d[rng.integers(0, d.size, size=(size, d.size))].mean(axis=1) for size in _chunks(n_resamples, d.size)]
    )
    alpha = 1.0 - confidence
    low, high = np.quantile(means, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(d.mean()), float(low), float(high)


def gap_closed(
    mapped: Sequence[float],
    old: Sequence[float],
    new: Sequence[float],
    *,
    n_resamples: int = 10000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Share of the old-to-new gap a system closes: ``(mean(mapped) - mean(old)) / (mean(new) -
    mean(old))`` (1: as good as the new model, 0: no better than the old, negative: worse than
    the old), with a percentile bootstrap interval resampling the same queries for all three.

    Parameters
    ----------
    mapped, old, new : array_like, shape (n,)
        Per-query scores on the same queries, in the same order.

    Returns
    -------
    (gap, low, high) : tuple of float

    Raises
    ------
    KeffError
        When the new model is not better than the old on these queries (the gap is undefined).
    """
    if not 0.0 < confidence < 1.0:
        raise KeffError(f"confidence must be in (0, 1); got {confidence!r}")
    up = paired_differences(mapped, old)
    span = paired_differences(new, old)
    if up.shape != span.shape:
        raise KeffError(f"mapped and new scores must have one length; got {up.size} and {span.size}")
    if span.mean() <= 0:
        raise KeffError(f"the new model is not better than the old on these queries (mean {span.mean():+.4f}): "
                        "the gap closed is undefined")  # fmt: skip
    rng = np.random.default_rng(seed)
    ratios = []
    for size in _chunks(n_resamples, up.size):
        rows = rng.integers(0, up.size, size=(size, up.size))
        num, den = up[rows].mean(axis=1), span[rows].mean(axis=1)
        # a resample where the new model is not better has no finite ratio: it counts as an
        # unbounded value on the side of its numerator's sign
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios.append(np.where(den > 0, num / den, np.where(num > 0, np.inf, -np.inf)))
    r = np.concatenate(ratios)
    alpha = 1.0 - confidence
    low = np.quantile(r, alpha / 2.0, method="lower")
    high = np.quantile(r, 1.0 - alpha / 2.0, method="higher")
    return float(up.mean() / span.mean()), float(low), float(high)


def randomization_test(a: Sequence[float], b: Sequence[float], *, n_resamples: int = 10000, seed: int = 0) -> float:
    """Two-sided paired randomisation (sign-flip) test of ``mean(a - b) == 0``.

    Each resample flips the sign of every paired difference with probability 1/2. The p-value
    is ``(1 + #{|mean of flipped| >= |observed mean|}) / (1 + n_resamples)``, so it is never 0
    and is exactly 1 when all differences are zero.

    Parameters
    ----------
    a, b : array_like, shape (n,)
        Per-query scores aligned on the same queries.
    n_resamples : int
        Random sign assignments.
    seed : int
        Seed of numpy's default generator.

    Returns
    -------
    float
        p-value in (0, 1].
    """
    d = paired_differences(a, b)
    observed = abs(d.mean())
    # Tolerate float rounding: a resample equal to the observed statistic counts as extreme.
    tol = 1e-12 * max(1.0, float(np.abs(d).max()))
    rng = np.random.default_rng(seed)
    extreme = 0
    for size in _chunks(n_resamples, d.size):
        signs = rng.integers(0, 2, size=(size, d.size), dtype=np.int8) * 2 - 1
        stats = np.abs(signs @ d) / d.size
        extreme += int(np.count_nonzero(stats >= observed - tol))
    return (extreme + 1) / (n_resamples + 1)


def wilcoxon_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank p-value (``scipy.stats.wilcoxon``); 1.0 if all differences are 0."""
    from scipy.stats import wilcoxon

    d = paired_differences(a, b)
    if not np.any(d):
        return 1.0
    return float(wilcoxon(d).pvalue)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order.

    The i-th smallest of m p-values becomes ``max_{j <= i} min(1, (m - j + 1) * p_(j))``, so the
    adjusted values keep the order of the raw ones and never exceed 1.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1:
        raise KeffError(f"p-values must be a flat sequence; got shape {p.shape}")
    if p.size and (not np.isfinite(p).all() or p.min() < 0 or p.max() > 1):
        raise KeffError("p-values must lie in [0, 1]")
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m, dtype=np.float64)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted.tolist()


@dataclass
class PairedComparison:
    """One system compared with a baseline on one metric over ``n`` common queries.

    ``diff = mean_system - mean_baseline`` with its bootstrap interval ``[ci_low, ci_high]`` at
    level ``confidence``; ``p_holm`` is the randomisation p-value after Holm correction across
    the systems compared with the same baseline (None until :func:`compare_systems` fills it).
    """

    metric: str
    system: str
    baseline: str
    n: int
    mean_system: float
    mean_baseline: float
    diff: float
    ci_low: float
    ci_high: float
    p_randomization: float
    p_wilcoxon: float
    p_holm: float | None = None
    confidence: float = 0.95


def compare_systems(
    per_query: Mapping[str, Mapping[str, float]],
    baseline: str,
    *,
    metric: str,
    seed: int = 0,
    n_resamples: int = 10000,
    confidence: float = 0.95,
) -> list[PairedComparison]:
    """Compare every system with ``baseline`` on per-query scores of one metric.

    Parameters
    ----------
    per_query : mapping of str to mapping of str to float
        system name -> query id -> score (e.g. ``result.per_query["ndcg@10"]`` of each system).
    baseline : str
        Key of ``per_query`` the others are compared with.
    metric : str
        Name recorded in each comparison.
    seed, n_resamples, confidence
        Passed to :func:`paired_bootstrap_ci` and :func:`randomization_test`.

    Returns
    -------
    list of PairedComparison
        One per non-baseline system, in ``per_query`` order, with ``p_holm`` filled.

    Raises
    ------
    KeffError
        If ``baseline`` is unknown, there is no other system, or a system lacks queries that the
        baseline has (a few are named). Queries only some systems have are ignored.
    """
    if baseline not in per_query:
        raise KeffError(f"baseline {baseline!r} not among the systems {sorted(per_query)}")
    others = [s for s in per_query if s != baseline]
    if not others:
        raise KeffError("nothing to compare: per_query holds only the baseline")
    base = per_query[baseline]
    qids = list(base)
    for system in others:
        missing = [q for q in qids if q not in per_query[system]]
        if missing:
            few = ", ".join(repr(q) for q in missing[:5])
            raise KeffError(
                f"system {system!r} lacks {len(missing)} of the baseline's {len(qids)} queries on {metric} (e.g. {few})"
            )
    b = np.array([base[q] for q in qids], dtype=np.float64)
    out: list[PairedComparison] = []
    for system in others:
        a = np.array([per_query[system][q] for q in qids], dtype=np.float64)
        diff, low, high = paired_bootstrap_ci(a, b, n_resamples=n_resamples, confidence=confidence, seed=seed)
        out.append(
            PairedComparison(
                metric=metric,
                system=system,
                baseline=baseline,
                n=len(qids),
                mean_system=float(a.mean()),
                mean_baseline=float(b.mean()),
                diff=diff,
                ci_low=low,
                ci_high=high,
                p_randomization=randomization_test(a, b, n_resamples=n_resamples, seed=seed),
                p_wilcoxon=wilcoxon_p(a, b),
                confidence=confidence,
            )
        )
    for comparison, adjusted in zip(out, holm([c.p_randomization for c in out])):
        comparison.p_holm = adjusted
    return out

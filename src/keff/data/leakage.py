"""Leak checks between two sides of a split, and a distribution-parity summary.

:func:`leak_check` counts rows of side ``b`` (usually eval) that leak from side ``a`` (usually
train): a shared group, the same normalised text, or a near-duplicate embedding.
:func:`split_parity` compares one numeric property (text length, norm, ...) across the sides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from keff.errors import DataError

MAX_EXAMPLES = 3
QUANTILES = (5, 25, 50, 75, 95)


@dataclass
class LeakReport:
    """What leaks from side a into side b; every count is a number of rows of b.

    Attributes
    ----------
    group_overlap : int
        Rows of b whose group also occurs in a (0 when no groups were given).
    exact_text_overlap : int
        Rows of b whose text, lower-cased with whitespace collapsed, occurs in a.
    near_duplicates : int or None
        Rows of b whose highest cosine to any row of a is >= the threshold (exact duplicates
        included); None when no vectors were given.
    examples : list of str
        A few human-readable examples of each kind.
    """

    group_overlap: int
    exact_text_overlap: int
    near_duplicates: int | None
    examples: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """True when nothing leaks."""
        return self.group_overlap == 0 and self.exact_text_overlap == 0 and not self.near_duplicates

    def to_dict(self) -> dict:
        """JSON-ready dict of the counts, the examples and ``clean``."""
        return {**asdict(self), "clean": self.clean}


def normalize_text(text: str) -> str:
    """Case-folded text with runs of whitespace collapsed to one space."""
    return " ".join(text.casefold().split())


def repeats(texts: Sequence[str], reference: Sequence[str]) -> list[bool]:
    """For each of ``texts``: does it repeat one of ``reference`` word for word (after
    :func:`normalize_text`)? E.g. SciFact's train claims that are also test claims."""
    seen = {normalize_text(t) for t in reference}
    return [normalize_text(t) in seen for t in texts]


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _check_vectors(vecs: object, n: int, name: str) -> np.ndarray:
    """Validate a (n, d) finite, L2-normalised float array; return it as float32."""
    arr = np.asarray(vecs)
    if arr.ndim != 2 or arr.shape[0] != n:
        raise DataError(f"{name} must have shape ({n}, d) (one row per text), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise DataError(f"{name} must be a float array, got dtype {arr.dtype}")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise DataError(f"{name} contains NaN or infinite values")
    norms = np.linalg.norm(arr, axis=1)
    bad = np.flatnonzero(np.abs(norms - 1.0) > 1e-3)
    if bad.size:
        raise DataError(
            f"{name} rows must be L2-normalised; row {bad[0]} has norm {norms[bad[0]]:.4f} ({bad.size} rows off)"
        )
    return arr


def _group_overlap(a_groups, b_groups, n_a: int, n_b: int, examples: list[str]) -> int:
    if a_groups is None and b_groups is None:
        return 0
    if a_groups is None or b_groups is None:
        raise DataError("give both a_groups and b_groups, or neither")
    a_g, b_g = np.asarray(a_groups), np.asarray(b_groups)
    if a_g.shape != (n_a,) or b_g.shape != (n_b,):
        raise DataError(
            f"groups must be 1-D with one id per text: got {a_g.shape} for {n_a} a-texts and "
            f"{b_g.shape} for {n_b} b-texts"
        )
    hit = np.isin(b_g, a_g)
    for row in np.flatnonzero(hit)[:MAX_EXAMPLES]:
        label = b_g[row : row + 1].tolist()[0]
        examples.append(f"group: b[{row}] is in group {label!r}, which also occurs in a")
    return int(hit.sum())


def _text_overlap(a_texts, b_texts, examples: list[str]) -> int:
    first_in_a: dict[str, int] = {}
    for i, text in enumerate(a_texts):
        first_in_a.setdefault(normalize_text(text), i)
    count = 0
    for j, text in enumerate(b_texts):
        i = first_in_a.get(normalize_text(text))
        if i is not None:
            if count < MAX_EXAMPLES:
                examples.append(f"text: b[{j}] == a[{i}]: {_short(text)!r}")
            count += 1
    return count


def _near_duplicates(a, b, a_texts, b_texts, threshold: float, batch: int, examples) -> int:
    if a.shape[1] != b.shape[1]:
        raise DataError(f"a_vecs and b_vecs differ in dimension: {a.shape[1]} vs {b.shape[1]}")
    if a.shape[0] == 0:
        return 0
    count = 0
    for start in range(0, b.shape[0], batch):
        sims = b[start : start + batch] @ a.T
        best = sims.argmax(axis=1)
        best_sim = sims[np.arange(sims.shape[0]), best]
        for offset in np.flatnonzero(best_sim >= threshold):
            if count < MAX_EXAMPLES:
                j, i = start + int(offset), int(best[offset])
                examples.append(
                    f"near-duplicate: b[{j}] ~ a[{i}] (cosine {best_sim[offset]:.4f}): "
                    f"{_short(b_texts[j])!r} ~ {_short(a_texts[i])!r}"
                )
            count += 1
    return count


def leak_check(
    a_texts: Sequence[str],
    b_texts: Sequence[str],
    *,
    a_groups: Sequence | np.ndarray | None = None,
    b_groups: Sequence | np.ndarray | None = None,
    a_vecs: np.ndarray | None = None,
    b_vecs: np.ndarray | None = None,
    near_dup_cosine: float = 0.98,
    batch: int = 1024,
) -> LeakReport:
    """Count the rows of side b that leak from side a.

    Parameters
    ----------
    a_texts : sequence of str, length n_a
        Texts of side a (e.g. train).
    b_texts : sequence of str, length n_b
        Texts of side b (e.g. eval).
    a_groups, b_groups : array-like, shapes (n_a,) and (n_b,), optional
        Group id per text (both or neither).
    a_vecs, b_vecs : ndarray, shapes (n_a, d) and (n_b, d), optional
        L2-normalised embeddings of the texts (both or neither).
    near_dup_cosine : float
        Cosine at or above which a row of b counts as a near duplicate of a.
    batch : int
        Rows of b compared at once (memory is ``batch * n_a`` floats).

    Returns
    -------
    LeakReport
    """
    a_texts, b_texts = list(a_texts), list(b_texts)
    if batch < 1:
        raise DataError(f"batch must be >= 1, got {batch}")
    examples: list[str] = []
    groups = _group_overlap(a_groups, b_groups, len(a_texts), len(b_texts), examples)
    texts = _text_overlap(a_texts, b_texts, examples)
    near = None
    if (a_vecs is None) != (b_vecs is None):
        raise DataError("give both a_vecs and b_vecs, or neither")
    if a_vecs is not None:
        a = _check_vectors(a_vecs, len(a_texts), "a_vecs")
        b = _check_vectors(b_vecs, len(b_texts), "b_vecs")
        near = _near_duplicates(a, b, a_texts, b_texts, near_dup_cosine, batch, examples)
    return LeakReport(groups, texts, near, examples)


def _summary(values: np.ndarray) -> dict[str, object]:
    return {
        "n": int(values.size),
        "mean": float(values.mean()),
        "std": float(values.std()),
        "quantiles": {str(q): float(v) for q, v in zip(QUANTILES, np.percentile(values, QUANTILES))},
    }


def split_parity(
    a_values: Sequence[float] | np.ndarray,
    b_values: Sequence[float] | np.ndarray,
    *,
    names: tuple[str, str] = ("train", "eval"),
) -> dict:
    """Compare one numeric property across two sides of a split.

    Parameters
    ----------
    a_values, b_values : array-like of float, shapes (n_a,) and (n_b,)
        The property per item (e.g. text length in words), non-empty and finite.
    names : (str, str)
        Keys for the two sides in the result.

    Returns
    -------
    dict
        ``{names[0]: summary, names[1]: summary, "ks_statistic": float, "ks_pvalue": float}``
        where a summary is ``{"n", "mean", "std", "quantiles": {"5", "25", "50", "75", "95"}}``
        and the KS numbers are scipy's two-sample Kolmogorov-Smirnov test.
    """
    from scipy.stats import ks_2samp

    if len(names) != 2 or names[0] == names[1] or set(names) & {"ks_statistic", "ks_pvalue"}:
        raise DataError(f"names must be two distinct labels, got {names!r}")
    sides = []
    for name, values in zip(names, (a_values, b_values)):
        arr = np.asarray(values, dtype=np.float64)
        if arr.ndim != 1 or arr.size == 0:
            raise DataError(f"{name} values must be a non-empty 1-D array, got shape {arr.shape}")
        if not np.isfinite(arr).all():
            raise DataError(f"{name} values contain NaN or infinite entries")
        sides.append(arr)
    ks = ks_2samp(sides[0], sides[1])
    return {
        names[0]: _summary(sides[0]),
        names[1]: _summary(sides[1]),
        "ks_statistic": float(ks.statistic),
        "ks_pvalue": float(ks.pvalue),
    }

"""How well a fitted map aligns held-out anchors: cosines, neighbourhood agreement, top-1 pairing."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from keff.arrays import as_matrix, l2_normalize
from keff.errors import KeffError
from keff.maps.base import Map
from keff.progress import progress_bar

_BLOCK = 1024  # rows per block of the (n, n) similarity computations


@dataclass
class AlignmentReport:
    """Alignment quality of a map on held-out paired rows.

    Attributes
    ----------
    n : int
        Number of held-out pairs.
    cosine_before : float or None
        Mean row-wise cosine between source and target rows (None when dimensions differ).
    cosine_after : float
        Mean row-wise cosine between mapped and target rows.
    cosine_after_p10 : float
        10th percentile of those cosines (the badly aligned tail).
    nn_agreement_at_k : float
        Mean over rows of the share of row i's top-k cosine neighbours among the mapped rows that
        are also among its top-k neighbours among the target rows (i itself excluded).
    k : int
        The k of ``nn_agreement_at_k``.
    top1_accuracy : float
        Share of mapped rows whose nearest target row is their own pair.
    """

    n: int
    cosine_before: float | None
    cosine_after: float
    cosine_after_p10: float
    nn_agreement_at_k: float
    k: int
    top1_accuracy: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the fields."""
        return asdict(self)


def per_text_cosine(A: Any, B: Any) -> np.ndarray:
    """Row-wise cosine between paired rows.

    Parameters
    ----------
    A, B : array_like, shape (n, d)

    Returns
    -------
    ndarray, shape (n,), float32
    """
    A = l2_normalize(as_matrix(A, "A"), zero_rows="error", name="A")
    B = l2_normalize(as_matrix(B, "B"), zero_rows="error", name="B")
    if A.shape != B.shape:
        raise KeffError(f"row-wise cosine needs equal shapes; got A {A.shape} and B {B.shape}")
    return np.einsum("ij,ij->i", A, B)


def _top_k_others(Q: np.ndarray, rows: slice, k: int) -> np.ndarray:
    """Indices (block, k) of each row's k most cosine-similar rows of ``Q`` (unit rows), itself excluded."""
    sims = Q[rows] @ Q.T
    idx = np.arange(rows.start, rows.stop)
    sims[idx - rows.start, idx] = -np.inf
    return np.argpartition(-sims, k - 1, axis=1)[:, :k]


def _neighbour_scores(mapped: np.ndarray, target: np.ndarray, k: int) -> tuple[float, float]:
    """Sum of top-k overlaps (as shares of k) and count of correct top-1 pairings, block by block."""
    n = mapped.shape[0]
    overlap, hits = 0.0, 0
    with progress_bar("alignment report", n) as bar:
        for start in range(0, n, _BLOCK):
            rows = slice(start, min(start + _BLOCK, n))
            top_m = _top_k_others(mapped, rows, k)
            top_t = _top_k_others(target, rows, k)
            overlap += float((top_m[:, :, None] == top_t[:, None, :]).sum()) / k
            nearest = np.argmax(mapped[rows] @ target.T, axis=1)
            hits += int((nearest == np.arange(rows.start, rows.stop)).sum())
            bar.advance(rows.stop - rows.start)
    return overlap, hits


def alignment_report(map: Map, X_source: Any, Y_target: Any, *, k: int = 10) -> AlignmentReport:
    """Score a fitted map on held-out paired rows (never the rows it was fitted on).

    Parameters
    ----------
    map : Map
        A fitted map from the source space to the target space.
    X_source : array_like, shape (n, d_source)
        Held-out source-model vectors.
    Y_target : array_like, shape (n, d_target)
        Target-model vectors of the same texts, row for row.
    k : int, default 10
        Neighbourhood size for ``nn_agreement_at_k``; 1 <= k <= n - 1.

    Returns
    -------
    AlignmentReport
    """
    X, Y = as_matrix(X_source, "X_source"), as_matrix(Y_target, "Y_target")
    n = X.shape[0]
    if Y.shape[0] != n:
        raise KeffError(f"X_source has {n} rows but Y_target has {Y.shape[0]}: rows must be paired")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n - 1:
        raise KeffError(f"k must be an integer in [1, n - 1] = [1, {n - 1}]; got {k!r}")
    mapped = map.transform(X)
    if mapped.shape[1] != Y.shape[1]:
        raise KeffError(f"the map outputs {mapped.shape[1]}-d vectors but Y_target is {Y.shape[1]}-d")
    cos_after = per_text_cosine(mapped, Y)
    cos_before = float(per_text_cosine(X, Y).mean()) if X.shape[1] == Y.shape[1] else None
    overlap, hits = _neighbour_scores(
        l2_normalize(mapped, zero_rows="error", name="mapped rows"),
        l2_normalize(Y, zero_rows="error", name="Y_target"),
        int(k),
    )
    return AlignmentReport(
        n=n,
        cosine_before=cos_before,
        cosine_after=float(cos_after.mean()),
        cosine_after_p10=float(np.percentile(cos_after, 10)),
        nn_agreement_at_k=overlap / n,
        k=int(k),
        top1_accuracy=hits / n,
    )

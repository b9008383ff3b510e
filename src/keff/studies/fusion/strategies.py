"""Every fusion strategy of the fusion study, as dense test score matrices.

Two ways to represent documents (both built once, never per query):

- **fused index** (``F:``): each specialist's document vectors are mapped into the shared frame
  and fused once, with the documents' own weights (mean, or precision weights from each
  document's own sigma^2); the fused query is searched against it. Needs alignment.
- **per-specialist indexes** (``P:``): each specialist searches its own index in its own space;
  the per-specialist cosines are combined with the query's weights (uniform, precision, gate,
  one-hot routing, tuned convex weights, RRF). Needs no alignment.

Everything that is tuned or learned (calibration, gates, convex weights, RRF k, skip
thresholds) sees validation queries only; the test matrices are produced once at the end.

Each row is one of keff's fusion methods by name: query and document vectors are fused with
:func:`keff.fusion.fuse` (``mean``, ``kalman``, ``weighted``), per-query specialist weights come
from :func:`keff.fusion.fusion_weights` (``kalman``, ``route``) and score matrices are combined
with :func:`keff.fusion.score_fuse` (``weighted``, ``convex``). Three rows are not registry
methods: ``P:uniform (concat)`` is the plain mean of the cosines (the ``mean`` weighting gives the
same up to float rounding), the RRF rows fuse each specialist's top-100
(:func:`keff.fusion.rrf_scores`; the registry's ``rrf`` ranks every document) and the oracle
picks with test labels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from keff.fusion import (
    LearnedGate,
    Specialist,
    compute_saved,
    fuse,
    fusion_weights,
    rrf_scores,
    score_fuse,
    select_specialists,
    stack,
    tune_convex_weights,
    tune_rrf_k,
    tune_threshold,
)
from keff.index.numpy_backend import topk_rows
from keff.studies.fusion.judge import Judge


@dataclass
class Member:
    """One specialist's vectors in an experiment: own space and shared frame, unit rows."""

    name: str
    specialist: Specialist
    own: dict[str, np.ndarray]  # "docs", "val", "test"
    frame: dict[str, np.ndarray]  # same keys, mapped into the shared frame
    variances: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # estimator -> split -> (n,)
    scores: dict[str, np.ndarray] = field(default_factory=dict)  # split -> (n, N) own-space cosines
    residual: np.ndarray | None = None  # (d_frame,) per-dimension variance about the ensemble on anchors

    def score(self, split: str) -> np.ndarray:
        """(n, N) cosines of the split's queries to every document in the specialist's own space (cached)."""
        if split not in self.scores:
            self.scores[split] = self.own[split] @ self.own["docs"].T
        return self.scores[split]


def _stack(members: list[Member], split: str, space: str = "frame") -> np.ndarray:
    return stack([getattr(m, space)[split] for m in members])


def _var(members: list[Member], estimator: str, split: str) -> np.ndarray:
    return np.stack([m.variances[estimator][split] for m in members])


def _scores(members: list[Member], split: str) -> np.ndarray:
    return np.stack([m.score(split) for m in members])


def gate_features(members: list[Member], split: str, estimator: str = "calibrated") -> np.ndarray:
    """Per-query features of every specialist: centroid similarity, log sigma^2, the top-1
    cosine of its own search and the gap from the 1st to the 10th (a confidence signal)."""
    cols = []
    for m in members:
        top, _ = topk_rows(m.score(split), 10)
        cols += [
            m.specialist.centroid_similarity(m.frame[split]),
            np.log(m.variances[estimator][split]),
            top[:, 0],
            top[:, 0] - top[:, 9],
        ]
    return np.stack(cols, axis=1)


def utilities(members: list[Member], judge_val: Judge) -> np.ndarray:
    """(n_val, S) per-query validation nDCG@10 of every specialist alone."""
    return np.stack([judge_val.per_query(m.score("val")) for m in members], axis=1)


def fused_index_strategies(members: list[Member], estimators: list[str], gate: LearnedGate) -> dict:
    """``F:`` strategies: fused query against a fused document index in the shared frame."""
    docs = _stack(members, "docs")
    doc_mean = fuse(docs, method="mean")
    doc_kalman = fuse(docs, _var(members, "centroid", "docs"), method="kalman")
    Zt = _stack(members, "test")
    out = {"F:mean": (fused_mean(members), {"docs": "mean of aligned document vectors"})}
    for est in estimators:
        q = fuse(Zt, _var(members, est, "test"), method="kalman")
        out[f"F:kalman-{est}"] = (q @ doc_kalman.T, {"docs": "documents Kalman-fused with their own centroid sigma^2"})
    if all(m.residual is not None for m in members):
        r = np.stack([m.residual for m in members])[:, None, :]  # (S, 1, d)
        q = fuse(Zt, _var(members, "calibrated", "test")[:, :, None] * r, method="kalman")
        d = fuse(docs, _var(members, "centroid", "docs")[:, :, None] * r, method="kalman")
        out["F:kalman-per-dim"] = (q @ d.T, {"var": "calibrated sigma^2 x per-dimension anchor residual"})
    w = gate.weights(gate_features(members, "test")).T
    out["F:gate"] = (fuse(Zt, method="weighted", weights=w) @ doc_mean.T, {"docs": "mean of aligned document vectors"})
    return out


def fused_mean(members: list[Member]) -> np.ndarray:
    """Test scores of the mean-fused query against the mean-fused document index (frame vectors)."""
    q = fuse(_stack(members, "test"), method="mean")
    return q @ fuse(_stack(members, "docs"), method="mean").T


def fused_kalman(members: list[Member]) -> np.ndarray:
    """Test scores of the query Kalman-fused with calibrated sigma^2 against documents Kalman-fused
    with their centroid sigma^2 (frame vectors)."""
    q = fuse(_stack(members, "test"), _var(members, "calibrated", "test"), method="kalman")
    return q @ fuse(_stack(members, "docs"), _var(members, "centroid", "docs"), method="kalman").T


def per_index_strategies(
    members: list[Member],
    estimators: list[str],
    gate: LearnedGate,
    judge_val: Judge,
    *,
    router: int,
) -> dict:
    """``P:`` strategies: per-specialist searches combined with per-query or tuned weights."""
    out = {}
    St = _scores(members, "test")
    S = len(members)
    out["P:uniform (concat)"] = (St.mean(axis=0), {"weights": "1/S each (= concatenated unit vectors)"})
    for est in estimators:
        var = _var(members, est, "test")
        out[f"P:kalman-{est}"] = (score_fuse(St, weights=fusion_weights(var, "kalman")), {})
        if est == "constant":
            continue  # routing on equal variances would just pick the first specialist
        route = fusion_weights(var, "route")  # one-hot: the lowest sigma^2
        chosen = np.bincount(np.argmax(route, axis=0), minlength=S).tolist()
        out[f"P:route-{est}"] = (score_fuse(St, weights=route), {"chosen": chosen})
    out["P:gate"] = (score_fuse(St, weights=gate.weights(gate_features(members, "test")).T), {})

    Sv = _scores(members, "val")
    w, _ = tune_convex_weights(list(Sv), judge_val.objective, step=0.1)
    out["P:convex (tuned)"] = (score_fuse(St, method="convex", weights=w), {"weights": [round(float(x), 3) for x in w]})
    rank_v = [topk_rows(s, 100)[1] for s in Sv]
    rank_t = [topk_rows(s, 100)[1] for s in St]
    n_docs = St.shape[2]
    out["P:rrf k=60"] = (rrf_scores(rank_t, n_docs, 60.0), {})
    k_best, _ = tune_rrf_k(rank_v, n_docs, judge_val.objective)
    out["P:rrf (tuned k)"] = (rrf_scores(rank_t, n_docs, k_best), {"k": k_best})
    out.update(skip_routing(members, judge_val, router=router))
    return out


def skip_routing(members: list[Member], judge_val: Judge, *, router: int) -> dict:
    """Encode only the specialists whose centroid is close enough to the query (as seen by the
    cheap ``router`` specialist), then precision-weight those; threshold tuned on validation."""

    def sims(split: str) -> np.ndarray:
        q = members[router].frame[split]
        return np.stack([m.specialist.centroid_similarity(q) for m in members], axis=1)

    def scored(split: str, mask: np.ndarray) -> np.ndarray:
        precision = mask.T / _var(members, "calibrated", split)  # skipped specialists weigh 0
        return score_fuse(_scores(members, split), weights=precision / precision.sum(axis=0, keepdims=True))

    objective: Callable[[np.ndarray], float] = lambda mask: judge_val.objective(scored("val", mask))  # noqa: E731
    threshold, _ = tune_threshold(sims("val"), objective, tolerance=0.005)
    mask = select_specialists(sims("test"), threshold, min_keep=1)
    mask[:, router] = True  # the router is encoded anyway
    info = {"threshold": float(threshold), "compute_saved": compute_saved(mask), "router": members[router].name}
    return {"P:skip-kalman": (scored("test", mask), info)}


def oracle_routing(members: list[Member], judge_test: Judge) -> tuple[np.ndarray, dict]:
    """The per-query best single specialist, chosen WITH test labels: a ceiling, not a method."""
    St = _scores(members, "test")
    per = np.stack([judge_test.per_query(s) for s in St])
    chosen = np.argmax(per, axis=0)
    return St[chosen, np.arange(St.shape[1])], {"ceiling": "uses test judgements"}


def unaligned_mean(members: list[Member]) -> tuple[np.ndarray, dict]:
    """Averaging specialists' raw vectors without alignment (the failure the design warns of)."""
    q = fuse(_stack(members, "test", "own"), method="mean")
    d = fuse(_stack(members, "docs", "own"), method="mean")
    return q @ d.T, {"docs": "mean of unaligned document vectors"}

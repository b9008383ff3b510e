"""Every fusion strategy of the mixed-domain benchmark, as dense test score matrices.

Two ways to represent documents (both built once, never per query):

- **fused index** (``F:``): each specialist's document vectors are mapped into the shared frame
  and fused once, with the documents' own weights (mean, or precision weights from each
  document's own sigma^2); the fused query is searched against it. Needs alignment.
- **per-specialist indexes** (``P:``): each specialist searches its own index in its own space;
  the per-specialist cosines are combined with the query's weights (uniform, precision, gate,
  one-hot routing, tuned convex weights, RRF). Needs no alignment.

Everything that is tuned or learned (calibration, gates, convex weights, RRF k, skip
thresholds) sees validation queries only; the test matrices are produced once at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from keff.fusion.gate import LearnedGate
from keff.fusion.judge import Judge
from keff.fusion.routing import compute_saved, select_specialists, tune_threshold
from keff.fusion.score import convex_scores, rrf_scores, tune_convex_weights, tune_rrf_k
from keff.fusion.specialist import Specialist
from keff.fusion.vector import kalman_fuse, mean_fuse, precision_weights, stack, weighted_fuse, weighted_scores
from keff.index.numpy_backend import topk_rows

SPLITS = ("val", "test")


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
    out = {}
    docs = _stack(members, "docs")
    doc_mean = mean_fuse(docs)
    doc_kalman = kalman_fuse(docs, _var(members, "centroid", "docs"))
    Zt = _stack(members, "test")
    out["F:mean"] = (mean_fuse(Zt) @ doc_mean.T, {"docs": "mean of aligned document vectors"})
    for est in estimators:
        q = kalman_fuse(Zt, _var(members, est, "test"))
        out[f"F:kalman-{est}"] = (q @ doc_kalman.T, {"docs": "documents Kalman-fused with their own centroid sigma^2"})
    if all(m.residual is not None for m in members):
        r = np.stack([m.residual for m in members])[:, None, :]  # (S, 1, d)
        q = kalman_fuse(Zt, _var(members, "calibrated", "test")[:, :, None] * r)
        d = kalman_fuse(docs, _var(members, "centroid", "docs")[:, :, None] * r)
        out["F:kalman-per-dim"] = (q @ d.T, {"var": "calibrated sigma^2 x per-dimension anchor residual"})
    w = gate.weights(gate_features(members, "test")).T
    out["F:gate"] = (weighted_fuse(Zt, w) @ doc_mean.T, {"docs": "mean of aligned document vectors"})
    return out


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
        out[f"P:kalman-{est}"] = (weighted_scores(St, precision_weights(var)), {})
        if est == "constant":
            continue  # routing on equal variances would just pick the first specialist
        chosen = np.argmin(var, axis=0)
        out[f"P:route-{est}"] = (
            St[chosen, np.arange(St.shape[1])],
            {"chosen": np.bincount(chosen, minlength=S).tolist()},
        )
    out["P:gate"] = (weighted_scores(St, gate.weights(gate_features(members, "test")).T), {})

    Sv = _scores(members, "val")
    w, _ = tune_convex_weights(list(Sv), judge_val.objective, step=0.1)
    out["P:convex (tuned)"] = (convex_scores(list(St), w), {"weights": [round(float(x), 3) for x in w]})
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
        return weighted_scores(_scores(members, split), precision / precision.sum(axis=0, keepdims=True))

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
    q = mean_fuse(_stack(members, "test", "own"))
    d = mean_fuse(_stack(members, "docs", "own"))
    return q @ d.T, {"docs": "mean of unaligned document vectors"}

"""The drift experiment: two siblings behind different random rotations, fused without and with
alignment into the reference frame."""

from __future__ import annotations

import numpy as np

from keff.eval import compare_systems
from keff.fusion import fuse, stack
from keff.studies.fusion.evaluate import REPORTED
from keff.studies.fusion.judge import Judge
from keff.studies.fusion.mixed import MixedDomain
from keff.studies.fusion.prepare import Plan, build_members
from keff.studies.fusion.strategies import fused_kalman, fused_mean, unaligned_mean

#: The row every other row of the drift experiment is tested against.
ALIGNED_MEAN = "aligned mean (fused index in the minilm frame)"


def drift_experiment(
    plans: tuple[Plan, ...], mixed: MixedDomain, judge_val: Judge, judge_test: Judge, *, reference: str, seed: int
) -> dict:
    """Two siblings (``plans``) fused without alignment, each alone, and fused after alignment
    into ``reference``'s frame; the cosine of their vectors of the same text before and after;
    paired tests of the aligned mean against every other row."""
    members, info = build_members(plans, mixed, judge_val, reference=reference, seed=seed)
    a, b = members
    before = np.sum(a.own["test"] * b.own["test"], axis=1)
    after = np.sum(a.frame["test"] * b.frame["test"], axis=1)
    qa, da = fuse(stack([a.own["test"], b.own["test"]]), method="mean"), a.own["docs"]
    rows = [
        ("single:" + a.name, a.score("test")),
        ("single:" + b.name, b.score("test")),
        ("unaligned mean (fused query and fused index)", unaligned_mean(members)[0]),
        (f"unaligned mean query against {a.name}'s own index", qa @ da.T),
        (ALIGNED_MEAN, fused_mean(members)),
        ("aligned Kalman (calibrated sigma^2)", fused_kalman(members)),
    ]
    results, per_query = [], {}
    for name, scores in rows:
        res = judge_test.result(scores, name)
        per_query[name] = res.per_query["ndcg@10"]
        domains = judge_test.by_domain(per_query[name])
        results.append({"strategy": name, "metrics": {m: res.metrics[m] for m in REPORTED}, "domains": domains})
    return {
        "specialists": info,
        "cosine_same_text": {"before_alignment": _cosine_summary(before), "after_alignment": _cosine_summary(after)},
        "rows": results,
        "comparisons": [c.__dict__ for c in compare_systems(per_query, ALIGNED_MEAN, metric="ndcg@10", seed=0)],
    }  # fmt: skip


def _cosine_summary(cos: np.ndarray) -> dict:
    return {"mean": float(cos.mean()), "min": float(cos.min()), "share_negative": float((cos < 0).mean())}

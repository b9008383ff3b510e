"""Score every strategy of the fusion study on the test queries, and test what it found.

Every row is one strategy's test metrics, overall and per domain; the paired tests compare the
fused strategies with the best single specialist and with ``F:mean`` (Holm across strategies),
the per-domain checks ask whether the best fused strategy loses on any domain, and the
uncertainty report says how each sigma^2 estimator tracked the specialists' own errors.
"""

from __future__ import annotations

from keff.eval import compare_systems
from keff.eval.significance import paired_bootstrap_ci, randomization_test
from keff.fusion import LearnedGate
from keff.studies.common import log
from keff.studies.fusion.judge import Judge
from keff.studies.fusion.mixed import DOMAINS
from keff.studies.fusion.prepare import ESTIMATORS
from keff.studies.fusion.strategies import (
    Member,
    fused_index_strategies,
    fused_mean,
    gate_features,
    oracle_routing,
    per_index_strategies,
    unaligned_mean,
    utilities,
)
from keff.uncertainty.diagnostics import error_correlation, variance_spread

#: Metrics of every reported row.
REPORTED = ("ndcg@10", "mrr@10", "recall@100")


def _row(name: str, family: str, result, judge: Judge, info: dict) -> dict:
    by_domain = {m: judge.by_domain(result.per_query[m]) for m in REPORTED}
    return {"strategy": name, "family": family, "metrics": {m: result.metrics[m] for m in REPORTED},
            "domains": {d: {m: by_domain[m][d] for m in REPORTED} for d in DOMAINS}, "info": info,
            "per_query_ndcg": result.per_query["ndcg@10"]}  # fmt: skip


def evaluate_all(members: list[Member], judge_val: Judge, judge_test: Judge, *, router: str) -> tuple[list, dict]:
    """Every strategy's test row (the score matrices are dropped once scored), and how the gate's
    fit went. ``router`` names the member whose frame vectors decide which specialists to skip."""
    gate = LearnedGate().fit(gate_features(members, "val"), utilities(members, judge_val))
    rows = [_row(f"single:{m.name}", "single", judge_test.result(m.score("test"), m.name), judge_test, {})
            for m in members]  # fmt: skip
    frame_dim = members[0].frame["docs"].shape[1]
    same_dim = [m for m in members if m.own["docs"].shape[1] == frame_dim]
    tuned = [m for m in members if m.specialist.domain is not None]
    families = [
        ("fused index", lambda: fused_index_strategies(members, list(ESTIMATORS), gate)),
        ("fused index", lambda: {"F:unaligned mean (same-dim specialists)": unaligned_mean(same_dim)}),
        ("fused index", lambda: {
            "F:mean, fine-tuned specialists only (aligned)": (fused_mean(tuned), {}),
            "F:mean, fine-tuned specialists only (unaligned)": unaligned_mean(tuned),
        } if len(tuned) > 1 else {}),
        ("per-specialist indexes", lambda: per_index_strategies(
            members, list(ESTIMATORS), gate, judge_val, router=[m.name for m in members].index(router))),
        ("ceiling", lambda: {"oracle routing (uses test labels)": oracle_routing(members, judge_test)}),
    ]  # fmt: skip
    for family, produce in families:
        for name, (scores, info) in produce().items():
            rows.append(_row(name, family, judge_test.result(scores, name), judge_test, info))
            log(f"  {name}: nDCG@10 {rows[-1]['metrics']['ndcg@10']:.4f}")
    gate_info = {"n_iter": int(gate.n_iter_), "converged": bool(gate.converged_)}
    return rows, gate_info


def significance(rows: list[dict]) -> tuple[list[dict], dict]:
    """Paired tests of every fused strategy against the best single specialist and against F:mean
    (Holm across strategies), and the picks: best single specialist and best fused strategy."""
    singles = [r for r in rows if r["family"] == "single"]
    best_single = max(singles, key=lambda r: r["metrics"]["ndcg@10"])
    fused = [r for r in rows if r["family"] not in ("single", "ceiling")]
    out = []
    for ref in (best_single, next(r for r in rows if r["strategy"] == "F:mean")):
        per_query = {r["strategy"]: r["per_query_ndcg"] for r in fused if r is not ref}
        per_query[ref["strategy"]] = ref["per_query_ndcg"]
        out += [c.__dict__ for c in compare_systems(per_query, ref["strategy"], metric="ndcg@10", seed=0)]
    best = max(fused, key=lambda r: r["metrics"]["ndcg@10"])
    return out, {"best_single": best_single["strategy"], "best_fused": best["strategy"]}


def domain_checks(rows: list[dict], judge: Judge, best_fused: str) -> list[dict]:
    """On each domain slice: the best fused strategy against the best single specialist of that slice."""
    out = []
    fused = next(r for r in rows if r["strategy"] == best_fused)
    for d in DOMAINS:
        qids = [judge.query_ids[i] for i in judge.domain_rows(d)]
        singles = [r for r in rows if r["family"] == "single"]
        ref = max(singles, key=lambda r: r["domains"][d]["ndcg@10"])
        a = [fused["per_query_ndcg"][q] for q in qids]
        b = [ref["per_query_ndcg"][q] for q in qids]
        diff, lo, hi = paired_bootstrap_ci(a, b, seed=0)
        p = randomization_test(a, b, seed=0)
        out.append({"domain": d, "strategy": best_fused, "best_single": ref["strategy"], "n": len(qids), "diff": diff,
                    "ci_low": lo, "ci_high": hi, "p": p, "loses": bool(diff < 0 and p < 0.05)})  # fmt: skip
    return out


def uncertainty_report(members: list[Member], judge_test: Judge) -> list[dict]:
    """Spread of each estimator's sigma^2 on test queries and its rank correlation with the
    specialist's own per-query error there (a diagnostic; nothing is fitted on it)."""
    out = []
    for m in members:
        errors = 1.0 - judge_test.per_query(m.score("test"))
        for est in ESTIMATORS[1:]:
            var = m.variances[est]["test"]
            out.append({"specialist": m.name, "estimator": est, **variance_spread(var),
                        **{f"error_{k}": v for k, v in error_correlation(var, errors).items()}})  # fmt: skip
    return out

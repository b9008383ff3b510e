"""The mixed-domain fusion benchmark (``keff fuse bench``): does fusing specialists per query
beat the best single one? Every strategy, overall and per domain, with paired tests, latency,
what the uncertainty estimates did, and the drift experiment (unaligned vs aligned siblings)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from keff.data.mixed import DOMAINS, build_mixed_domain
from keff.eval import compare_systems, run_metadata
from keff.eval.significance import paired_bootstrap_ci, randomization_test
from keff.fusion.gate import LearnedGate
from keff.fusion.judge import Judge
from keff.fusion.prepare import DRIFTED, ESTIMATORS, SPECIALISTS, build_members, log
from keff.fusion.strategies import (
    Member,
    fused_index_strategies,
    gate_features,
    oracle_routing,
    per_index_strategies,
    unaligned_mean,
    utilities,
)
from keff.fusion.vector import kalman_fuse, mean_fuse, precision_weights, stack, weighted_query_concat
from keff.index import ExactIndex
from keff.uncertainty.diagnostics import error_correlation, variance_spread

REPORTED = ("ndcg@10", "mrr@10", "recall@100")
ALIGNED_MEAN = "aligned mean (fused index in the minilm frame)"


def _row(name: str, family: str, result, judge: Judge, info: dict) -> dict:
    by_domain = {m: judge.by_domain(result.per_query[m]) for m in REPORTED}
    return {"strategy": name, "family": family, "metrics": {m: result.metrics[m] for m in REPORTED},
            "domains": {d: {m: by_domain[m][d] for m in REPORTED} for d in DOMAINS}, "info": info,
            "per_query_ndcg": result.per_query["ndcg@10"]}  # fmt: skip


def evaluate_all(members: list[Member], judge_val: Judge, judge_test: Judge, *, router: str) -> tuple[list, dict]:
    """Every strategy's test row (the score matrices are dropped once scored)."""
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
    (Holm across strategies), and the per-domain check of the best fused strategy."""
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


def latency(members: list[Member], *, repeats: int = 21, single: int = 300) -> dict:
    """Kalman vs mean fusion per query, alone and with the fused-index search, interleaved; and,
    at equal caching (every document vector computed once per specialist), Kalman weights over
    per-specialist indexes searched as one concatenated index of the specialists' own vectors."""
    Z = stack([m.frame["test"] for m in members])
    var = np.stack([m.variances["calibrated"]["test"] for m in members])
    index = ExactIndex(mean_fuse(stack([m.frame["docs"] for m in members])))
    own = [m.own["test"] for m in members]
    per_specialist = ExactIndex(np.concatenate([m.own["docs"] for m in members], axis=1))

    fns = {
        "mean": lambda z, v, c: mean_fuse(z),
        "kalman": lambda z, v, c: kalman_fuse(z, v),
        "mean+search": lambda z, v, c: index.search(mean_fuse(z), 10),
        "kalman+search": lambda z, v, c: index.search(kalman_fuse(z, v), 10),
        "per-index-kalman+search": lambda z, v, c: per_specialist.search(
            weighted_query_concat([q[c] for q in own], precision_weights(v)), 10
        ),
    }
    for fn in fns.values():  # warm-up: first calls pay for allocation and lazy set-up
        fn(Z, var, slice(None))
    batch = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter_ns()
            fn(Z, var, slice(None))
            batch[k].append((time.perf_counter_ns() - t0) / 1e3 / Z.shape[1])
    one = {k: [] for k in fns}
    for i in range(single):
        j = i % Z.shape[1]
        for k, fn in fns.items():
            t0 = time.perf_counter_ns()
            fn(Z[:, j : j + 1], var[:, j : j + 1], slice(j, j + 1))
            one[k].append((time.perf_counter_ns() - t0) / 1e3)
    out = {f"batch_{k}_us": float(np.median(v)) for k, v in batch.items()}
    out.update({f"single_{k}_us": float(np.median(v)) for k, v in one.items()})
    for mode in ("batch", "single"):
        out[f"{mode}_ratio_fuse"] = out[f"{mode}_kalman_us"] / out[f"{mode}_mean_us"]
        out[f"{mode}_ratio_fuse_search"] = out[f"{mode}_kalman+search_us"] / out[f"{mode}_mean+search_us"]
        out[f"{mode}_ratio_per_index"] = out[f"{mode}_per-index-kalman+search_us"] / out[f"{mode}_mean+search_us"]
    out["n_specialists"], out["batch_queries"] = len(members), int(Z.shape[1])
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


def drift_experiment(mixed, judge_val: Judge, judge_test: Judge, *, seed: int) -> dict:
    """Two siblings behind different random rotations: fused without and with alignment."""
    members, info = build_members(DRIFTED, mixed, judge_val, reference="minilm", seed=seed)
    a, b = members
    before = np.sum(a.own["test"] * b.own["test"], axis=1)
    after = np.sum(a.frame["test"] * b.frame["test"], axis=1)
    qa, da = mean_fuse(stack([a.own["test"], b.own["test"]])), a.own["docs"]
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


def fused_mean(members: list[Member]) -> np.ndarray:
    q = mean_fuse(stack([m.frame["test"] for m in members]))
    return q @ mean_fuse(stack([m.frame["docs"] for m in members])).T


def fused_kalman(members: list[Member]) -> np.ndarray:
    var = np.stack([m.variances["calibrated"]["test"] for m in members])
    dvar = np.stack([m.variances["centroid"]["docs"] for m in members])
    q = kalman_fuse(stack([m.frame["test"] for m in members]), var)
    return q @ kalman_fuse(stack([m.frame["docs"] for m in members]), dvar).T


def run_fusion_bench(
    data: Path,
    *,
    medquad_groups: int = 300,
    seed: int = 0,
    router: str = "minilm-l3-onnx",
    specialists_out: Path | None = None,
    drift: bool = True,
    only: list[str] | None = None,
) -> dict:
    """Build the mixed-domain set and every specialist, run all strategies; returns the JSON.
    ``only`` keeps a subset of the specialists by name (quick runs); it must include the router."""
    mixed = build_mixed_domain(data, medquad_groups=medquad_groups, seed=seed)
    judge_val = Judge(mixed.val.ids, mixed.doc_ids, mixed.val.qrels, mixed.val.domains)
    judge_test = Judge(mixed.test.ids, mixed.doc_ids, mixed.test.qrels, mixed.test.domains)
    plans = tuple(p for p in SPECIALISTS if only is None or p.name in only)
    members, info = build_members(plans, mixed, judge_val, seed=seed)
    if specialists_out is not None:
        for m in members:
            m.specialist.save(Path(specialists_out) / f"{m.name}.sef")
    rows, gate_info = evaluate_all(members, judge_val, judge_test, router=router)
    comparisons, picks = significance(rows)
    result = {
        "benchmark": "fusion",
        "meta": run_metadata(seed=seed, encoders={k: v["fingerprint"] for k, v in info.items()},
                             data_hashes=mixed.data_hashes),
        "data": mixed.summary(),
        "specialists": info,
        "gate": gate_info,
        "rows": [{k: v for k, v in r.items() if k != "per_query_ndcg"} for r in rows],
        "comparisons": comparisons,
        "picks": picks,
        "domain_checks": domain_checks(rows, judge_test, picks["best_fused"]),
        "latency": latency(members),
        "uncertainty": uncertainty_report(members, judge_test),
    }  # fmt: skip
    if drift:
        result["drift"] = drift_experiment(mixed, judge_val, judge_test, seed=seed)
    return result

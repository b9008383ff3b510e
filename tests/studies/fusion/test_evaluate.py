"""The fusion study's bookkeeping: significance picks and per-domain checks."""

from __future__ import annotations

import numpy as np

from keff.studies.fusion.evaluate import domain_checks, significance
from keff.studies.fusion.judge import Judge


def rows_for(values: dict[str, np.ndarray], families: dict[str, str], judge: Judge) -> list[dict]:
    out = []
    for name, v in values.items():
        pq = dict(zip(judge.query_ids, v.tolist()))
        dom = judge.by_domain(pq)
        out.append({"strategy": name, "family": families[name], "metrics": {"ndcg@10": float(v.mean())},
                    "domains": {d: {"ndcg@10": x} for d, x in dom.items()}, "per_query_ndcg": pq})  # fmt: skip
    return out


def test_picks_and_domain_losses():
    rng = np.random.default_rng(0)
    qids = [f"q{i}" for i in range(300)]
    domains = ["scifact"] * 100 + ["medquad"] * 100 + ["skills"] * 100
    judge = Judge(qids, ["d"], {q: {"d": 1} for q in qids}, domains)
    base = rng.uniform(0.3, 0.7, 300)
    better = base + 0.1
    better[:100] -= 0.3  # much worse on the first domain
    values = {"single:a": base, "single:b": base - 0.05, "F:mean": base - 0.02, "P:x": better}
    families = {"single:a": "single", "single:b": "single", "F:mean": "fused index", "P:x": "per-specialist indexes"}
    rows = rows_for(values, families, judge)
    comparisons, picks = significance(rows)
    assert picks == {"best_single": "single:a", "best_fused": "P:x"}
    assert {c["baseline"] for c in comparisons} == {"single:a", "F:mean"}
    checks = {c["domain"]: c for c in domain_checks(rows, judge, "P:x")}
    assert checks["scifact"]["loses"] and not checks["medquad"]["loses"]
    assert checks["medquad"]["diff"] > 0.09

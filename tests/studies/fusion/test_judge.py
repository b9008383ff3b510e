"""Judge: fast per-query nDCG matches the library's, per-domain means."""

from __future__ import annotations

import numpy as np

from keff.studies.fusion.judge import Judge


def test_fast_path_equals_library_and_domains():
    rng = np.random.default_rng(0)
    n, N = 40, 60
    qids, dids = [f"q{i}" for i in range(n)], [f"d{j}" for j in range(N)]
    qrels = {q: {dids[j]: int(rng.integers(1, 3)) for j in rng.choice(N, 3, replace=False)} for q in qids}
    judge = Judge(qids, dids, qrels, ["a"] * 20 + ["b"] * 20)
    scores = rng.standard_normal((n, N)).astype(np.float32)
    fast = judge.per_query(scores)
    lib = judge.result(scores, "x").per_query["ndcg@10"]
    assert np.allclose(fast, [lib[q] for q in qids], atol=1e-6)
    dom = judge.by_domain(lib)
    assert np.isclose(dom["a"], np.mean([lib[q] for q in qids[:20]]))
    assert judge.objective(scores) == float(fast.mean())
    assert judge.domain_rows("b").tolist() == list(range(20, 40))

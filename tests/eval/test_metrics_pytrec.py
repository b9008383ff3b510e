"""``evaluate_run`` (one pytrec_eval call) gives exactly the values of the ir_measures path it replaced."""

from __future__ import annotations

import math
from types import MappingProxyType

import numpy as np
import pytest

from keff.eval.metric_names import FAMILIES, parse_metrics
from keff.eval.metrics import _checked_run, evaluate_run, judged_queries

ir_measures = pytest.importorskip("ir_measures")

#: Every family keff supports, at cutoffs below, at and beyond the runs' depths (1..40).
METRICS = [f"{family}@{k}" for family in FAMILIES for k in (1, 2, 3, 5, 10, 20, 40, 100)]


def reference_evaluate_run(run, qrels, metrics):
    """keff's previous ``evaluate_run``: ir_measures' pytrec_eval provider, one call for every
    metric but ``mrr@k``, and ``RR`` on the run cut to each query's top ``k`` for ``mrr@k``."""
    provider = ir_measures.providers.registry["pytrec_eval"]

    def values(run, measures):
        by_measure = {ir_measures.parse_measure(spec): name for name, spec in measures.items()}
        out = {name: {} for name in measures}
        for metric in provider.evaluator(list(by_measure), judged).iter_calc(run):
            out[by_measure[metric.measure]][metric.query_id] = float(metric.value)
        return out

    def truncate(run, k):
        return {q: dict(sorted(d.items(), key=lambda x: (x[1], x[0]), reverse=True)[:k]) for q, d in run.items()}

    names = parse_metrics(metrics)
    judged = judged_queries(qrels)
    checked = _checked_run(run, judged)
    per_query = values(checked, {m.name: m.ir_measures_name for m in names if m.family != "mrr"})
    for m in names:
        if m.family == "mrr":
            per_query.update(values(truncate(checked, m.k), {m.name: "RR"}))
    rows = {m.name: {q: per_query[m.name].get(q, 0.0) for q in judged} for m in names}
    return {n: math.fsum(r.values()) / len(r) for n, r in rows.items()}, rows


def random_case(seed: int, n_queries: int = 120, levels: int | None = 4):
    """A run with many exact score ties (``levels`` distinct scores; None: continuous), graded
    qrels with zeros and unretrieved relevant documents, judged queries missing from the run or
    with no results, queries without a relevant document, and run queries that are not judged."""
    rng = np.random.default_rng(seed)
    run, qrels = {}, {}
    for q in range(n_queries):
        qid = f"q{q}"
        pool = rng.choice(60, size=rng.integers(1, 41), replace=False)
        scores = rng.integers(0, levels, size=len(pool)) / 2 if levels else rng.normal(size=len(pool))
        kind = rng.random()
        if kind < 0.1:
            pass  # judged query missing from the run
        elif kind < 0.15:
            run[qid] = {}  # a judged query with no results
        else:
            run[qid] = {f"d{d}": float(s) for d, s in zip(pool, scores)}
        judged = rng.choice(60, size=rng.integers(1, 8), replace=False)
        rels = rng.integers(0, 4, size=len(judged))
        if rng.random() < 0.1:
            rels[:] = 0  # no relevant document: not averaged
        qrels[qid] = {f"d{d}": int(r) for d, r in zip(judged, rels)}
    for q in range(5):
        run[f"unjudged{q}"] = {"d1": 1.0, "d2": 0.5}
    return run, qrels


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("levels", [2, 4, None])
def test_every_metric_equals_the_ir_measures_path_on_random_runs_with_ties(seed, levels):
    run, qrels = random_case(seed, levels=levels)
    agg, per = evaluate_run(run, qrels, METRICS)
    ref_agg, ref_per = reference_evaluate_run(run, qrels, METRICS)
    assert list(per) == list(ref_per) == METRICS
    for m in METRICS:
        assert list(per[m]) == list(ref_per[m])  # same queries, same order
        assert per[m] == ref_per[m], m  # bit for bit
        assert agg[m] == ref_agg[m], m


def test_default_and_qa_metric_sets_equal_the_ir_measures_path():
    from keff.eval.metric_names import DEFAULT_METRICS, QA_METRICS

    run, qrels = random_case(11, n_queries=300, levels=3)
    for metrics in (DEFAULT_METRICS, QA_METRICS, ["mrr@10"], ["mrr@1", "mrr@3", "hit@1"]):
        assert evaluate_run(run, qrels, metrics) == reference_evaluate_run(run, qrels, metrics)


def test_scores_of_other_numeric_types_are_read_as_floats():
    run, qrels = random_case(3, n_queries=40, levels=5)
    expected = evaluate_run(run, qrels, METRICS)
    as_float32 = {q: {d: np.float32(s) for d, s in docs.items()} for q, docs in run.items()}
    as_int = {q: {d: int(2 * s) for d, s in docs.items()} for q, docs in run.items()}  # same order
    as_proxy = {q: MappingProxyType(docs) for q, docs in run.items()}
    assert evaluate_run(as_float32, qrels, METRICS) == expected
    assert evaluate_run(as_int, qrels, METRICS) == expected
    assert evaluate_run(as_proxy, qrels, METRICS) == expected


class Score:
    """A number type pytrec_eval cannot read, that adds to a float like one."""

    def __init__(self, value: float) -> None:
        self.value = value

    def __float__(self) -> float:
        return self.value

    def __radd__(self, other: float) -> float:
        return other + self.value


def test_scores_pytrec_eval_cannot_read_are_converted_by_float():
    run, qrels = random_case(5, n_queries=30)
    expected = evaluate_run(run, qrels, METRICS)
    exotic = {q: {d: Score(s) for d, s in docs.items()} for q, docs in run.items()}
    assert evaluate_run(exotic, qrels, METRICS) == expected


def test_the_run_is_not_modified():
    run, qrels = random_case(4, n_queries=30)
    before = {q: dict(docs) for q, docs in run.items()}
    evaluate_run(run, qrels, METRICS)
    assert run == before


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_score_is_refused_naming_the_query(bad):
    from keff.errors import DataError

    run = {"q": {"a": 1.0, "b": bad}}
    with pytest.raises(DataError, match=r"non-finite.*id 'q'"):
        evaluate_run(run, {"q": {"a": 1}}, ["hit@1"])
    # a huge but finite run whose sum overflows is still accepted
    huge = {"q": {"a": 1e308, "b": 1e308, "c": 1.0}}
    assert evaluate_run(huge, {"q": {"c": 1}}, ["mrr@10"])[0]["mrr@10"] == pytest.approx(1 / 3)
    # a non-finite score of a query that is not judged is ignored, as before
    assert evaluate_run({"x": {"a": bad}, "q": {"a": 1.0}}, {"q": {"a": 1}}, ["hit@1"])[0] == {"hit@1": 1.0}


def test_mrr_cutoff_is_exact_at_the_boundary():
    # the first relevant document at rank r scores 1/r for mrr@k with k >= r, and 0 for k < r
    for r in (1, 2, 3, 7, 10, 99, 100, 101, 997):
        run = {"q": {f"d{i:04d}": float(2000 - i) for i in range(r + 5)}}
        qrels = {"q": {f"d{r - 1:04d}": 1}}
        agg, _ = evaluate_run(run, qrels, [f"mrr@{k}" for k in (r - 1, r, r + 1) if k >= 1])
        if r > 1:
            assert agg[f"mrr@{r - 1}"] == 0.0
        assert agg[f"mrr@{r}"] == agg[f"mrr@{r + 1}"] == 1.0 / r

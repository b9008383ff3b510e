"""Fusion strategies on a synthetic two-domain world where each specialist knows one domain."""

from __future__ import annotations

import numpy as np
import pytest

from keff.encoders.hash_encoder import HashEncoder
from keff.fusion import LearnedGate, Specialist, kalman_fuse, mean_fuse, precision_weights, stack, weighted_scores
from keff.studies.fusion.judge import Judge
from keff.studies.fusion.strategies import (
    Member,
    fused_index_strategies,
    gate_features,
    oracle_routing,
    per_index_strategies,
    unaligned_mean,
    utilities,
)
from keff.uncertainty import CentroidDistance


def unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def world():
    """Docs and queries of two domains; specialist i sees its own domain sharply and the other
    through heavy noise, so the right per-query weighting beats either alone."""
    rng = np.random.default_rng(0)
    d, n_docs = 24, 120
    centre = np.zeros((2, d))
    centre[0, 0] = centre[1, 1] = 4.0
    dom_docs = np.repeat([0, 1], n_docs // 2)
    truth = unit(rng.standard_normal((n_docs, d)) + centre[dom_docs])
    doc_ids = [f"d{j}" for j in range(n_docs)]

    def queries(n, seed):
        r = np.random.default_rng(seed)
        target = r.integers(0, n_docs, n)
        return target, unit(truth[target] + 0.15 * r.standard_normal((n, d)))

    splits = {"val": queries(80, 1), "test": queries(80, 2)}
    members = []
    for i in range(2):
        noise = np.where(dom_docs == i, 0.05, 0.9)[:, None]

        def view(x, dom, s=i):
            scale = np.where(dom == s, 0.05, 0.9)[:, None]
            return unit(x + scale * np.random.default_rng(10 + s).standard_normal(x.shape))

        own = {"docs": unit(truth + noise * np.random.default_rng(20 + i).standard_normal(truth.shape))}
        for split, (target, q) in splits.items():
            own[split] = view(q, dom_docs[target])
        spec = Specialist(f"s{i}", "hash", HashEncoder(dim=d).fingerprint, None, unit(centre[i : i + 1])[0],
                          CentroidDistance().fit(own["docs"][dom_docs == i]))  # fmt: skip
        m = Member(f"s{i}", spec, own, dict(own))
        for est in ("constant", "centroid", "calibrated"):
            e = spec.uncertainty
            m.variances[est] = {s: (np.ones(len(own[s])) if est == "constant" else e.variance(own[s])) for s in own}
        members.append(m)
    judges = {}
    for s, (target, _) in splits.items():
        qids = [f"{s}{k}" for k in range(len(target))]
        qrels = {q: {doc_ids[t]: 1} for q, t in zip(qids, target)}
        judges[s] = Judge(qids, doc_ids, qrels, [str(dom_docs[t]) for t in target])
    return members, judges


def test_per_index_strategies_weight_the_right_specialist(world):
    members, judges = world
    singles = [judges["test"].objective(m.score("test")) for m in members]
    gate = LearnedGate().fit(gate_features(members, "val"), utilities(members, judges["val"]))
    out = per_index_strategies(members, ["constant", "centroid"], gate, judges["val"], router=0)
    score = {name: judges["test"].objective(m) for name, (m, _) in out.items()}
    assert score["P:kalman-centroid"] > max(singles)
    assert score["P:kalman-centroid"] > score["P:uniform (concat)"]
    assert np.isclose(score["P:kalman-constant"], score["P:uniform (concat)"])  # equal variances = mean
    assert 0.0 <= out["P:skip-kalman"][1]["compute_saved"] <= 0.5
    oracle, _ = oracle_routing(members, judges["test"])
    assert judges["test"].objective(oracle) >= max(score.values()) - 1e-9


def test_fused_index_and_unaligned_mean_shapes(world):
    members, judges = world
    gate = LearnedGate().fit(gate_features(members, "val"), utilities(members, judges["val"]))
    out = fused_index_strategies(members, ["constant", "centroid"], gate)
    assert {"F:mean", "F:kalman-constant", "F:kalman-centroid", "F:gate"} <= set(out)
    assert all(m.shape == (80, 120) for m, _ in out.values())
    scores, info = unaligned_mean(members)
    assert scores.shape == (80, 120) and "unaligned" in info["docs"]


def test_nothing_tuned_sees_test_queries(world):
    """Gate, convex weights, RRF k and the skip threshold come out identical whatever the test
    queries are: they are fitted on validation queries only."""
    members, judges = world
    rng = np.random.default_rng(99)

    def tuned(ms):
        gate = LearnedGate().fit(gate_features(ms, "val"), utilities(ms, judges["val"]))
        out = per_index_strategies(ms, ["centroid"], gate, judges["val"], router=0)
        return gate.coef_.copy(), {k: v[1] for k, v in out.items() if v[1]}

    coef_a, info_a = tuned(members)
    scrambled = []
    for m in members:
        own = dict(m.own)
        own["test"] = unit(rng.standard_normal(own["test"].shape))  # entirely different test queries
        clone = Member(m.name, m.specialist, own, {**m.frame, "test": own["test"]}, dict(m.variances))
        clone.variances = {e: {**v, "test": rng.uniform(0.1, 1, len(own["test"]))} for e, v in m.variances.items()}
        scrambled.append(clone)
    coef_b, info_b = tuned(scrambled)
    assert np.array_equal(coef_a, coef_b)
    for key in ("P:convex (tuned)", "P:rrf (tuned k)"):
        assert info_a[key] == info_b[key]
    assert info_a["P:skip-kalman"]["threshold"] == info_b["P:skip-kalman"]["threshold"]


def test_rows_named_by_registry_method_equal_the_kernels(world):
    """The rows that go through keff.fusion's registries are exactly the kernels they name."""
    members, judges = world
    gate = LearnedGate().fit(gate_features(members, "val"), utilities(members, judges["val"]))
    St = np.stack([m.score("test") for m in members])
    var = np.stack([m.variances["centroid"]["test"] for m in members])
    per_index = per_index_strategies(members, ["centroid"], gate, judges["val"], router=0)
    assert np.array_equal(per_index["P:kalman-centroid"][0], weighted_scores(St, precision_weights(var)))
    chosen = np.argmin(var, axis=0)
    assert np.array_equal(per_index["P:route-centroid"][0], St[chosen, np.arange(St.shape[1])])
    assert per_index["P:route-centroid"][1]["chosen"] == np.bincount(chosen, minlength=len(members)).tolist()
    Zt, docs = stack([m.frame["test"] for m in members]), stack([m.frame["docs"] for m in members])
    doc_var = np.stack([m.variances["centroid"]["docs"] for m in members])
    fused = fused_index_strategies(members, ["centroid"], gate)
    assert np.array_equal(fused["F:mean"][0], mean_fuse(Zt) @ mean_fuse(docs).T)
    assert np.array_equal(fused["F:kalman-centroid"][0], kalman_fuse(Zt, var) @ kalman_fuse(docs, doc_var).T)

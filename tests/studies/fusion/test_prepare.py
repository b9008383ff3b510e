"""Preparing the fusion study's members on a tiny three-domain corpus with the hash encoder:
every map, centroid and variance estimator is fitted on training and validation texts only."""

from __future__ import annotations

import numpy as np
import pytest

from keff.sef import load_sef
from keff.studies.fusion.judge import Judge
from keff.studies.fusion.mixed import DOMAINS, MixedDomain, QuerySet
from keff.studies.fusion.prepare import ESTIMATORS, Plan, build_members

PLANS = (Plan("other", encoder="hash"), Plan("ref", encoder="hash"))
FITTED_ON_TRAIN = ("centroid", "knn", "constant")  # estimators that never see a judgement


def sentence(rng: np.random.Generator, domain: str) -> str:
    return " ".join(rng.choice([f"{domain}{i}" for i in range(40)] + ["shared", "word"], 8))


def tiny_mixed() -> MixedDomain:
    """Per domain: 12 documents, 6 val and 6 test queries (one relevant document each), 12 training pairs."""
    rng = np.random.default_rng(0)
    mixed = MixedDomain([], [], [], QuerySet(), QuerySet(), {}, {}, {})
    for domain in DOMAINS:
        docs = [sentence(rng, domain) for _ in range(12)]
        mixed.doc_ids += [f"{domain}:d{j}" for j in range(12)]
        mixed.doc_texts += docs
        mixed.doc_domains += [domain] * 12
        for split, qs in (("val", mixed.val), ("test", mixed.test)):
            ids = [f"{split}{i}" for i in range(6)]
            qs.add(domain, ids, [docs[2 * i][:30] for i in range(6)], {q: {f"d{2 * i}": 1} for i, q in enumerate(ids)})
        mixed.train_pairs[domain] = [(sentence(rng, domain), sentence(rng, domain)) for _ in range(12)]
    return mixed


def scrambled(queries: QuerySet, seed: int) -> QuerySet:
    """The same ids, domains and judgements with entirely different query texts."""
    rng = np.random.default_rng(seed)
    return QuerySet(list(queries.ids), [sentence(rng, "noise") for _ in queries.ids], list(queries.domains),
                    dict(queries.qrels))  # fmt: skip


def build(mixed: MixedDomain):
    judge_val = Judge(mixed.val.ids, mixed.doc_ids, mixed.val.qrels, mixed.val.domains)
    return build_members(PLANS, mixed, judge_val, reference="ref", anchors_per_domain=16, seed=0)


def saved(members, folder) -> dict[str, tuple[dict, dict]]:
    """Each fitted specialist (map, centroid, calibrated estimator, info) as saved: its SEF
    file's metadata and arrays (as bytes, so that equality is exact)."""
    out = {}
    for m in members:
        arrays, meta = load_sef(m.specialist.save(folder / f"{m.name}.sef"), kind="specialist")
        out[m.name] = (meta, {k: (v.dtype.str, v.shape, v.tobytes()) for k, v in arrays.items()})
    return out


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KEFF_CACHE_DIR", str(tmp_path / "cache"))


def test_members_are_built_in_plan_order_with_every_estimator(tmp_path):
    mixed = tiny_mixed()
    members, info = build(mixed)
    assert [m.name for m in members] == ["other", "ref"]
    ref, other = members[1].specialist, members[0].specialist
    assert ref.map is None and other.map is not None  # the reference's space is the frame
    assert "anchor_cosine_to_reference" in info["other"] and "anchor_cosine_to_reference" not in info["ref"]
    n = {"val": len(mixed.val.ids), "test": len(mixed.test.ids), "docs": len(mixed.doc_ids)}
    for m in members:
        assert set(m.variances) == set(ESTIMATORS)
        for est in ESTIMATORS:
            assert {s: len(v) for s, v in m.variances[est].items()} == n
            assert all(np.all(v > 0) for v in m.variances[est].values())
        assert m.residual.shape == (m.frame["docs"].shape[1],)


def test_scrambling_test_queries_leaves_every_fitted_specialist_identical(tmp_path):
    mixed = tiny_mixed()
    members, info = build(mixed)
    mixed.test = scrambled(mixed.test, seed=1)
    again, info_again = build(mixed)
    assert saved(members, tmp_path / "a") == saved(again, tmp_path / "b")
    assert info == info_again
    for m, a in zip(members, again):
        assert np.array_equal(m.residual, a.residual)
        for est in ESTIMATORS:
            for split in ("val", "docs"):
                assert np.array_equal(m.variances[est][split], a.variances[est][split])
        assert not np.array_equal(m.frame["test"], a.frame["test"])  # the test queries did change


def test_only_calibration_sees_validation_queries(tmp_path):
    """Scrambling the validation queries moves the calibrated sigma^2 and nothing fitted on training texts."""
    mixed = tiny_mixed()
    members, _ = build(mixed)
    mixed.val = scrambled(mixed.val, seed=2)
    again, _ = build(mixed)
    for m, a in zip(members, again):
        assert np.array_equal(m.specialist.centroid, a.specialist.centroid)
        if m.specialist.map is not None:
            state, state_again = m.specialist.map.get_state(), a.specialist.map.get_state()
            assert all(np.array_equal(state[k], state_again[k]) for k in state)
        for est in FITTED_ON_TRAIN:
            assert np.array_equal(m.variances[est]["docs"], a.variances[est]["docs"])
    assert any(
        not np.array_equal(m.variances["calibrated"]["docs"], a.variances["calibrated"]["docs"])
        for m, a in zip(members, again)
    )

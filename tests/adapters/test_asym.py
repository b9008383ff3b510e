"""AsymAdapter: query and document heads that learn a planted task, and a file of kind
"asym-adapter" that round-trips or fails as a FormatError."""

from __future__ import annotations

import numpy as np
import pytest

from keff.adapters import AsymAdapter, QueryAdapter
from keff.adapters.heads import head_specs
from keff.errors import FormatError, KeffError, NotFittedError
from keff.sef import save_sef
from keff.train.infonce import group_rr

pytest.importorskip("torch", reason="adapters train with torch: pip install 'keff[st]'")

KINDS = ("linear", "lowrank", "mlp")
PLANTED = {"epochs": 15, "patience": 3, "lr": 1e-2, "hard_negatives": 4, "batch_size": 64, "rank": 8, "hidden": 32}


@pytest.mark.parametrize("head", KINDS)
def test_learns_a_planted_task_that_transfers_to_unseen_pairs(head, planted):
    X, Y, g = planted(n=800)  # the deciding half of validation needs enough questions
    fit, held = slice(0, 600), slice(600, 800)
    m = AsymAdapter(head=head, **PLANTED, do_no_harm=False).fit(X[fit], Y[fit], g[fit])
    assert m.best_epoch_ > 0 and m.val_mrr_ > m.val_mrr_identity_
    assert m.improved_ and "beats the identity" in m.decision()
    identity = group_rr(X[held], Y[held], g[held], g[held]).mean()
    adapted = group_rr(m.transform_queries(X[held]), m.transform_docs(Y[held]), g[held], g[held]).mean()
    assert adapted > identity + 0.03


@pytest.fixture(scope="module")
def fitted(planted):
    """One trained (non-identity) asymmetric adapter per head kind, with its training pairs."""
    X, Y, g = planted(n=160, d=16)
    params = {"rank": 4, "hidden": 8, "epochs": 3, "lr": 1e-2, "hard_negatives": 2, "do_no_harm": False}
    return {head: AsymAdapter(head=head, **params).fit(X, Y, g) for head in KINDS}, X, Y


def test_has_two_heads_and_checks_its_inputs(fitted):
    adapters, X, Y = fitted
    m = adapters["linear"]
    assert set(m.get_state()) == set(head_specs("linear", "q_")) | set(head_specs("linear", "d_"))
    assert not np.array_equal(m.q_W_, m.d_W_)
    assert not np.array_equal(m.transform_queries(X), X) and not np.array_equal(m.transform_docs(Y), Y)
    assert m.transform_docs(Y).dtype == np.float32
    with pytest.raises(KeffError, match="fitted on 16-d vectors"):
        m.transform_docs(Y[:, :8])
    with pytest.raises(NotFittedError):
        AsymAdapter().transform_queries(X)
    assert m.n_parameters() == 2 * (16 * 16 + 16)


@pytest.mark.parametrize("head", KINDS)
def test_save_load_round_trip_is_bit_identical(fitted, head, tmp_path):
    adapters, X, Y = fitted
    m = adapters[head]
    again, meta = AsymAdapter.load(m.save(tmp_path / "a.sef", meta={"note": "x"}))
    assert meta["kind"] == "asym-adapter" and meta["provenance"] == {"note": "x"}
    assert np.array_equal(again.transform_queries(X), m.transform_queries(X))
    assert np.array_equal(again.transform_docs(Y), m.transform_docs(Y))
    assert again.get_params() == m.get_params() and again.improved_ == m.improved_


def _tampered(m, tmp_path, *, arrays=None, params=None, kind="asym-adapter", **top):
    meta = {"kind": kind, **m.describe(), "provenance": {}, **top}
    meta["params"] = {**meta["params"], **(params or {})}
    return save_sef(tmp_path / "bad.sef", {**m.get_state(), **(arrays or {})}, meta)


@pytest.mark.parametrize(
    "tamper",
    [
        {"arrays": {"q_W_": np.zeros((16, 17), np.float32)}},
        {"arrays": {"d_b_": np.zeros(15, np.float32)}},
        {"arrays": {"d_W_": np.zeros((17, 16), np.float16)}},
        {"params": {"head": "bogus"}},
        {"params": {"head": "mlp"}},
        {"params": {"hard_negatives": -3}},
        {"type": "QueryAdapter"},
        {"kind": "map"},
        {"fitted": {"n_features_in_": 0}},
    ],
)
def test_a_tampered_file_is_a_format_error(fitted, tmp_path, tamper):
    path = _tampered(fitted[0]["linear"], tmp_path, **tamper)
    with pytest.raises(FormatError):
        AsymAdapter.load(path)


def test_a_query_adapter_file_is_not_an_asym_adapter(tmp_path, planted):
    X, Y, g = planted(n=40, d=8)
    path = QueryAdapter(epochs=1, hard_negatives=0).fit(X, Y, g).save(tmp_path / "q.sef")
    with pytest.raises(FormatError):
        AsymAdapter.load(path)

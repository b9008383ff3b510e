"""QueryAdapter: a registered map that learns a planted task, and a file that round-trips or fails
as a FormatError."""

from __future__ import annotations

import numpy as np
import pytest

import keff.adapters  # noqa: F401  (registers the "adapter" map)
from keff.adapters import QueryAdapter
from keff.errors import FormatError, KeffError, NotFittedError
from keff.maps import MAPS, load_map, make_map
from keff.sef import save_sef
from keff.train.infonce import group_rr

pytest.importorskip("torch", reason="adapters train with torch: pip install 'keff[st]'")

KINDS = ("linear", "lowrank", "mlp")
PLANTED = {"epochs": 15, "patience": 3, "lr": 1e-2, "hard_negatives": 4, "batch_size": 64, "rank": 8, "hidden": 32}


@pytest.mark.parametrize("head", KINDS)
def test_learns_a_planted_task_that_transfers_to_unseen_pairs(head, planted):
    X, Y, g = planted(n=800)  # the deciding half of validation needs enough questions
    fit, held = slice(0, 600), slice(600, 800)
    m = QueryAdapter(head=head, **PLANTED, do_no_harm=False).fit(X[fit], Y[fit], g[fit])
    assert m.best_epoch_ > 0 and m.val_mrr_ > m.val_mrr_identity_
    assert m.improved_ and m.gain_p_ < 0.1 and "beats the identity" in m.decision()
    identity = group_rr(X[held], Y[held], g[held], g[held]).mean()
    adapted = group_rr(m.transform(X[held]), Y[held], g[held], g[held]).mean()
    assert adapted > identity + 0.03


def test_is_a_registered_map():
    assert MAPS["adapter"] is QueryAdapter and QueryAdapter.fit_takes_groups
    m = make_map("adapter", head="lowrank", rank=4)
    assert isinstance(m, QueryAdapter) and m.rank == 4
    with pytest.raises(NotFittedError):
        m.transform(np.zeros((2, 8), np.float32))


@pytest.fixture(scope="module")
def fitted(planted):
    """One trained (non-identity) adapter per head kind, with its training questions."""
    X, Y, g = planted(n=400, d=16)
    adapters = {
        head: QueryAdapter(head=head, rank=4, hidden=8, epochs=3, lr=1e-2, hard_negatives=2, do_no_harm=False).fit(
            X, Y, g
        )
        for head in KINDS
    }
    return adapters, X


@pytest.mark.parametrize("head", KINDS)
def test_save_load_round_trip_is_bit_identical(fitted, head, tmp_path):
    adapters, X = fitted
    m = adapters[head]
    assert not np.array_equal(m.transform(X), X)
    again, meta = load_map(m.save(tmp_path / "a.sef", meta={"note": "x"}))
    assert isinstance(again, QueryAdapter) and meta["provenance"] == {"note": "x"}
    assert np.array_equal(again.transform(X), m.transform(X))
    assert again.get_params() == m.get_params() and again.improved_ == m.improved_
    assert again.best_epoch_ == m.best_epoch_ and again.val_mrr_ == m.val_mrr_
    with pytest.raises(KeffError, match="fitted on 16-d input"):
        again.transform(X[:, :8])


def _tampered(m, tmp_path, *, arrays=None, params=None, **top):
    meta = {"kind": "map", **m.describe(), "provenance": {}, **top}
    meta["params"] = {**meta["params"], **(params or {})}
    return save_sef(tmp_path / "bad.sef", {**m.get_state(), **(arrays or {})}, meta)


@pytest.mark.parametrize(
    "tamper",
    [
        {"arrays": {"W_": np.zeros((16, 17), np.float32)}},
        {"arrays": {"b_": np.zeros(15, np.float32)}},
        {"arrays": {"W_": np.zeros((16, 16), np.int32)}},
        {"arrays": {"extra_": np.zeros(3, np.float32)}},
        {"params": {"head": "bogus"}},
        {"params": {"head": "lowrank"}},  # arrays of a linear head under a low-rank head
        {"params": {"confidence": 2.0}},
        {"params": {"rank": "many"}},
        {"params": {"unknown": 1}},
        {"target_dim": 17},
        {"fitted": {"best_epoch_": -1}},
    ],
)
def test_a_tampered_file_is_a_format_error(fitted, tmp_path, tamper):
    path = _tampered(fitted[0]["linear"], tmp_path, **tamper)
    with pytest.raises(FormatError, match="bad.sef"):
        load_map(path)


def test_a_tampered_low_rank_file_is_a_format_error(fitted, tmp_path):
    path = _tampered(fitted[0]["lowrank"], tmp_path, params={"rank": 3})  # arrays saved with rank 4
    with pytest.raises(FormatError, match="rank=3"):
        load_map(path)

"""The retrieval protocol: context units are never candidates; targets ranked in pool and document."""

from __future__ import annotations

import numpy as np
import pytest

from keff.errors import DataError, KeffError
from keff.predict.protocol import score_predictions
from keff.predict.windows import make_windows


def _units(n_docs=4, length=5, d=6, seed=0):
    rng = np.random.default_rng(seed)
    V = rng.standard_normal((n_docs * length, d)).astype(np.float32)
    doc = np.repeat(np.arange(n_docs), length)
    pos = np.tile(np.arange(length), n_docs)
    return V, doc, pos


def test_windows_hold_the_previous_units_in_order():
    V, doc, pos = _units()
    w = make_windows(V, doc, pos, 2, np.array([1, 3]))
    assert len(w) == 2 * 3 and set(w.doc) == {1, 3}
    np.testing.assert_array_equal(w.contexts[0], V[[5, 6]])
    np.testing.assert_array_equal(w.targets[0], V[7])
    assert (w.context_rows[:, -1] == w.target_rows - 1).all()
    with pytest.raises(DataError, match="k must be"):
        make_windows(V, doc, pos, 0, np.array([0]))


def test_copying_an_input_earns_nothing_because_context_units_are_removed():
    V, doc, pos = _units()
    w = make_windows(V, doc, pos, 2, np.arange(4))
    copy = score_predictions(w.contexts[:, -1], w, V, doc, np.arange(4))
    perfect = score_predictions(w.targets, w, V, doc, np.arange(4))
    assert perfect["hit@1"].all() and perfect["doc_mrr"].min() == 1.0 and np.allclose(perfect["cosine"], 1)
    assert copy["mrr"].mean() < 1.0  # the previous unit is not in the pool: copying it ranks something else
    np.testing.assert_allclose(copy["margin_prev"], 0.0, atol=1e-6)
    assert (perfect["margin_prev"] >= -1e-6).all()


def test_targets_must_be_in_the_pool():
    V, doc, pos = _units()
    w = make_windows(V, doc, pos, 1, np.array([0]))
    with pytest.raises(KeffError, match="pool"):
        score_predictions(w.targets, w, V, doc, np.array([1, 2]))

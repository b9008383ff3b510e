"""Next-vector baselines: a rotation applied step by step is learnt exactly by ridge; the others
do what their names say; fitted ones survive a SEF round trip."""

from __future__ import annotations

import numpy as np
import pytest

from keff.errors import FormatError, KeffError
from keff.estimator import rebuild
from keff.predict.baselines import PREDICTORS, ContextMean, CopyLast, KNNTransition, RecencyMean, RidgeContext
from keff.predict.windows import make_windows


def rotation_sequences(n_docs=30, length=12, d=8, seed=0):
    """Documents whose next unit is the last one rotated by a fixed orthogonal R."""
    rng = np.random.default_rng(seed)
    R = np.linalg.qr(rng.standard_normal((d, d)))[0]
    rows, doc, pos = [], [], []
    for i in range(n_docs):
        x = rng.standard_normal(d)
        for t in range(length):
            rows.append(x)
            doc.append(i)
            pos.append(t)
            x = x @ R
    return np.array(rows, np.float32), np.array(doc), np.array(pos), R


def test_ridge_learns_a_stepwise_rotation_exactly():
    V, doc, pos, R = rotation_sequences()
    w = make_windows(V, doc, pos, 2, np.arange(20))
    held = make_windows(V, doc, pos, 2, np.arange(20, 30))
    m = RidgeContext(alpha=1e-6).fit(w.contexts, w.targets)
    np.testing.assert_allclose(m.predict(held.contexts), held.targets, atol=1e-3)
    w1 = make_windows(V, doc, pos, 1, np.arange(20))
    np.testing.assert_allclose(RidgeContext(alpha=1e-6).fit(w1.contexts, w1.targets).W_, R, atol=1e-3)


def test_simple_baselines():
    C = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)
    T = np.zeros((2, 2), np.float32)
    np.testing.assert_array_equal(CopyLast().fit(C, T).predict(C), C[:, -1])
    np.testing.assert_allclose(ContextMean().fit(C, T).predict(C), C.mean(axis=1))
    w = np.array([0.25, 0.5, 1.0]) / 1.75
    np.testing.assert_allclose(RecencyMean(decay=0.5).fit(C, T).predict(C), np.einsum("nkd,k->nd", C, w), rtol=1e-6)
    np.testing.assert_allclose(RecencyMean(decay=1.0).fit(C, T).predict(C), C.mean(axis=1), rtol=1e-6)


def test_knn_transition_returns_the_successor_of_the_nearest_context():
    V, doc, pos, _ = rotation_sequences()
    w = make_windows(V, doc, pos, 1, np.arange(30))
    m = KNNTransition(n_neighbors=1).fit(w.contexts, w.targets)
    np.testing.assert_allclose(m.predict(w.contexts[:5]), w.targets[:5])


@pytest.mark.parametrize("cls", [RidgeContext, KNNTransition])
def test_fitted_baselines_round_trip(cls):
    V, doc, pos, _ = rotation_sequences()
    w = make_windows(V, doc, pos, 2, np.arange(30))
    m = cls().fit(w.contexts, w.targets)
    again = rebuild({cls.__name__: cls}, m.describe(), m.get_state(), what="predictor")
    np.testing.assert_array_equal(again.predict(w.contexts), m.predict(w.contexts))
    bad = {k: v[:, :3] if v.ndim == 2 else v for k, v in m.get_state().items()}
    with pytest.raises(FormatError):
        rebuild({cls.__name__: cls}, m.describe(), bad, what="predictor")


def test_registry_and_bad_input():
    assert {"copy-last", "context-mean", "recency-mean", "ridge", "knn-transition"} <= set(PREDICTORS)
    with pytest.raises(KeffError, match=r"\(n, k, d\)"):
        CopyLast().fit(np.zeros((3, 4)), np.zeros((3, 4)))
    with pytest.raises(KeffError, match="decay"):
        RecencyMean(decay=0).fit(np.zeros((2, 2, 2)), np.zeros((2, 2)))
    m = RidgeContext().fit(np.ones((4, 2, 3)), np.ones((4, 3)))
    with pytest.raises(KeffError, match="contexts of 2 units"):
        m.predict(np.ones((1, 3, 3)))

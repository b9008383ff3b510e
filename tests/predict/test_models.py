"""Trained predictors: numpy inference equals the torch module, they learn a planted sequence,
they survive a SEF round trip, and training runs under the guardrails."""

from __future__ import annotations

import numpy as np
import pytest

from keff.errors import FormatError, KeffError
from keff.estimator import rebuild
from keff.predict.models import KINDS, SequencePredictor
from keff.predict.windows import make_windows

torch = pytest.importorskip("torch", reason="trained predictors train with torch: pip install 'keff[st]'")


def rotation_windows(k=3, n_docs=60, length=10, d=8, seed=0):
    rng = np.random.default_rng(seed)
    R = np.linalg.qr(rng.standard_normal((d, d)))[0]
    V, doc, pos = [], [], []
    for i in range(n_docs):
        x = rng.standard_normal(d)
        for t in range(length):
            V.append(x / np.linalg.norm(x))
            doc.append(i)
            pos.append(t)
            x = x @ R + 0.05 * rng.standard_normal(d)
    V, doc, pos = np.array(V, np.float32), np.array(doc), np.array(pos)
    return make_windows(V, doc, pos, k, np.arange(n_docs))


@pytest.mark.parametrize("kind", KINDS)
def test_numpy_inference_equals_the_torch_module(kind):
    w = rotation_windows()
    m = SequencePredictor(kind=kind, hidden=16, epochs=1, seed=0).fit(w.contexts, w.targets, w.doc)
    module = m._module(torch)
    torch.manual_seed(3)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(0.3 * torch.randn_like(p))
    for name, arr in module.arrays().items():
        setattr(m, f"{name}_", arr)
    with torch.no_grad():
        want = module(torch.from_numpy(w.contexts[:20])).numpy()
    np.testing.assert_allclose(m.predict(w.contexts[:20]), want, atol=1e-5)


def test_gru_learns_a_planted_rotation_better_than_copying():
    w = rotation_windows()
    train, held = w.subset(np.flatnonzero(w.doc < 45)), w.subset(np.flatnonzero(w.doc >= 45))
    m = SequencePredictor(kind="gru", hidden=32, epochs=30, lr=3e-3, seed=0).fit(
        train.contexts, train.targets, train.doc, train.position
    )
    cos = lambda p: (p / np.linalg.norm(p, axis=1, keepdims=True) * held.targets).sum(1).mean()  # noqa: E731
    assert m.best_epoch_ > 0
    assert cos(m.predict(held.contexts)) > cos(held.contexts[:, -1]) + 0.2
    assert [r["epoch"] for r in m.guardrail_log_] == list(range(len(m.guardrail_log_)))


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_and_tampering(kind):
    w = rotation_windows()
    m = SequencePredictor(kind=kind, hidden=8, epochs=2).fit(w.contexts, w.targets, w.doc)
    again = rebuild({"SequencePredictor": SequencePredictor}, m.describe(), m.get_state(), what="predictor")
    np.testing.assert_array_equal(again.predict(w.contexts), m.predict(w.contexts))
    bad = {k: np.zeros((3,) * v.ndim, np.float32) for k, v in m.get_state().items()}
    with pytest.raises(FormatError):
        rebuild({"SequencePredictor": SequencePredictor}, m.describe(), bad, what="predictor")


@pytest.mark.parametrize("loss", ["infonce", "listwise"])
def test_transition_learns_a_planted_rotation(loss):
    w = rotation_windows(n_docs=120)
    train, held = w.subset(np.flatnonzero(w.doc < 90)), w.subset(np.flatnonzero(w.doc >= 90))
    m = SequencePredictor(kind="transition", hidden=8, loss=loss, epochs=40, lr=1e-2, seed=0).fit(
        train.contexts, train.targets, train.doc, train.position
    )
    cos = lambda p: (p / np.linalg.norm(p, axis=1, keepdims=True) * held.targets).sum(1).mean()  # noqa: E731
    assert m.best_epoch_ > 0
    assert cos(m.predict(held.contexts)) > cos(held.contexts[:, -1]) + 0.1


def test_context_units_are_never_negatives_or_validation_candidates():
    w = rotation_windows(k=2, n_docs=3, length=6)
    m = SequencePredictor(kind="transition", hidden=4, epochs=1, doc_negatives=50)
    m.context_length_ = 2
    rows = np.arange(len(w))
    ctx = m._is_context(w.doc, w.position, rows, rows)
    # window at position p has the targets at p-1 and p-2 (same document) as its context
    for i in rows:
        want = {j for j in rows if w.doc[j] == w.doc[i] and 1 <= w.position[i] - w.position[j] <= 2}
        assert set(np.flatnonzero(ctx[i])) == want
    order = rows[np.lexsort((w.position, w.doc))]
    first = np.r_[0, np.flatnonzero(np.diff(w.doc[order])) + 1]
    sizes = np.diff(np.r_[first, len(order)])
    start, count = np.repeat(first, sizes), np.repeat(sizes, sizes)
    draw, bad = m._doc_negatives(np.random.default_rng(0), w.position, rows, order, start, count)
    assert (w.doc[draw] == w.doc[rows][:, None]).all()
    lag = w.position[rows][:, None] - w.position[draw]
    np.testing.assert_array_equal(bad, (draw == rows[:, None]) | ((lag >= 1) & (lag <= 2)))
    assert bad.any() and (~bad).any()


def test_positions_must_be_one_int_per_window():
    w = rotation_windows()
    with pytest.raises(KeffError, match="positions"):
        SequencePredictor(epochs=1).fit(w.contexts, w.targets, w.doc, w.position[:-1])
    with pytest.raises(KeffError, match="share a document"):
        SequencePredictor(epochs=1).fit(w.contexts, w.targets, np.zeros(len(w), int), np.zeros(len(w), int))


def test_bad_parameters():
    w = rotation_windows()
    for params, message in (
        ({"kind": "lstm"}, "kind"),
        ({"loss": "mse"}, "loss"),
        ({"temperature": 1.0}, "temperature"),
        ({"loss": "listwise", "doc_negatives": 0}, "doc_negatives"),
        ({"doc_negatives": -1}, "doc_negatives"),
        ({"cosine_weight": -1.0}, "cosine_weight"),
    ):
        with pytest.raises(KeffError, match=message):
            SequencePredictor(**params).fit(w.contexts, w.targets, w.doc)

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
        train.contexts, train.targets, train.doc
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


def test_bad_parameters():
    w = rotation_windows()
    for params, message in (
        ({"kind": "lstm"}, "kind"),
        ({"loss": "mse"}, "loss"),
        ({"temperature": 1.0}, "temperature"),
    ):
        with pytest.raises(KeffError, match=message):
            SequencePredictor(**params).fit(w.contexts, w.targets, w.doc)

"""The generic training loop: history, early stopping, restoring the best weights, guardrails."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from keff.errors import KeffError
from keff.train.loop import TrainingDiverged, train_model
from keff.train.losses import sq_distance_loss

torch = pytest.importorskip("torch", reason="keff.train needs torch: pip install 'keff[st]'")


def _tensors(rng, n, d_in, d_out, W=None):
    X = rng.standard_normal((n, d_in)).astype(np.float32)
    Y = (X @ W if W is not None else rng.standard_normal((n, d_out))).astype(np.float32)
    return torch.from_numpy(X), torch.from_numpy(Y)


@pytest.fixture
def linear_task():
    """A noiseless linear regression split into train and validation tensors."""
    rng = np.random.default_rng(0)
    W = rng.standard_normal((4, 3))
    return _tensors(rng, 200, 4, 3, W), _tensors(rng, 50, 4, 3, W)


@pytest.fixture
def noise_task():
    """Pure noise targets: a wide MLP can only overfit, so validation loss rises."""
    rng = np.random.default_rng(1)
    return _tensors(rng, 40, 8, 4), _tensors(rng, 40, 8, 4)


def _mlp(seed=0, d_in=8, d_out=4, hidden=256):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(d_in, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, d_out))


def _val_loss(model, val):
    with torch.no_grad():
        return float(sq_distance_loss(model(val[0]), val[1]))


def test_learns_and_records_history(linear_task):
    train, val = linear_task
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    res = train_model(model, sq_distance_loss, *train, val, epochs=40, lr=5e-2, batch_size=32, patience=None)
    assert [r.epoch for r in res.history] == list(range(41))
    assert res.history[-1].val_loss < 0.01 * res.history[0].val_loss
    assert res.best_epoch == int(np.argmin([r.val_loss for r in res.history]))
    assert not res.stopped_early
    assert all(r.output_norm > 0 for r in res.history)
    assert res.best_val_loss == pytest.approx(_val_loss(model, val), rel=1e-5)


def test_early_stopping_restores_best_weights(noise_task):
    train, val = noise_task
    model = _mlp()
    res = train_model(model, sq_distance_loss, *train, val, epochs=300, lr=1e-2, batch_size=8, patience=5)
    assert res.stopped_early
    assert len(res.history) - 1 == res.best_epoch + 5 < 300
    vals = [r.val_loss for r in res.history]
    assert res.best_epoch == int(np.argmin(vals))
    assert vals[-1] > vals[res.best_epoch]
    # The model now holds the best epoch's weights, not the last ones.
    assert _val_loss(model, val) == pytest.approx(vals[res.best_epoch], rel=1e-5)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, res.state_dict[name])


def test_initial_model_kept_when_nothing_improves(noise_task):
    train, val = noise_task
    model = _mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # lr=1 on noise: every epoch is far worse than the start, so epoch 0's weights come back.
    res = train_model(model, sq_distance_loss, *train, val, epochs=300, lr=1.0, batch_size=8, patience=3)
    assert res.best_epoch == 0 and len(res.history) == 4 and res.stopped_early
    assert min(r.val_loss for r in res.history[1:]) > 2 * res.history[0].val_loss
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_zero_epochs_only_evaluates(linear_task):
    train, val = linear_task
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    res = train_model(model, sq_distance_loss, *train, val, epochs=0)
    assert len(res.history) == 1 and res.best_epoch == 0
    assert res.history[0].val_loss == pytest.approx(_val_loss(model, val), rel=1e-6)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_without_validation_runs_all_epochs_and_keeps_the_last(linear_task):
    train, _ = linear_task
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    res = train_model(model, sq_distance_loss, *train, None, epochs=7, lr=1e-2)
    assert res.best_epoch == 7 and len(res.history) == 8 and not res.stopped_early
    assert all(r.val_loss is None for r in res.history)
    assert res.best_val_loss is None


def test_seeded_runs_repeat_and_leave_global_rng_alone(noise_task):
    train, val = noise_task
    histories = []
    for seed in (3, 3, 4):
        model = _mlp()
        state = torch.get_rng_state()
        res = train_model(model, sq_distance_loss, *train, val, epochs=5, lr=1e-3, batch_size=8, seed=seed)
        assert torch.equal(torch.get_rng_state(), state)
        histories.append([r.train_loss for r in res.history])
    assert histories[0] == histories[1]
    assert histories[0] != histories[2]  # another seed shuffles differently


def test_non_finite_loss_aborts_with_epoch(linear_task):
    train, val = linear_task
    calls = {"n": 0}

    def flaky(pred, target):
        calls["n"] += 1
        loss = sq_distance_loss(pred, target)
        return loss * float("nan") if calls["n"] > 6 else loss  # 5 evaluation calls, then one good step

    with pytest.raises(TrainingDiverged, match="epoch 1") as info:
        train_model(torch.nn.Linear(4, 3), flaky, *train, val, epochs=3, batch_size=64)
    assert isinstance(info.value, KeffError)
    with pytest.raises(TrainingDiverged, match="initial"):
        train_model(torch.nn.Linear(4, 3), lambda p, t: p.sum() * float("inf"), *train, val, epochs=3)


def test_logs_output_norm(linear_task, caplog):
    train, val = linear_task
    with caplog.at_level(logging.INFO, logger="keff.train.loop"):
        train_model(torch.nn.Linear(4, 3), sq_distance_loss, *train, val, epochs=4, log_every=2)
    messages = [r.getMessage() for r in caplog.records if "mean output norm" in r.getMessage()]
    assert [m.split(":")[0] for m in messages] == ["epoch 2", "epoch 4"]


@pytest.mark.parametrize(
    "kwargs, match",
    [({"epochs": -1}, "epochs"), ({"batch_size": 0}, "batch_size"), ({"patience": 0}, "patience")],
)
def test_rejects_bad_arguments(linear_task, kwargs, match):
    train, val = linear_task
    with pytest.raises(KeffError, match=match):
        train_model(torch.nn.Linear(4, 3), sq_distance_loss, *train, val, **kwargs)


def test_rejects_mismatched_rows(linear_task):
    (X, Y), val = linear_task
    with pytest.raises(KeffError, match="matching"):
        train_model(torch.nn.Linear(4, 3), sq_distance_loss, X, Y[:-1], val)
    with pytest.raises(KeffError, match="validation"):
        train_model(torch.nn.Linear(4, 3), sq_distance_loss, X, Y, (val[0], val[1][:0]))

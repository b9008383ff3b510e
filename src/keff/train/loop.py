"""A small, generic torch training loop: seeded minibatch AdamW with early stopping.

:func:`train_model` trains any ``model(X) -> pred`` against ``loss_fn(pred, Y)``, evaluates a
validation set after every epoch, keeps the weights of the best epoch, and restores them at the
end. Epoch 0 is the untrained model, so a model that never improves on its initialisation comes
back unchanged. Guardrails: a non-finite loss aborts with :class:`TrainingDiverged`, and the mean
output norm is recorded every epoch and logged every ``log_every`` epochs.

torch is imported inside :func:`train_model`, never at module import time.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Any

from keff.errors import KeffError
from keff.progress import progress_bar
from keff.train.losses import LossFn

logger = logging.getLogger(__name__)


class TrainingDiverged(KeffError, RuntimeError):
    """The training or validation loss became NaN or infinite."""


@dataclass(frozen=True)
class EpochRecord:
    """Losses after one epoch (epoch 0: the untrained model).

    ``train_loss`` is the mean minibatch loss seen during the epoch (for epoch 0, the loss of the
    untrained model on the whole training set); ``val_loss`` is the loss of the model at the end
    of the epoch on the whole validation set (None without one); ``output_norm`` is the mean L2
    norm of the model's output rows on the validation set (else the training set).
    """

    epoch: int
    train_loss: float
    val_loss: float | None
    output_norm: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainResult:
    """What :func:`train_model` returns.

    Attributes
    ----------
    state_dict : dict of str to torch.Tensor
        The best epoch's weights (already loaded into the model).
    history : list of EpochRecord
        One record per epoch run, starting with epoch 0.
    best_epoch : int
        Epoch whose weights were kept (lowest validation loss; the last epoch without a
        validation set).
    stopped_early : bool
        Whether patience ran out before ``epochs``.
    """

    state_dict: dict[str, Any]
    history: list[EpochRecord]
    best_epoch: int
    stopped_early: bool

    @property
    def best_val_loss(self) -> float | None:
        return self.history[self.best_epoch].val_loss


def _check_finite(value: float, what: str, epoch: int, lr: float) -> None:
    if not math.isfinite(value):
        raise TrainingDiverged(
            f"{what} became {value} at epoch {epoch}: training diverged; "
            f"lower the learning rate (now {lr:g}) or check the inputs"
        )


def _evaluate(model: Any, loss_fn: LossFn, X: Any, Y: Any, batch_size: int) -> tuple[float, float]:
    """Mean loss and mean output-row norm of ``model`` on all of (X, Y), in eval mode."""
    import torch

    was_training = model.training
    model.eval()
    total_loss, total_norm, n = 0.0, 0.0, X.shape[0]
    with torch.no_grad():
        for lo in range(0, n, batch_size):
            pred = model(X[lo : lo + batch_size])
            rows = pred.shape[0]
            total_loss += float(loss_fn(pred, Y[lo : lo + batch_size])) * rows
            total_norm += float(torch.linalg.vector_norm(pred, dim=1).sum())
    model.train(was_training)
    return total_loss / n, total_norm / n


def _run_epoch(model: Any, opt: Any, loss_fn: LossFn, X: Any, Y: Any, batch_size: int, epoch: int, lr: float) -> float:
    """One shuffled pass of optimiser steps; returns the mean minibatch loss."""
    import torch

    n = X.shape[0]
    order = torch.randperm(n)
    running = 0.0
    for lo in range(0, n, batch_size):
        idx = order[lo : lo + batch_size]
        loss = loss_fn(model(X[idx]), Y[idx])
        value = float(loss.detach())
        _check_finite(value, "the training loss", epoch, lr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        running += value * idx.shape[0]
    return running / n


def _snapshot(model: Any) -> dict[str, Any]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _validate_args(
    X_train: Any, Y_train: Any, val: tuple[Any, Any] | None, epochs: int, batch_size: int, patience: int | None
) -> None:
    if X_train.shape[0] == 0 or X_train.shape[0] != Y_train.shape[0]:
        raise KeffError(f"training tensors need matching, non-zero rows; got {X_train.shape[0]} and {Y_train.shape[0]}")
    if val is not None and (val[0].shape[0] == 0 or val[0].shape[0] != val[1].shape[0]):
        raise KeffError(f"validation tensors need matching, non-zero rows; got {val[0].shape[0]} and {val[1].shape[0]}")
    if epochs < 0:
        raise KeffError(f"epochs must be >= 0, got {epochs}")
    if batch_size < 1:
        raise KeffError(f"batch_size must be >= 1, got {batch_size}")
    if patience is not None and patience < 1:
        raise KeffError(f"patience must be >= 1 (or None to disable early stopping), got {patience}")


def train_model(
    model: Any,
    loss_fn: LossFn,
    X_train: Any,
    Y_train: Any,
    val: tuple[Any, Any] | None = None,
    *,
    epochs: int = 200,
    batch_size: int = 256,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    patience: int | None = 10,
    min_delta: float = 0.0,
    seed: int = 0,
    log_every: int = 10,
    progress: bool | None = None,
) -> TrainResult:
    """Train ``model`` with AdamW on shuffled minibatches; keep the best validation epoch.

    Parameters
    ----------
    model : torch.nn.Module
        Maps a float tensor (b, d_in) to predictions (b, d_out); its trainable parameters are
        optimised in place and end at the best epoch's values.
    loss_fn : callable
        ``loss_fn(pred, target) -> scalar tensor``, a mean over rows (see :mod:`keff.train.losses`).
    X_train, Y_train : torch.Tensor, shapes (n, d_in) and (n, d_out)
        Training inputs and targets.
    val : tuple of (torch.Tensor, torch.Tensor), optional
        Validation inputs (m, d_in) and targets (m, d_out) for early stopping. Without it every
        epoch runs and the last epoch's weights are kept.
    epochs : int, default 200
        Maximum number of passes over the training set (0: evaluate only).
    batch_size : int, default 256
    lr, weight_decay : float
        AdamW settings.
    patience : int or None, default 10
        Stop after this many epochs without a validation improvement (None: never stop early).
    min_delta : float, default 0.0
        A validation loss counts as an improvement when below ``best - min_delta``.
    seed : int, default 0
        Seeds torch's RNG (shuffling, dropout) inside a forked RNG state, so the caller's global
        RNG is left untouched.
    log_every : int, default 10
        Log losses and the mean output norm every this many epochs (logging, INFO).
    progress : bool, optional
        Show a progress bar (default: when stderr is a terminal).

    Returns
    -------
    TrainResult

    Raises
    ------
    TrainingDiverged
        The training or validation loss became NaN or infinite.
    """
    import torch

    _validate_args(X_train, Y_train, val, epochs, batch_size, patience)
    monitor = val if val is not None else (X_train, Y_train)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay)
        model.train()
        train0, norm0 = _evaluate(model, loss_fn, X_train, Y_train, batch_size)
        _check_finite(train0, "the initial training loss", 0, lr)
        val0 = None
        if val is not None:
            val0, norm0 = _evaluate(model, loss_fn, *val, batch_size)
            _check_finite(val0, "the initial validation loss", 0, lr)
        history = [EpochRecord(0, train0, val0, norm0)]
        best_state, best_epoch, best_val, stale = _snapshot(model), 0, val0, 0
        stopped_early = False
        with progress_bar("training", epochs, enabled=progress) as bar:
            for epoch in range(1, epochs + 1):
                train_loss = _run_epoch(model, opt, loss_fn, X_train, Y_train, batch_size, epoch, lr)
                val_loss, norm = _evaluate(model, loss_fn, *monitor, batch_size)
                _check_finite(val_loss, "the validation loss" if val is not None else "the training loss", epoch, lr)
                record = EpochRecord(epoch, train_loss, val_loss if val is not None else None, norm)
                history.append(record)
                bar.advance(1)
                if epoch % max(1, log_every) == 0:
                    shown_val = "-" if record.val_loss is None else f"{record.val_loss:.5f}"
                    logger.info(
                        "epoch %d: train loss %.5f, val loss %s, mean output norm %.4f",
                        epoch,
                        record.train_loss,
                        shown_val,
                        norm,
                    )
                if val is None:
                    continue
                if val_loss < best_val - min_delta:
                    best_state, best_epoch, best_val, stale = _snapshot(model), epoch, val_loss, 0
                else:
                    stale += 1
                    if patience is not None and stale >= patience:
                        stopped_early = epoch < epochs
                        break
        if val is None:
            best_state, best_epoch = _snapshot(model), len(history) - 1
    model.load_state_dict(best_state)
    model.eval()
    return TrainResult(state_dict=best_state, history=history, best_epoch=best_epoch, stopped_early=stopped_early)

"""A query-side linear map trained for retrieval rather than for closeness.

Procrustes and ridge maps move each question toward its own answer in the least-squares sense;
on held-out questions that can hurt ranking (every query is pulled toward the dense region of
answers). :class:`ContrastiveMap` starts as the identity and is trained with an InfoNCE loss:
the mapped, normalised question must score its own answer above every other training answer,
including the other answers of its group (hard negatives that teach the fine distinctions which
transfer to unseen groups). It stops early on a held-out, group-disjoint part of the training
pairs by group-level MRR (the metric the benchmark reports), so at worst it stays the identity. Trained with
torch; applied with numpy as ``X @ W_ + b_``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keff.data.splits import grouped_split
from keff.errors import KeffError, require
from keff.estimator import COUNT
from keff.maps.base import Map, check_pair, register_map


def _val_split(n: int, groups: np.ndarray | None, val_frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    split = grouped_split(n if groups is None else groups, val_frac=val_frac, test_frac=0.0, seed=seed)
    return split.train, split.val


#: The starts a ContrastiveMap can train from.
INITS = ("identity", "procrustes")


@register_map("contrastive")
class ContrastiveMap(Map):
    """Identity-initialised affine map ``X @ W_ + b_`` trained with InfoNCE against the answers.

    Parameters
    ----------
    temperature : float
        Softmax temperature on cosine similarities.
    lr, weight_decay : float
        AdamW settings.
    epochs, patience : int
        At most ``epochs`` passes; stop after ``patience`` epochs without a higher validation MRR
        (of each held-out question's own answer among all answers) and keep the best epoch
        (epoch 0 is the identity). The retrieval metric, not the loss, decides: the loss can fall
        while ranking gets worse.
    batch_size : int
        Questions per step; every step scores them against all training answers.
    val_frac : float
        Share of the pairs (by group when groups are given) held out for early stopping.
    seed : int
        Seeds the split and torch.
    init : {"identity", "procrustes"}
        The start (epoch 0): the identity (questions and answers in one space), or a centred,
        scaled orthogonal Procrustes map fitted on the training pairs (two models' spaces, e.g.
        anchors embedded by an old and a new encoder; dimensions may then differ).
    """

    _state = {"W_": ("source_dim_", "target_dim_"), "b_": ("target_dim_",)}
    _scalars = {"best_epoch_": COUNT}

    def __init__(
        self,
        temperature: float = 0.05,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        epochs: int = 50,
        patience: int = 3,
        batch_size: int = 128,
        val_frac: float = 0.15,
        seed: int = 0,
        init: str = "identity",
    ) -> None:
        self.temperature = temperature
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.patience = patience
        self.batch_size = batch_size
        self.val_frac = val_frac
        self.seed = seed
        self.init = init

    fit_takes_groups = True

    def fit(self, X: Any, Y: Any, groups: Any = None) -> ContrastiveMap:
        """Fit on questions ``X`` (n, d) and their answers ``Y`` (n, d); ``groups`` (n,) marks
        pairs whose answers all count as right for each other's questions (the validation split
        is drawn by group and scored at group level)."""
        X, Y = check_pair(X, Y, min_rows=4)
        if self.init not in INITS:
            raise KeffError(f"init must be one of {', '.join(INITS)}; got {self.init!r}")
        if self.init == "identity" and X.shape[1] != Y.shape[1]:
            raise KeffError(
                f"ContrastiveMap needs questions and answers of one dimension; got {X.shape[1]} and {Y.shape[1]}"
            )
        g = None if groups is None else np.asarray(groups)
        if g is not None and g.shape != (len(X),):
            raise KeffError(f"groups must have one entry per pair ({len(X)}); got shape {g.shape}")
        self._train(X, Y, g)
        self.source_dim_, self.target_dim_ = int(X.shape[1]), int(Y.shape[1])
        return self

    def _train(self, X: np.ndarray, Y: np.ndarray, groups: np.ndarray | None) -> None:
        torch = require("torch", "st")
        n, d = X.shape
        fit_rows, val_rows = _val_split(n, groups, self.val_frac, self.seed)
        group_ids = torch.from_numpy(np.arange(n) if groups is None else np.unique(groups, return_inverse=True)[1])
        answers = torch.nn.functional.normalize(torch.from_numpy(Y), dim=1)
        Xt = torch.from_numpy(X)

        # Training scores fit questions against fit answers only: a held-out answer must never be
        # trained as a negative, or validation would measure that push-away instead of transfer.
        fit_answers = answers[fit_rows]
        position = np.full(n, -1)
        position[fit_rows] = np.arange(len(fit_rows))

        def mapped(rows, W, b):
            return torch.nn.functional.normalize(Xt[rows] @ W + b, dim=1)

        def val_mrr(W, b) -> float:
            """Mean reciprocal rank, among all answers, of the first answer of each held-out
            question's group."""
            with torch.no_grad():
                lg = mapped(val_rows, W, b) @ answers.T
                right = group_ids[None, :] == group_ids[torch.as_tensor(val_rows)][:, None]
                best_right = lg.masked_fill(~right, float("-inf")).max(dim=1).values
                rank = (lg.masked_fill(right, float("-inf")) > best_right[:, None]).sum(dim=1) + 1
                return float((1.0 / rank.double()).mean())

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            W0, b0 = self._start(X[fit_rows], Y[fit_rows])
            W = torch.nn.Parameter(torch.from_numpy(W0))
            b = torch.nn.Parameter(torch.from_numpy(b0))
            opt = torch.optim.AdamW([W, b], lr=self.lr, weight_decay=self.weight_decay)
            best = (val_mrr(W, b), 0, W.detach().clone(), b.detach().clone())
            history, stale = [best[0]], 0
            rng = np.random.default_rng(self.seed)
            for epoch in range(1, self.epochs + 1):
                order = fit_rows[rng.permutation(len(fit_rows))]
                for start in range(0, len(order), self.batch_size):
                    rows = order[start : start + self.batch_size]
                    lg = mapped(rows, W, b) @ fit_answers.T / self.temperature
                    loss = torch.nn.functional.cross_entropy(lg, torch.as_tensor(position[rows]))
                    if not torch.isfinite(loss):
                        raise KeffError(f"ContrastiveMap loss became {float(loss)} at epoch {epoch}: lower lr")
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                score = val_mrr(W, b)
                history.append(score)
                if score > best[0]:
                    best, stale = (score, epoch, W.detach().clone(), b.detach().clone()), 0
                else:
                    stale += 1
                    if stale >= self.patience:
                        break
        self.W_ = best[2].numpy().astype(np.float32)
        self.b_ = best[3].numpy().astype(np.float32)
        self.best_epoch_ = int(best[1])
        self.history_ = history

    def _start(self, X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Epoch 0's ``(W, b)``: the identity, or Procrustes fitted on the training pairs only."""
        if self.init == "identity":
            return np.eye(X.shape[1], dtype=np.float32), np.zeros(X.shape[1], np.float32)
        from keff.maps.procrustes import Procrustes

        p = Procrustes(center=True, scale=True).fit(X, Y)
        return (p.scale_ * p.W_).astype(np.float32), p.b_.astype(np.float32)

    def _transform(self, X: np.ndarray) -> np.ndarray:
        return X @ self.W_ + self.b_

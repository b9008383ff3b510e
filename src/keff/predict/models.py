"""Trained next-vector predictors: torch for training, numpy at inference, SEF artifacts.

:class:`SequencePredictor` (registered as ``"trained"``) trains one of the modules of
:mod:`keff.predict.modules` (``transition``, ``gru``, ``attention``, ``mixture``) on (context,
next unit) windows. The residual modules start at the recency mean (epoch 0 is that baseline).
Losses, all on unit-normalised outputs in the target space (no separate projection space):

- ``loss="infonce"``: each window's next unit against the other windows' next units of the
  batch and ``doc_negatives`` other units of its own document; with ``previous_negative`` also
  its previous unit;
- ``loss="listwise"``: softmax ranking over [next, previous, ``doc_negatives`` others of the
  same document] only;
- ``loss="cosine"``: cosine regression to the next unit;

plus ``cosine_weight`` times the cosine regression term with the ranking losses (it keeps the
prediction near the target, not only ranked above the others). A candidate that is one of the
window's own context units is never a negative: the evaluation removes context units from the
pool, and training and validation do the same (windows know their document and position).
Early stopping on the validation MRR (whole documents held out, their windows' next units as the
pool, each window's context units removed), under the training guardrails (norm growth,
collapse, anti-correlation, loss/metric divergence) every epoch.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from keff.arrays import l2_normalize
from keff.data.splits import grouped_split
from keff.errors import KeffError, require
from keff.estimator import COUNT, NON_NEGATIVE, ArraySpec, is_finite_number
from keff.predict.baselines import Predictor, check_contexts, register_predictor
from keff.sef import shown
from keff.train import guardrails as G

#: The similarity a masked candidate gets in a ranking loss (finite: -inf makes the temperature's
#: gradient NaN; far below any cosine / temperature).
_MASKED = -1e4

KINDS = ("transition", "gru", "attention", "mixture")
LOSSES = ("infonce", "listwise", "cosine")

_SPECS = {
    "transition": {"mix": ("k",), "A": ("d", "hidden"), "B": ("hidden", "d")},
    "gru": {"mix": ("k",), "W_in": ("d", "hidden"), "b_in": ("hidden",), "W_ih": ("hidden", "h3"),
            "W_hh": ("hidden", "h3"), "b_ih": ("h3",), "b_hh": ("h3",), "W_out": ("hidden", "d"), "b_out": ("d",)},
    "mixture": {"W1": ("d", "hidden"), "b1": ("hidden",), "w2": ("hidden",), "b2": (1,), "pos": ("k",)},
    "attention": {"mix": ("k",), "Wq": ("d", "hidden"), "bq": ("hidden",), "Wk": ("d", "hidden"), "bk": ("hidden",),
                  "Wv": ("d", "d"), "bv": ("d",)},
}  # fmt: skip


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@register_predictor("trained")
class SequencePredictor(Predictor):
    """A small trained model over the k context units (see the module docstring).

    Parameters
    ----------
    kind : {"transition", "gru", "attention", "mixture"}
    hidden : int
        Rank of the transition step; width of the GRU state / scorer / attention keys.
    loss : {"infonce", "listwise", "cosine"}
    doc_negatives : int
        Units of the window's own document (not its context) drawn as negatives per window.
    previous_negative : bool
        Also rank the previous unit below the next one (always with ``listwise``).
    cosine_weight : float
        Weight of the cosine regression term added to a ranking loss.
    temperature : float
        Ranking-loss temperature (learnt within [0.02, 0.2]).
    lr, epochs, patience, batch_size, val_frac, seed
        Training settings; ``val_frac`` of the documents (by ``groups`` in ``fit``) validate.
    """

    _scalars = {**Predictor._scalars, "best_epoch_": COUNT, "train_seconds_": NON_NEGATIVE}

    def __init__(
        self,
        kind: str = "transition",
        hidden: int = 32,
        loss: str = "infonce",
        doc_negatives: int = 4,
        previous_negative: bool = False,
        cosine_weight: float = 1.0,
        temperature: float = 0.05,
        lr: float = 1e-3,
        epochs: int = 40,
        patience: int = 5,
        batch_size: int = 1024,
        val_frac: float = 0.15,
        seed: int = 0,
    ) -> None:
        self.kind = kind
        self.hidden = hidden
        self.loss = loss
        self.doc_negatives = doc_negatives
        self.previous_negative = previous_negative
        self.cosine_weight = cosine_weight
        self.temperature = temperature
        self.lr = lr
        self.epochs = epochs
        self.patience = patience
        self.batch_size = batch_size
        self.val_frac = val_frac
        self.seed = seed

    def _check_params(self) -> None:
        if self.kind not in KINDS:
            raise KeffError(f"kind must be one of {', '.join(KINDS)}; got {shown(self.kind)}")
        if self.loss not in LOSSES:
            raise KeffError(f"loss must be one of {', '.join(LOSSES)}; got {shown(self.loss)}")
        for name in ("hidden", "epochs", "patience", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise KeffError(f"{name} must be a positive int, got {shown(v)}")
        if isinstance(self.doc_negatives, bool) or not isinstance(self.doc_negatives, int) or self.doc_negatives < 0:
            raise KeffError(f"doc_negatives must be an int >= 0, got {shown(self.doc_negatives)}")
        if self.loss == "listwise" and self.doc_negatives < 1:
            raise KeffError("the listwise loss ranks the next unit among others of its document: doc_negatives >= 1")
        if not isinstance(self.previous_negative, bool):
            raise KeffError(f"previous_negative must be true or false, got {shown(self.previous_negative)}")
        if not (is_finite_number(self.cosine_weight) and self.cosine_weight >= 0):
            raise KeffError(f"cosine_weight must be >= 0, got {shown(self.cosine_weight)}")
        if not (is_finite_number(self.val_frac) and 0 < self.val_frac < 1):
            raise KeffError(f"val_frac must be in (0, 1), got {shown(self.val_frac)}")
        if not (is_finite_number(self.temperature) and 0.02 <= self.temperature <= 0.2):
            raise KeffError(f"temperature must be in [0.02, 0.2], got {shown(self.temperature)}")

    # -- state ------------------------------------------------------------------------------
    def _state_specs(self) -> dict[str, ArraySpec]:
        return {f"{name}_": ArraySpec(shape) for name, shape in _SPECS[self.kind].items()}

    def _shape_symbols(self, specs: Any) -> dict[str, int]:
        return {**super()._shape_symbols(specs), "d": self.n_features_in_, "k": self.context_length_,
                "h3": 3 * self.hidden}  # fmt: skip

    def _arrays(self) -> dict[str, np.ndarray]:
        return {name[:-1]: getattr(self, name) for name in self._state_specs()}

    # -- training ---------------------------------------------------------------------------
    def fit(
        self, contexts: Any, targets: Any, groups: Any = None, positions: Any = None, *, progress: bool | None = None
    ) -> Predictor:
        """Train on windows.

        Parameters
        ----------
        contexts : array (n, k, d)
        targets : array (n, d)
        groups : array (n,), optional
            Each window's document: validation holds out whole documents and ``doc_negatives``
            come from it (default: every window its own document).
        positions : array of int (n,), optional
            Each target's position in its document: a window's context units (the targets of
            the windows at the k positions before it) are then never its negatives nor its
            validation candidates (default: unknown, nothing removed).
        """
        C, T = check_contexts(contexts, targets)
        self._check_params()
        g = np.arange(len(C)) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1]
        if g.shape != (len(C),):
            raise KeffError(f"groups must name one document per window ({len(C)}); got shape {g.shape}")
        if positions is None:
            pos = np.arange(len(C)) * (C.shape[1] + 1)  # unknown: spaced so no window is another's context
        else:
            pos = np.asarray(positions)
            if pos.shape != (len(C),) or not np.issubdtype(pos.dtype, np.integer):
                raise KeffError(f"positions must be one int per window ({len(C)}); got shape {pos.shape}")
            if len(np.unique(np.stack([g, pos]), axis=1).T) != len(C):
                raise KeffError("two windows share a document and a position")
        split = grouped_split(g, val_frac=self.val_frac, test_frac=0.0, seed=self.seed)
        if len(split.val) < 2 or len(split.train) < 2:
            raise KeffError(f"cannot hold out {self.val_frac:.0%} of {len(C)} windows by document for validation")
        self.n_features_in_, self.context_length_ = int(C.shape[2]), int(C.shape[1])
        t0 = time.perf_counter()
        arrays, self.best_epoch_, self.history_, self.guardrail_log_ = self._train(
            C, T, g, pos, np.sort(split.train), np.sort(split.val), progress
        )
        for name, arr in arrays.items():
            setattr(self, f"{name}_", arr)
        self.train_seconds_ = time.perf_counter() - t0
        return self

    def _module(self, torch: Any) -> Any:
        from keff.predict import modules

        d, h, k = self.n_features_in_, self.hidden, self.context_length_
        return {"transition": modules.TransitionNet, "gru": modules.GRUNet, "attention": modules.AttentionNet,
                "mixture": modules.MixtureNet}[self.kind](d, h, k)  # fmt: skip

    def _within_context(self, lag: np.ndarray) -> np.ndarray:
        """Whether a unit ``lag`` positions before a window's target (same document) is one of its context units."""
        return (lag >= 1) & (lag <= self.context_length_)

    def _is_context(self, g, pos, rows, cands):
        """(len(rows), len(cands)) bool: candidate window's target is a context unit of the row's window."""
        same = g[rows][:, None] == g[cands][None, :]
        return same & self._within_context(pos[rows][:, None] - pos[cands][None, :])

    def _doc_negatives(self, rng, pos, rows, fit_rows, start, count):
        """``doc_negatives`` training windows of each row's document (``fit_rows`` sorted by
        document; ``start``/``count``: where each row's document lies in it), with a mask of the
        draws that are the row itself or one of its context units."""
        offset = (rng.random((len(rows), self.doc_negatives)) * count[rows][:, None]).astype(int)
        draw = fit_rows[start[rows][:, None] + offset]
        return draw, (draw == rows[:, None]) | self._within_context(pos[rows][:, None] - pos[draw])

    def _train(self, C, T, g, pos, fit_rows, val_rows, progress):
        torch = require("torch", "st")
        F = torch.nn.functional
        from keff.progress import progress_bar

        Ct, Tt = torch.from_numpy(C), F.normalize(torch.from_numpy(T), dim=1)
        val_c, val_t = Ct[torch.from_numpy(val_rows)], Tt[torch.from_numpy(val_rows)]
        val_mask = torch.from_numpy(self._is_context(g, pos, val_rows, val_rows))
        # training windows grouped by document, for the same-document negatives
        fit_rows = fit_rows[np.lexsort((pos[fit_rows], g[fit_rows]))]
        doc_of = g[fit_rows]
        first = np.r_[0, np.flatnonzero(np.diff(doc_of)) + 1]
        sizes = np.diff(np.r_[first, len(fit_rows)])
        start, count = np.zeros(len(C), int), np.ones(len(C), int)
        start[fit_rows] = np.repeat(first, sizes)
        count[fit_rows] = np.repeat(sizes, sizes)
        monitor = G.GuardrailMonitor()

        def val_state(model):
            with torch.no_grad():
                out = model(val_c)
                s = (F.normalize(out, dim=1) @ val_t.T).masked_fill(val_mask, -math.inf)
                rank = (s > s.diagonal()[:, None]).sum(dim=1) + 1
                return float((1.0 / rank.double()).mean()), out.numpy()

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model = self._module(torch)
            log_tau = torch.nn.Parameter(torch.tensor(math.log(self.temperature)))
            opt = torch.optim.AdamW([*model.parameters(), log_tau], lr=self.lr, weight_decay=0.0)
            mrr0, out0 = val_state(model)
            cos0 = float((l2_normalize(out0) * val_t.numpy()).sum(1).mean())
            base = {"norms": np.linalg.norm(out0, axis=1), "cos": cos0}
            history, losses, metrics = [{"epoch": 0, "val_mrr": mrr0}], [math.nan], [mrr0]
            best = (mrr0, 0, model.arrays())
            monitor.record(0, self._checks(out0, val_t.numpy(), base, losses, metrics))
            rng, stale = np.random.default_rng(self.seed), 0
            with progress_bar("training predictor", self.epochs, enabled=progress) as bar:
                for epoch in range(1, self.epochs + 1):
                    order, total = fit_rows[rng.permutation(len(fit_rows))], 0.0
                    for lo in range(0, len(order), self.batch_size):
                        rows = order[lo : lo + self.batch_size]
                        loss = self._loss(torch, model, log_tau, Ct, Tt, g, pos, rows, (rng, fit_rows, start, count))
                        if not torch.isfinite(loss):
                            raise G.TrainingDiverged(f"the predictor's loss became {float(loss)} at epoch {epoch}")
                        opt.zero_grad(set_to_none=True)
                        loss.backward()
                        opt.step()
                        total += float(loss.detach()) * len(rows)
                    mrr, out = val_state(model)
                    losses.append(total / len(fit_rows))
                    metrics.append(mrr)
                    history.append({"epoch": epoch, "train_loss": losses[-1], "val_mrr": mrr})
                    bar.advance(1)
                    try:
                        monitor.record(epoch, self._checks(out, val_t.numpy(), base, losses, metrics))
                    except G.GuardrailTripped as exc:
                        if any(c.name != "divergence" for c in exc.checks):
                            raise
                        break
                    if mrr > best[0]:
                        best, stale = (mrr, epoch, model.arrays()), 0
                    else:
                        stale += 1
                        if stale >= self.patience:
                            break
        return best[2], best[1], history, monitor.log

    def _loss(self, torch, model, log_tau, Ct, Tt, g, pos, rows, sampling):
        F = torch.nn.functional
        idx = torch.from_numpy(rows)
        pred = F.normalize(model(Ct[idx]), dim=1)
        t = Tt[idx]
        cos = (pred * t).sum(dim=1)
        if self.loss == "cosine":
            return 1 - cos.mean()
        tau = log_tau.clamp(math.log(0.02), math.log(0.2)).exp()
        parts = [cos[:, None]]
        if self.loss == "infonce":
            s = pred @ t.T
            own = torch.eye(len(rows), dtype=torch.bool)
            parts.append(s.masked_fill(own | torch.from_numpy(self._is_context(g, pos, rows, rows)), _MASKED))
        if self.previous_negative or self.loss == "listwise":
            prev = F.normalize(Ct[idx, -1], dim=1)
            parts.append((pred * prev).sum(dim=1, keepdim=True))
        if self.doc_negatives:
            draw, bad = self._doc_negatives(sampling[0], pos, rows, *sampling[1:])
            negs = torch.einsum("bd,bnd->bn", pred, Tt[torch.from_numpy(draw)])
            parts.append(negs.masked_fill(torch.from_numpy(bad), _MASKED))
        logits = torch.cat(parts, dim=1) / tau
        rank = F.cross_entropy(logits, torch.zeros(len(rows), dtype=torch.long))
        return rank + self.cosine_weight * (1 - cos.mean())

    def _checks(self, out, targets, base, losses, metrics) -> list[G.Check]:
        adapted = l2_normalize(out)
        return [
            G.norm_growth(np.linalg.norm(out, axis=1), base["norms"], scale_invariant=True),
            G.effective_rank(adapted[:2000]),
            G.mean_pairwise_cosine(adapted[:2000]),
            G.anticorrelation(adapted, targets, space="target", start=base["cos"]),
            G.divergence(losses, metrics, patience=self.patience),
        ]

    # -- inference --------------------------------------------------------------------------
    def _predict(self, C: np.ndarray) -> np.ndarray:
        if C.shape[1] != self.context_length_:
            raise KeffError(f"this predictor was fitted on contexts of {self.context_length_} units; got {C.shape[1]}")
        a = self._arrays()
        if self.kind == "mixture":
            s = np.tanh(C @ a["W1"] + a["b1"]) @ a["w2"] + a["b2"][0] + a["pos"]
            return np.einsum("nk,nkd->nd", _softmax(s, 1), C)
        base = np.einsum("nkd,k->nd", C, _softmax(a["mix"], 0))
        if self.kind == "transition":
            return base + (base @ a["A"]) @ a["B"]
        if self.kind == "gru":
            x = C @ a["W_in"] + a["b_in"]
            h = np.zeros((len(C), self.hidden), np.float32)
            H = self.hidden
            for t in range(C.shape[1]):
                gi, gh = x[:, t] @ a["W_ih"] + a["b_ih"], h @ a["W_hh"] + a["b_hh"]
                r = _sigmoid(gi[:, :H] + gh[:, :H])
                z = _sigmoid(gi[:, H : 2 * H] + gh[:, H : 2 * H])
                n = np.tanh(gi[:, 2 * H :] + r * gh[:, 2 * H :])
                h = (1 - z) * n + z * h
            return base + h @ a["W_out"] + a["b_out"]
        q = C[:, -1] @ a["Wq"] + a["bq"]
        keys = C @ a["Wk"] + a["bk"]
        att = _softmax(np.einsum("nh,nkh->nk", q, keys) / np.sqrt(q.shape[1]), 1)
        return base + np.einsum("nk,nkd->nd", att, C @ a["Wv"] + a["bv"])

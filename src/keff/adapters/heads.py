"""What query-only and asymmetric adapters share: parameters, training, the do-no-harm rule and
the numpy arithmetic of each head kind.

A head is exactly the identity before training (:mod:`keff.train.heads`); training is
:func:`keff.train.infonce.train_infonce` on a held-out split of the pairs (by relevance group, or
by domain when domains are given: then the validation questions come from domains the adapter
never trains on, the check that a new source is not hurt). The validation questions are split
again, by group, into two halves: one picks the best epoch (early stopping), the other decides.
Validation questions are ranked among every answer given, as a search of the whole index ranks
them. The **do-no-harm rule**: the adapter counts as an improvement only when, on the deciding
half, its MRR gain over the identity is at least ``min_gain`` (0.005) and positive with a
one-sided paired sign-flip p < 1 - ``confidence`` (0.1). Both parts answer a failure seen while
building it: deciding on the questions that picked the epoch lets noise through, and training
pushes every training answer away from the other questions, so new questions find their
(untrained) answers a little more easily even when nothing transfers: a tiny gain, steady enough
to pass a significance test alone (tests/adapters/test_heads.py pins the rule on pure-noise
pairs). Otherwise, with
``do_no_harm=True`` (the default), the heads are reset to the identity and ``improved_`` is
False. The 95% interval is recorded too.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from keff.data.splits import grouped_split
from keff.errors import KeffError, require
from keff.estimator import COUNT, FINITE, FLAG, NON_NEGATIVE, ArraySpec, ScalarSpec, is_finite_number, n_parameters
from keff.eval.significance import paired_bootstrap_ci, randomization_test
from keff.maps.base import check_pair
from keff.maps.residual_mlp import gelu
from keff.sef import shown
from keff.train.guardrails import GuardrailMonitor
from keff.train.infonce import HEAD_KINDS, VALIDATION_POOLS, InfoNCEConfig, InfoNCEResult, train_infonce

#: Validation splits: by relevance group, or by domain (source) when domains are given.
VALIDATIONS = ("groups", "domains")


def head_specs(kind: str, prefix: str = "") -> dict[str, ArraySpec]:
    """Declared arrays of one head kind (``d`` is the vector width, ``rank``/``hidden`` params)."""
    shapes = {
        "linear": {"W": ("d", "d"), "b": ("d",)},
        "lowrank": {"U": ("d", "rank"), "V": ("rank", "d"), "b": ("d",)},
        "mlp": {"W1": ("d", "hidden"), "b1": ("hidden",), "W2": ("hidden", "d"), "b2": ("d",)},
    }[kind]
    return {f"{prefix}{name}_": ArraySpec(shape) for name, shape in shapes.items()}


def apply_head(kind: str, arrays: Mapping[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """A head's output for rows ``X`` (numpy, float32); ``arrays`` named as in :func:`head_specs`
    without prefix and trailing underscore."""
    if kind == "linear":
        out = X @ arrays["W"]
        out += arrays["b"]
        return out
    if kind == "lowrank":
        out = (X @ arrays["U"]) @ arrays["V"]
        out += X
        out += arrays["b"]
        return out
    out = gelu(X @ arrays["W1"] + arrays["b1"]) @ arrays["W2"]
    out += X
    out += arrays["b2"]
    return out


def identity_arrays(kind: str, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``arrays`` changed so the head is exactly the identity (for the do-no-harm reset)."""
    out = {k: v.copy() for k, v in arrays.items()}
    if kind == "linear":
        out["W"] = np.eye(len(out["b"]), dtype=np.float32)
        out["b"][:] = 0
    elif kind == "lowrank":
        out["V"][:] = 0
        out["b"][:] = 0
    else:
        out["W2"][:] = 0
        out["b2"][:] = 0
    return out


class AdapterTraining:
    """Parameters, training and do-no-harm decision shared by the adapter estimators.

    Parameters
    ----------
    head : {"linear", "lowrank", "mlp"}
        Head kind (each starts as the identity).
    rank, hidden : int
        Width of the low-rank residual and of the MLP's hidden layer.
    hard_negatives : int
        Hard negatives per question mined from the frozen vectors (0: in-batch only).
    temperature : float
        Starting InfoNCE temperature (learnt within ``[0.02, 0.2]``).
    lr, weight_decay : float
        AdamW settings.
    epochs, patience : int
        At most ``epochs`` passes; stop after ``patience`` epochs without a better validation MRR.
    batch_size : int
    val_frac : float
        Share of pairs held out for early stopping and the do-no-harm rule.
    validation : {"groups", "domains"}
        Hold out whole relevance groups, or whole domains (needs ``domains`` in ``fit``).
    validation_pool : {"all", "held-out"}
        Rank validation questions among every answer given (default: as a search of the whole
        index will), or among the held-out answers only (see
        :data:`keff.train.infonce.VALIDATION_POOLS`).
    isotropy_weight, predictor_weight : float
        Optional terms (0: off); see :mod:`keff.train.infonce`.
    do_no_harm : bool
        Reset to the identity unless the validation gain is positive with ``confidence``.
    confidence : float
        The do-no-harm rule asks a one-sided p below ``1 - confidence`` of the validation gain.
    min_gain : float
        ... and a validation MRR gain of at least this much (0.005: half a point).
    seed : int
    """

    #: Whether the adapter has a document head (set by each adapter class).
    _asymmetric: ClassVar[bool] = False
    _adapter_scalars: ClassVar[dict[str, ScalarSpec]] = {
        "best_epoch_": COUNT,
        "val_mrr_identity_": FINITE,
        "val_mrr_": FINITE,
        "gain_ci_low_": FINITE,
        "gain_ci_high_": FINITE,
        "improved_": FLAG,
        "gain_p_": ScalarSpec(float, minimum=0, maximum=1),
        "n_val_": COUNT,
        "train_seconds_": NON_NEGATIVE,
        "temperature_": ScalarSpec(float, above=0),
    }

    def __init__(
        self,
        head: str = "linear",
        rank: int = 64,
        hidden: int = 256,
        hard_negatives: int = 16,
        temperature: float = 0.05,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        epochs: int = 30,
        patience: int = 5,
        batch_size: int = 256,
        val_frac: float = 0.2,
        validation: str = "groups",
        validation_pool: str = "all",
        isotropy_weight: float = 0.0,
        predictor_weight: float = 0.0,
        do_no_harm: bool = True,
        confidence: float = 0.9,
        min_gain: float = 0.005,
        seed: int = 0,
    ) -> None:
        self.head = head
        self.rank = rank
        self.hidden = hidden
        self.hard_negatives = hard_negatives
        self.temperature = temperature
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.patience = patience
        self.batch_size = batch_size
        self.val_frac = val_frac
        self.validation = validation
        self.validation_pool = validation_pool
        self.isotropy_weight = isotropy_weight
        self.predictor_weight = predictor_weight
        self.do_no_harm = do_no_harm
        self.confidence = confidence
        self.min_gain = min_gain
        self.seed = seed

    def _check_params(self) -> None:
        if not isinstance(self.head, str) or self.head not in HEAD_KINDS:
            raise KeffError(f"head must be one of {', '.join(HEAD_KINDS)}; got {shown(self.head)}")
        if not isinstance(self.validation, str) or self.validation not in VALIDATIONS:
            raise KeffError(f"validation must be one of {', '.join(VALIDATIONS)}; got {shown(self.validation)}")
        for name in ("rank", "hidden", "epochs", "patience", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise KeffError(f"{name} must be a positive int, got {shown(v)}")
        if isinstance(self.hard_negatives, bool) or not isinstance(self.hard_negatives, int) or self.hard_negatives < 0:
            raise KeffError(f"hard_negatives must be an int >= 0, got {shown(self.hard_negatives)}")
        if self.validation_pool not in VALIDATION_POOLS:
            raise KeffError(
                f"validation_pool must be one of {', '.join(VALIDATION_POOLS)}; got {shown(self.validation_pool)}"
            )
        if not (is_finite_number(self.min_gain) and 0 <= self.min_gain < 1):
            raise KeffError(f"min_gain must be in [0, 1), got {shown(self.min_gain)}")
        if not (is_finite_number(self.confidence) and 0.5 < self.confidence < 1):
            raise KeffError(f"confidence must be in (0.5, 1), got {shown(self.confidence)}")
        if not (is_finite_number(self.val_frac) and 0 < self.val_frac < 1):
            raise KeffError(f"val_frac must be in (0, 1), got {shown(self.val_frac)}")

    def config(self) -> InfoNCEConfig:
        return InfoNCEConfig(
            temperature=self.temperature,
            hard_negatives=self.hard_negatives,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            epochs=self.epochs,
            patience=self.patience,
            isotropy_weight=self.isotropy_weight,
            predictor_weight=self.predictor_weight,
            validation_pool=self.validation_pool,
            seed=self.seed,
        )

    def split(self, n: int, groups: np.ndarray | None, domains: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(fit rows, validation rows): whole groups, or whole domains, held out."""
        if self.validation == "domains":
            if domains is None:
                raise KeffError("validation='domains' needs a domain per pair (e.g. MedQuAD's source)")
            labels = np.unique(np.asarray(domains), return_inverse=True)[1]
            if labels.max() < 1:
                raise KeffError("validation='domains' needs pairs from at least two domains")
        else:
            labels = np.arange(n) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1]
        split = grouped_split(labels, val_frac=self.val_frac, test_frac=0.0, seed=self.seed)
        if len(split.val) == 0 or len(split.train) < 2:
            raise KeffError(f"cannot hold out {self.val_frac:.0%} of {n} pairs by {self.validation} for validation")
        return split.train, split.val

    def fit(
        self,
        X: Any,
        Y: Any,
        groups: Any = None,
        domains: Any = None,
        *,
        log_path: str | Path | None = None,
        progress: bool | None = None,
    ) -> Any:
        """Train on questions ``X`` (n, d) and their answers ``Y`` (n, d).

        Parameters
        ----------
        groups : array-like (n,), optional
            Relevance group per pair: every answer of a group is right for each of its questions
            (never a negative for them). Default: each pair its own group.
        domains : array-like (n,), optional
            Domain (e.g. source) per pair, for ``validation="domains"``.
        log_path : str or Path, optional
            JSONL file the guardrail checks of every epoch are appended to.
        progress : bool, optional
            Show a progress bar (default: on a terminal).
        """
        X, Y = check_pair(X, Y, min_rows=4)
        if X.shape[1] != Y.shape[1]:
            raise KeffError(f"an adapter needs questions and answers of one width; got {X.shape[1]} and {Y.shape[1]}")
        result = self.train_heads(X, Y, groups, domains, asymmetric=self._asymmetric, log_path=log_path,
                                  progress=progress)  # fmt: skip
        self._store(result, int(X.shape[1]))
        return self

    def _store(self, result: InfoNCEResult, dim: int) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def selection_half(self, val_groups: np.ndarray) -> np.ndarray:
        """Which validation questions choose the epoch (whole groups, about half); the rest decide."""
        labels = np.unique(val_groups, return_inverse=True)[1]
        if labels.max(initial=0) < 1:
            raise KeffError("the validation split holds a single relevance group: give more groups")
        half = grouped_split(labels, val_frac=0.5, test_frac=0.0, seed=self.seed + 1)
        select = np.zeros(len(val_groups), bool)
        select[half.train] = True
        return select

    def train_heads(
        self,
        X: np.ndarray,
        Y: np.ndarray,
        groups: Any,
        domains: Any,
        *,
        asymmetric: bool,
        log_path: str | Path | None,
        progress: bool | None,
    ) -> InfoNCEResult:
        """Train, decide (do-no-harm) and set the fitted scalars; returns the training result."""
        self._check_params()
        require("torch", "st")
        from keff.train.heads import make_head

        n = len(X)
        g = np.arange(n) if groups is None else np.asarray(groups)
        dom = None if domains is None else np.asarray(domains)
        for name, arr in (("groups", g), ("domains", dom)):
            if arr is not None and arr.shape != (n,):
                raise KeffError(f"{name} must have one entry per pair ({n}); got shape {arr.shape}")
        fit_rows, val_rows = self.split(n, g, dom)

        def build(d: int):
            return make_head(self.head, d, rank=self.rank, hidden=self.hidden)

        select = self.selection_half(g[val_rows])
        monitor = GuardrailMonitor(log_path=log_path)
        result = train_infonce(
            X, Y, g, fit_rows, val_rows, query_head=build, doc_head=build if asymmetric else None,
            config=self.config(), monitor=monitor, select=select, progress=progress,
        )  # fmt: skip
        best, ident = result.val_best[~select], result.val_identity[~select]
        _, lo, hi = paired_bootstrap_ci(best, ident, seed=self.seed)
        # one-sided sign-flip test (valid with the many zero differences of rank metrics, where a
        # bootstrap interval is too narrow): p_one = p_two / 2 when the gain is positive
        gain = float(best.mean() - ident.mean())
        p_one = randomization_test(best, ident, seed=self.seed) / 2 if gain > 0 else 1.0
        self.best_epoch_ = int(result.best_epoch)
        self.val_mrr_identity_ = float(ident.mean())
        self.val_mrr_ = float(best.mean())
        self.gain_ci_low_, self.gain_ci_high_ = float(lo), float(hi)
        self.gain_p_ = float(p_one)
        self.improved_ = bool(result.best_epoch > 0 and gain >= self.min_gain and p_one < 1 - self.confidence)
        self.n_val_ = int((~select).sum())
        self.train_seconds_ = float(result.seconds)
        self.temperature_ = float(result.temperature)
        self.history_ = result.history
        self.guardrail_log_ = result.log
        self.stopped_ = result.stopped
        self.fit_rows_, self.val_rows_ = fit_rows, val_rows
        if self.do_no_harm and not self.improved_:
            result.query_arrays = identity_arrays(self.head, result.query_arrays)
            if result.doc_arrays is not None:
                result.doc_arrays = identity_arrays(self.head, result.doc_arrays)
        return result

    def decision(self) -> str:
        """One line: whether the adapter beat the identity on validation."""
        verdict = "beats" if self.improved_ else "does not beat"
        line = (
            f"adapter {verdict} the identity on {self.n_val_} validation questions held out by {self.validation}: "
            f"MRR {self.val_mrr_identity_:.4f} -> {self.val_mrr_:.4f} "
            f"(gain 95% CI [{self.gain_ci_low_:+.4f}, {self.gain_ci_high_:+.4f}], one-sided p {self.gain_p_:.2g}; "
            f"needed: gain >= {self.min_gain:g} and p < {1 - self.confidence:.2g}; best epoch {self.best_epoch_})"
        )
        if not self.improved_ and self.do_no_harm:
            line += "; reset to the identity (do-no-harm)"
        return line

    def n_parameters(self) -> int:
        """Stored numbers of the fitted heads."""
        return n_parameters(self)  # type: ignore[arg-type]

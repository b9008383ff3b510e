"""Training guardrails: per-epoch monitors that catch the known ways an adapter run goes wrong.

Every monitor takes numpy arrays or floats and returns a :class:`Check` (name, value, threshold,
status ``ok`` | ``warn`` | ``fail``, one-line message), so it works without torch. Only
:func:`gradient_norms` needs torch, and imports it inside the function.

The monitors and the failure each one catches:

- :func:`norm_growth`, :func:`positive_similarity_growth`: vectors grow instead of turning
  (unnormalised dot-product InfoNCE: positive similarity 32 -> 164 in three epochs);
- :func:`effective_rank`, :func:`mean_pairwise_cosine`: collapse onto few directions;
- :func:`identity_distance`: the adapter still equals the identity (reported, never an error);
- :func:`anticorrelation`: outputs point away from their targets (or from the frozen vectors) in
  a space the loss uses (InfoNCE on a projection head plus cosine on the raw space: -0.12);
- :func:`regulariser_gradient_share`, :func:`regulariser_batch_rank`: a dead regulariser (an
  isotropy loss on a batch of 16 rows in 64-d: covariance rank 15, gradient share ~0);
- :func:`loss_dominance`: one loss term is nearly all of the total;
- :func:`divergence`: train loss falls while the validation metric falls;
- :func:`similarity_mismatch`: training and evaluation score with different similarities;
- :func:`leakage`, :func:`split_parity`: train/eval leaks and distribution drift
  (wrapping :mod:`keff.data.leakage`);
- :func:`checkpoint_roundtrip`: a reloaded adapter does not reproduce its outputs.

:class:`GuardrailMonitor` runs configured checks every epoch, keeps a JSON-serialisable log (and
optionally appends it to a JSONL file) and raises :class:`GuardrailTripped` on a ``fail``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from keff.arrays import l2_normalize
from keff.errors import DataError
from keff.train.loop import TrainingDiverged

OK, WARN, FAIL = "ok", "warn", "fail"
SIMILARITIES = ("cosine", "dot", "l2")


@dataclass(frozen=True)
class Check:
    """The result of one monitor.

    Attributes
    ----------
    name : str
        Which check (e.g. ``"norm_growth"``).
    value : float or None
        The measured value.
    threshold : float or None
        The bound the value was compared with (the ``fail`` bound).
    status : str
        ``"ok"``, ``"warn"`` or ``"fail"``.
    message : str
        One line saying what was measured and, when not ok, what it means.
    """

    name: str
    value: float | None
    threshold: float | None
    status: str
    message: str

    def __post_init__(self) -> None:
        if self.status not in (OK, WARN, FAIL):
            raise DataError(f"check {self.name}: status must be ok, warn or fail, got {self.status!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; a non-finite value becomes None (the message still states it)."""
        return {
            "name": self.name,
            "value": _json_float(self.value),
            "threshold": _json_float(self.threshold),
            "status": self.status,
            "message": self.message,
        }


class GuardrailTripped(TrainingDiverged):
    """A guardrail check failed and the monitor was configured to stop training.

    Attributes
    ----------
    checks : list of Check
        The failed checks.
    epoch : int
        The epoch at which they failed.
    """

    def __init__(self, epoch: int, checks: Sequence[Check]) -> None:
        self.epoch = epoch
        self.checks = list(checks)
        detail = "; ".join(f"{c.name}: {c.message}" for c in self.checks)
        super().__init__(f"guardrail tripped at epoch {epoch}: {detail}")


def _json_float(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _grade(value: float, warn: float | None, fail: float | None, *, above: bool) -> str:
    """``fail`` / ``warn`` when ``value`` is past a bound (above it, or below it)."""
    past = (lambda b: value > b) if above else (lambda b: value < b)
    if not math.isfinite(value):
        return FAIL
    if fail is not None and past(fail):
        return FAIL
    if warn is not None and past(warn):
        return WARN
    return OK


def _matrix(x: object, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataError(f"{name} must be a non-empty (n, d) array, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise DataError(f"{name} contains NaN or infinite values")
    return arr


def _mean_value(x: float | np.ndarray) -> float:
    arr = np.asarray(x, dtype=np.float64)
    if arr.size == 0:
        raise DataError("got an empty array where a value or values were expected")
    return float(arr.mean())


# --- magnitude -------------------------------------------------------------------------------


def norm_growth(
    norms: float | np.ndarray,
    norms_epoch0: float | np.ndarray,
    *,
    warn_ratio: float = 1.5,
    fail_ratio: float = 2.0,
    scale_invariant: bool = False,
) -> Check:
    """Mean vector norm now over its value at epoch 0 (the untrained model).

    Parameters
    ----------
    norms, norms_epoch0 : float or ndarray
        L2 norms of the output vectors (or their mean) now and at epoch 0.
    warn_ratio, fail_ratio : float
        Growth factors that warn / fail.
    scale_invariant : bool
        The loss sees only normalised outputs (cosine): norms then drift without changing the
        loss, which is harmless to what is learnt (it only shrinks the effective step), so growth
        warns and never fails.
    """
    now, base = _mean_value(norms), _mean_value(norms_epoch0)
    ratio = now / max(base, 1e-12)
    status = _grade(ratio, warn_ratio, None if scale_invariant else fail_ratio, above=True)
    msg = f"mean norm {base:.4g} -> {now:.4g} (x{ratio:.3g} since epoch 0)"
    if status != OK and scale_invariant:
        msg += ": norms drift under a scale-invariant (cosine) loss; harmless to the ranking, it slows learning"
    elif status != OK:
        msg += ": the model grows vectors instead of turning them; L2-normalise before the loss"
    return Check("norm_growth", ratio, fail_ratio, status, msg)


def positive_similarity_growth(
    positive_sims: float | np.ndarray,
    positive_sims_epoch0: float | np.ndarray,
    *,
    floor: float = 1.0,
    warn_ratio: float = 1.5,
    fail_ratio: float = 2.0,
) -> Check:
    """Mean similarity of positive pairs now over its value at epoch 0.

    A starting value below ``floor`` counts as ``floor``, so a near-zero start cannot make the ratio
    explode; with cosine similarity (at most 1) and ``floor=1`` the check cannot fail, as intended:
    only an unbounded similarity (a raw dot product) can grow.
    """
    now, base = _mean_value(positive_sims), _mean_value(positive_sims_epoch0)
    ratio = now / max(base, floor)
    status = _grade(ratio, warn_ratio, fail_ratio, above=True)
    msg = f"mean positive similarity {base:.4g} -> {now:.4g} (x{ratio:.3g} of max(epoch 0, {floor:g}))"
    if status != OK:
        msg += ": similarity grows with magnitude (unnormalised dot product?); use cosine logits"
    return Check("positive_similarity_growth", ratio, fail_ratio, status, msg)


# --- collapse --------------------------------------------------------------------------------


def effective_rank(
    vectors: np.ndarray,
    *,
    warn_fraction: float = 0.15,
    fail_fraction: float = 0.05,
) -> Check:
    """Effective rank: exp of the entropy of the normalised singular values (RankMe).

    The value is the effective rank itself; it is graded as a fraction of ``min(n, d)`` (rows are
    not centred, so all vectors collapsing onto one point gives a rank near 1).
    """
    x = _matrix(vectors, "vectors")
    s = np.linalg.svd(x, compute_uv=False)
    p = s / max(s.sum(), 1e-300)
    p = p[p > 0]
    erank = float(np.exp(-(p * np.log(p)).sum()))
    full = min(x.shape)
    status = _grade(erank / full, warn_fraction, fail_fraction, above=False)
    msg = f"effective rank {erank:.3g} of {full} ({erank / full:.1%})"
    if status != OK:
        msg += ": the outputs collapse onto a few directions"
    return Check("effective_rank", erank, fail_fraction * full, status, msg)


def mean_pairwise_cosine(
    vectors: np.ndarray,
    *,
    warn_above: float = 0.7,
    fail_above: float = 0.9,
) -> Check:
    """Mean cosine over all pairs of distinct rows; near 1 means every vector points the same way."""
    x = l2_normalize(_matrix(vectors, "vectors")).astype(np.float64)
    n = x.shape[0]
    if n < 2:
        raise DataError(f"mean_pairwise_cosine needs at least 2 vectors, got {n}")
    total = x.sum(axis=0)
    mean = float((total @ total - n) / (n * (n - 1)))
    status = _grade(mean, warn_above, fail_above, above=True)
    msg = f"mean pairwise cosine {mean:.4f} over {n} vectors"
    if status != OK:
        msg += ": the outputs collapse towards one direction"
    return Check("mean_pairwise_cosine", mean, fail_above, status, msg)


def identity_distance(outputs: np.ndarray, inputs: np.ndarray, *, tol: float = 1e-6) -> Check:
    """Relative change ``||f(x) - x|| / ||x||`` of an adapter; report only (always ``ok``).

    An adapter starts as the identity, so a tiny value at epoch 0 is expected; after training it
    says the adapter changes nothing, which is worth reporting but not an error.
    """
    out, inp = _matrix(outputs, "outputs"), _matrix(inputs, "inputs")
    if out.shape != inp.shape:
        raise DataError(f"outputs and inputs differ in shape: {out.shape} vs {inp.shape}")
    rel = float(np.linalg.norm(out - inp) / max(np.linalg.norm(inp), 1e-300))
    if rel <= tol:
        msg = f"adapter equals the identity (relative change {rel:.3g} <= {tol:g}): it changes nothing"
    else:
        msg = f"adapter moves vectors by {rel:.3g} relative to their length"
    return Check("identity_distance", rel, tol, OK, msg)


def anticorrelation(
    outputs: np.ndarray,
    targets: np.ndarray,
    *,
    space: str = "raw",
    warn_below: float = 0.1,
    fail_below: float = 0.0,
    start: float | None = None,
) -> Check:
    """Mean row-wise cosine of outputs and their targets (or adapted and frozen vectors).

    Negative means the outputs point away from what they should match. Run it in every space a loss
    uses (raw and projected): a split objective can look fine in one and be reversed in the other.
    ``start``: the value at epoch 0; the bounds then become ``min(bound, start)`` (minus 0.05 for
    the fail bound), so data that starts near zero is judged by its fall, not its level.
    """
    if start is not None:  # graded from where training started (planted data can start near 0)
        warn_below, fail_below = min(warn_below, start), min(fail_below, start) - 0.05
    out, tgt = _matrix(outputs, "outputs"), _matrix(targets, "targets")
    if out.shape != tgt.shape:
        raise DataError(f"outputs and targets differ in shape: {out.shape} vs {tgt.shape}")
    mean = float((l2_normalize(out).astype(np.float64) * l2_normalize(tgt)).sum(axis=1).mean())
    status = _grade(mean, warn_below, fail_below, above=False)
    msg = f"mean cosine of outputs and targets in the {space} space {mean:.4f}"
    if status == FAIL:
        msg += ": outputs are anti-correlated with their targets (objectives on different spaces fighting?)"
    elif status == WARN:
        msg += ": outputs barely agree with their targets"
    return Check(f"anticorrelation_{space}", mean, fail_below, status, msg)


# --- regularisers and losses -----------------------------------------------------------------


def gradient_norms(losses: Mapping[str, Any], params: Iterable[Any]) -> dict[str, float]:
    """L2 norm of the gradient of each loss term over ``params`` (torch; graphs are kept).

    Parameters
    ----------
    losses : mapping of str to torch scalar tensor
        The weighted loss terms, as they enter the total.
    params : iterable of torch tensors
        The trainable parameters.
    """
    import torch

    params = [p for p in params if p.requires_grad]
    out: dict[str, float] = {}
    for name, loss in losses.items():
        grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        sq = sum(float((g.detach() ** 2).sum()) for g in grads if g is not None)
        out[name] = math.sqrt(sq)
    return out


def regulariser_gradient_share(
    regulariser_grad_norm: float,
    other_grad_norm: float,
    *,
    name: str = "regulariser",
    min_share: float = 1e-3,
) -> Check:
    """Share of the gradient norm that comes from the regulariser: below ``min_share`` it is dead.

    The share is ``|g_reg| / (|g_reg| + |g_other|)`` (see :func:`gradient_norms`).
    """
    reg, other = float(regulariser_grad_norm), float(other_grad_norm)
    share = reg / max(reg + other, 1e-300)
    status = _grade(share, None, min_share, above=False)
    msg = f"{name} gives {share:.3g} of the gradient norm"
    if status != OK:
        msg += f" (< {min_share:g}): it is dead, training ignores it"
    return Check(f"gradient_share_{name}", share, min_share, status, msg)


def regulariser_batch_rank(batch: np.ndarray, *, name: str = "regulariser") -> Check:
    """Rank of the covariance of the rows a covariance regulariser sees; below ``d`` it is degenerate.

    A batch of n rows has a covariance of rank at most n - 1, so an isotropy target (covariance
    close to sigma^2 I in d dimensions) cannot be met when n <= d: use a memory bank of > d rows.
    """
    x = _matrix(batch, "batch")
    centred = x - x.mean(axis=0)
    rank = int(np.linalg.matrix_rank(centred))
    n, d = x.shape
    status = OK if rank >= d else FAIL
    msg = f"{name} covariance from {n} rows in {d}-d has rank {rank}"
    if status != OK:
        msg += f" < {d}: it cannot be isotropic; use a memory bank of more than {d} rows"
    return Check(f"batch_rank_{name}", float(rank), float(d), status, msg)


def loss_dominance(
    terms: Mapping[str, float],
    *,
    warn_share: float = 0.99,
    fail_share: float | None = None,
) -> Check:
    """Largest share of the total loss held by one term (shares of absolute values)."""
    if len(terms) < 2:
        raise DataError(f"loss_dominance needs at least 2 loss terms, got {list(terms)}")
    values = {k: abs(float(v)) for k, v in terms.items()}
    total = sum(values.values())
    top = max(values, key=values.get)
    share = values[top] / total if total > 0 else 0.0
    status = _grade(share, warn_share, fail_share, above=True)
    msg = f"largest loss term {top!r} is {share:.4f} of the total"
    if status != OK:
        msg += ": the other terms barely count; reweight them or drop them"
    return Check("loss_dominance", share, warn_share if fail_share is None else fail_share, status, msg)


def divergence(
    train_losses: Sequence[float],
    val_metrics: Sequence[float],
    *,
    patience: int = 3,
    higher_is_better: bool = True,
) -> Check:
    """Epochs in a row (ending now) in which the train loss fell and the validation metric got worse.

    ``fail`` at ``patience`` epochs: training is fitting something the validation set does not
    reward (overfitting, or a loss that measures the wrong thing).
    """
    if len(train_losses) != len(val_metrics):
        raise DataError(f"train_losses and val_metrics differ in length: {len(train_losses)} vs {len(val_metrics)}")
    if patience < 1:
        raise DataError(f"patience must be >= 1, got {patience}")
    sign = 1.0 if higher_is_better else -1.0
    streak = 0
    for i in range(len(train_losses) - 1, 0, -1):
        loss_fell = train_losses[i] < train_losses[i - 1]
        val_worse = sign * (val_metrics[i] - val_metrics[i - 1]) < 0
        if not (loss_fell and val_worse):
            break
        streak += 1
    status = FAIL if streak >= patience else OK
    msg = f"train loss fell while the validation metric got worse for {streak} epoch(s) in a row"
    if status != OK:
        msg += f" (>= {patience}): the model fits the training loss, not the task"
    return Check("divergence", float(streak), float(patience), status, msg)


def similarity_mismatch(train_similarity: str, eval_similarity: str) -> Check:
    """Training and evaluation must score with the same similarity (cosine, dot or l2)."""
    for what, sim in (("train_similarity", train_similarity), ("eval_similarity", eval_similarity)):
        if sim not in SIMILARITIES:
            raise DataError(f"{what} must be one of {', '.join(SIMILARITIES)}, got {sim!r}")
    same = train_similarity == eval_similarity
    if same:
        msg = f"training and evaluation both use {train_similarity}"
    else:
        msg = (
            f"trained with {train_similarity} but evaluated with {eval_similarity}: what the loss "
            "optimised is not what retrieval scores; use one similarity for both"
        )
    return Check("similarity_mismatch", 0.0 if same else 1.0, 0.0, OK if same else FAIL, msg)


# --- data ------------------------------------------------------------------------------------


def leakage(a_texts: Sequence[str], b_texts: Sequence[str], **kwargs: Any) -> Check:
    """Rows of side b (eval) leaking from side a (train), via :func:`keff.data.leak_check`.

    Keyword arguments (groups, vectors, ``near_dup_cosine``) go to :func:`keff.data.leak_check`.
    """
    from keff.data.leakage import leak_check

    report = leak_check(a_texts, b_texts, **kwargs)
    leaked = report.group_overlap + report.exact_text_overlap + (report.near_duplicates or 0)
    if report.clean:
        msg = f"no leaks from train into eval ({len(b_texts)} eval rows checked)"
    else:
        msg = (
            f"eval leaks from train: {report.group_overlap} shared group, {report.exact_text_overlap} "
            f"same text, {report.near_duplicates or 0} near-duplicate rows"
        )
        if report.examples:
            msg += f"; e.g. {report.examples[0]}"
    return Check("leakage", float(leaked), 0.0, OK if report.clean else FAIL, msg)


def split_parity(
    a_values: Sequence[float] | np.ndarray,
    b_values: Sequence[float] | np.ndarray,
    *,
    what: str = "value",
    warn_ks: float = 0.1,
    fail_ks: float = 0.25,
) -> Check:
    """Kolmogorov-Smirnov distance of one property (length, norm, ...) between train and eval.

    Uses :func:`keff.data.split_parity`; the KS statistic (not the p-value, which shrinks with n)
    is graded.
    """
    from keff.data.leakage import split_parity as parity

    report = parity(a_values, b_values)
    ks = report["ks_statistic"]
    status = _grade(ks, warn_ks, fail_ks, above=True)
    msg = (
        f"{what}: train mean {report['train']['mean']:.4g}, eval mean {report['eval']['mean']:.4g}, "
        f"KS distance {ks:.3f}"
    )
    if status != OK:
        msg += ": train and eval differ in distribution"
    return Check(f"split_parity_{what}", ks, fail_ks, status, msg)


def checkpoint_roundtrip(
    fn_apply: Callable[[np.ndarray], Any],
    fn_reload: Callable[[], Callable[[np.ndarray], Any]],
    probe: np.ndarray,
    *,
    atol: float = 0.0,
) -> Check:
    """Apply, reload from the checkpoint, apply again: the outputs must be identical.

    Parameters
    ----------
    fn_apply : callable
        The live adapter: probe -> outputs (array-like).
    fn_reload : callable
        Reloads the adapter from its checkpoint and returns its apply function.
    probe : ndarray
        Inputs to compare on.
    atol : float
        Largest absolute difference allowed (0: bit-identical).
    """
    before = np.asarray(fn_apply(probe), dtype=np.float64)
    after = np.asarray(fn_reload()(probe), dtype=np.float64)
    if before.shape != after.shape:
        return Check(
            "checkpoint_roundtrip",
            math.inf,
            atol,
            FAIL,
            f"reloaded adapter gives outputs of shape {after.shape}, the live one {before.shape}",
        )
    diff = float(np.abs(before - after).max()) if before.size else 0.0
    status = OK if diff <= atol else FAIL
    msg = f"reloaded adapter reproduces the outputs (max abs difference {diff:.3g})"
    if status != OK:
        msg = (
            f"reloaded adapter gives different outputs (max abs difference {diff:.3g} > {atol:g}): "
            "the checkpoint loses state"
        )
    return Check("checkpoint_roundtrip", diff, atol, status, msg)


# --- the monitor -----------------------------------------------------------------------------

CheckFn = Callable[[Mapping[str, Any]], "Check | Iterable[Check]"]


class GuardrailMonitor:
    """Run configured checks every epoch, log them, and stop on a failure.

    Parameters
    ----------
    checks : sequence of callables, optional
        Each takes the epoch's state (the keyword arguments of :meth:`epoch`) and returns a
        :class:`Check` or several.
    stop_on_fail : bool
        Raise :class:`GuardrailTripped` when any check of an epoch fails.
    log_path : str or Path, optional
        JSONL file; each epoch appends one complete line ``{"epoch", "checks"}`` (written with a
        single write and fsynced, so a crash leaves whole lines only).

    Attributes
    ----------
    log : list of dict
        One JSON-serialisable record per epoch.
    """

    def __init__(
        self,
        checks: Sequence[CheckFn] = (),
        *,
        stop_on_fail: bool = True,
        log_path: str | Path | None = None,
    ) -> None:
        self.checks = list(checks)
        self.stop_on_fail = stop_on_fail
        self.log_path = None if log_path is None else Path(log_path)
        self.log: list[dict[str, Any]] = []

    def epoch(self, epoch: int, **state: Any) -> list[Check]:
        """Run every configured check on ``state`` and :meth:`record` the results."""
        results: list[Check] = []
        for fn in self.checks:
            out = fn(state)
            results.extend([out] if isinstance(out, Check) else list(out))
        return self.record(epoch, results)

    def record(self, epoch: int, checks: Iterable[Check]) -> list[Check]:
        """Log checks computed elsewhere; raise :class:`GuardrailTripped` on a fail if configured."""
        checks = list(checks)
        entry = {"epoch": int(epoch), "checks": [c.to_dict() for c in checks]}
        self.log.append(entry)
        if self.log_path is not None:
            self._append(entry)
        failed = [c for c in checks if c.status == FAIL]
        if failed and self.stop_on_fail:
            raise GuardrailTripped(epoch, failed)
        return checks

    def _append(self, entry: dict[str, Any]) -> None:
        line = (json.dumps(entry, allow_nan=False) + "\n").encode()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    @property
    def failures(self) -> list[dict[str, Any]]:
        """Every failed check logged so far, each with its epoch."""
        return [{"epoch": e["epoch"], **c} for e in self.log for c in e["checks"] if c["status"] == FAIL]

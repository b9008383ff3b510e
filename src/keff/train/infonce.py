"""Contrastive training of adapter heads over frozen vectors (InfoNCE on cosine similarity).

What the loop does, and why (each line answers a failure seen before, see the guardrails):

- **cosine everywhere**: query and document outputs are L2-normalised before every similarity,
  in training and in validation, as in retrieval (an unnormalised dot product lets norms grow
  instead of directions turning);
- **negatives**: the other positives of the batch (in-batch) plus, with ``hard_negatives=K``,
  each question's K nearest training answers under the *frozen* vectors (mined once, before
  training); a candidate of the question's own relevance group is masked, never a negative
  (false-negative filtering);
- **temperature** learnt in log space and clamped to ``temperature_bounds``;
- **early stopping** on the validation metric (group-level MRR of held-out questions among every
  answer given, see :data:`VALIDATION_POOLS`), keeping the best epoch; epoch 0 is the identity,
  so a run that never helps ends as the identity;
- **optional terms**: a scale-invariant isotropy regulariser on normalised query outputs,
  computed on a memory bank of more rows than dimensions (full-rank covariance), and a predictor
  head (identity-initialised linear) whose output is regressed by cosine on the frozen answer;
- **guardrails** (:mod:`keff.train.guardrails`) computed every epoch and written to the log.

torch is imported inside :func:`train_infonce`; the result holds numpy arrays only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from keff.arrays import l2_normalize
from keff.errors import KeffError, require
from keff.progress import progress_bar
from keff.train import guardrails as G

#: Head kinds the trainer builds (see :mod:`keff.train.heads`).
HEAD_KINDS = ("linear", "lowrank", "mlp")
#: What validation questions are ranked among: every answer given (default, as a search of the
#: whole index ranks them), or only the held-out pairs' answers. Training pushes each training
#: answer away from every other question, so among training answers a new question's own answer
#: rises a little even when nothing transfers (a tiny, steady gain on pure noise); the held-out pool
#: avoids that but is small (its MRR sits near the ceiling and gains shrink).
VALIDATION_POOLS = ("all", "held-out")


@dataclass
class InfoNCEConfig:
    """Settings of :func:`train_infonce` (the adapters' parameters pass through to here)."""

    temperature: float = 0.05
    temperature_bounds: tuple[float, float] = (0.02, 0.2)
    learn_temperature: bool = True
    hard_negatives: int = 0
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    epochs: int = 30
    patience: int = 3
    isotropy_weight: float = 0.0
    memory_bank: int = 0  # 0: 4 x dim rows
    predictor_weight: float = 0.0
    validation_pool: str = "all"
    seed: int = 0

    def check(self) -> None:
        lo, hi = self.temperature_bounds
        if not 0 < lo <= self.temperature <= hi:
            raise KeffError(f"temperature {self.temperature} must lie in its bounds [{lo}, {hi}] (> 0)")
        for name in ("batch_size", "epochs", "patience"):
            if getattr(self, name) < 1:
                raise KeffError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.hard_negatives < 0:
            raise KeffError(f"hard_negatives must be >= 0, got {self.hard_negatives}")
        for name in ("isotropy_weight", "predictor_weight", "weight_decay"):
            if not getattr(self, name) >= 0:
                raise KeffError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.validation_pool not in VALIDATION_POOLS:
            raise KeffError(
                f"validation_pool must be one of {', '.join(VALIDATION_POOLS)}, got {self.validation_pool!r}"
            )
        if not self.lr > 0:
            raise KeffError(f"lr must be > 0, got {self.lr}")


@dataclass
class InfoNCEResult:
    """What training returns: the best epoch's head arrays and how it got there.

    ``val_identity`` / ``val_best`` are per-question reciprocal ranks on the validation
    questions for the identity (epoch 0) and the kept epoch; ``log`` is the guardrail log (one
    record per epoch); ``history`` one dict per epoch (train loss, validation MRR, temperature).
    """

    query_arrays: dict[str, np.ndarray]
    doc_arrays: dict[str, np.ndarray] | None
    best_epoch: int
    val_identity: np.ndarray
    val_best: np.ndarray
    history: list[dict[str, Any]]
    log: list[dict[str, Any]]
    seconds: float
    temperature: float
    stopped: str = "epochs"
    extra: dict[str, Any] = field(default_factory=dict)


def mine_hard_negatives(Q: np.ndarray, A: np.ndarray, groups: np.ndarray, k: int, *, block: int = 2048) -> np.ndarray:
    """Indices (n, k) of each question's k most similar answers (cosine, frozen vectors) among
    ``A``, skipping answers of its own group (they are positives or unjudged duplicates).

    Fewer than k candidates outside the group leave -1 in the tail (masked in training).
    """
    Qn, An = l2_normalize(Q), l2_normalize(A)
    n, m = len(Qn), len(An)
    k_eff = min(k, m)
    out = np.full((n, k), -1, dtype=np.int64)
    for lo in range(0, n, block):
        rows = slice(lo, min(lo + block, n))
        s = Qn[rows] @ An.T
        s[groups[rows][:, None] == groups[None, :]] = -np.inf
        part = np.argpartition(-s, k_eff - 1, axis=1)[:, :k_eff]
        order = np.argsort(-np.take_along_axis(s, part, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(part, order, axis=1)
        top_s = np.take_along_axis(s, top, axis=1)
        out[rows, :k_eff] = np.where(np.isfinite(top_s), top, -1)
    return out


def group_rr(queries: np.ndarray, pool: np.ndarray, q_groups: np.ndarray, pool_groups: np.ndarray) -> np.ndarray:
    """Reciprocal rank of each query's first pool row of its own group (cosine; 0 if none)."""
    qn, pn = l2_normalize(queries), l2_normalize(pool)
    rr = np.zeros(len(qn))
    for lo in range(0, len(qn), 2048):
        s = qn[lo : lo + 2048] @ pn.T
        right = q_groups[lo : lo + 2048, None] == pool_groups[None, :]
        best = np.where(right, s, -np.inf).max(axis=1)
        above = (np.where(right, -np.inf, s) > best[:, None]).sum(axis=1)
        rr[lo : lo + 2048] = np.where(np.isfinite(best), 1.0 / (above + 1), 0.0)
    return rr


def _isotropy(z: Any, bank: Any) -> Any:
    """Scale-invariant isotropy loss of normalised rows ``z`` with a detached memory ``bank``:
    ``d * ||C / tr C - I / d||_F^2`` of their centred covariance (0 when isotropic)."""
    import torch

    rows = torch.cat([z, bank]) if bank is not None and len(bank) else z
    c = rows - rows.mean(dim=0)
    cov = c.T @ c / max(len(rows) - 1, 1)
    d = cov.shape[0]
    return d * ((cov / cov.trace().clamp_min(1e-12) - torch.eye(d) / d) ** 2).sum()


def _sample(n: int, size: int, seed: int) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).choice(n, size=min(n, size), replace=False))


def train_infonce(
    Q: np.ndarray,
    A: np.ndarray,
    groups: np.ndarray,
    fit_rows: np.ndarray,
    val_rows: np.ndarray,
    *,
    query_head: Callable[[int], Any],
    doc_head: Callable[[int], Any] | None = None,
    config: InfoNCEConfig | None = None,
    monitor: G.GuardrailMonitor | None = None,
    select: np.ndarray | None = None,
    progress: bool | None = None,
) -> InfoNCEResult:
    """Train a query head (and, for an asymmetric adapter, a document head) with InfoNCE.

    Parameters
    ----------
    Q, A : ndarray (n, d)
        Frozen question and answer (document) vectors of n pairs.
    groups : ndarray (n,)
        Relevance group per pair: every answer of a pair's group is right for its question.
    fit_rows, val_rows : ndarray of int
        Pairs trained on, and pairs whose questions validate (searched among all n answers, or only
        the validation answers with ``validation_pool="held-out"``; validation answers are never
        trained as negatives).
    query_head, doc_head : callable
        ``dim -> torch module`` building an identity head (:func:`keff.train.heads.make_head`).
    config : InfoNCEConfig
    monitor : GuardrailMonitor, optional
        Receives every epoch's checks (default: one that stops on failure, no file).
    select : ndarray of bool, optional
        Which validation questions pick the best epoch and drive early stopping (default: all).
        The others stay untouched by that choice, so a decision made on them alone is free of
        the selection's optimism; the result reports every validation question.
    """
    torch = require("torch", "st")
    F = torch.nn.functional
    cfg = config or InfoNCEConfig()
    cfg.check()
    monitor = monitor or G.GuardrailMonitor()
    n, d = Q.shape
    g = np.unique(groups, return_inverse=True)[1].astype(np.int64)
    fit_rows, val_rows = np.asarray(fit_rows, np.int64), np.asarray(val_rows, np.int64)
    if len(fit_rows) < 2 or len(val_rows) < 1:
        raise KeffError(
            f"need at least 2 training pairs and 1 validation pair, got {len(fit_rows)} and {len(val_rows)}"
        )
    select = np.ones(len(val_rows), bool) if select is None else np.asarray(select, bool)
    if select.shape != val_rows.shape or not select.any():
        raise KeffError(f"select must mark at least one of the {len(val_rows)} validation rows")
    t0 = time.perf_counter()
    neg = mine_hard_negatives(Q[fit_rows], A[fit_rows], g[fit_rows], cfg.hard_negatives) if cfg.hard_negatives else None
    monitor_rows = val_rows[_sample(len(val_rows), 2000, cfg.seed)]
    Qt, At, gt = (
        torch.from_numpy(np.ascontiguousarray(Q, np.float32)),
        torch.from_numpy(np.ascontiguousarray(A, np.float32)),
        torch.from_numpy(g),
    )
    fit_t = torch.from_numpy(fit_rows)
    bank_size = cfg.memory_bank or 4 * d

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        qh = query_head(d)
        dh = doc_head(d) if doc_head is not None else None
        for h in (qh, dh):
            if h is not None and hasattr(h, "init_from_data"):
                h.init_from_data(Qt[fit_t], At[fit_t])
        pred = None
        if cfg.predictor_weight > 0:
            pred = torch.nn.Linear(d, d)
            with torch.no_grad():
                pred.weight.copy_(torch.eye(d))
                pred.bias.zero_()
        log_tau = torch.nn.Parameter(torch.tensor(math.log(cfg.temperature)), requires_grad=cfg.learn_temperature)
        params = [*qh.parameters(), *(dh.parameters() if dh is not None else []), *(pred.parameters() if pred else [])]
        opt = torch.optim.AdamW([{"params": params}, {"params": [log_tau], "weight_decay": 0.0}],
                                lr=cfg.lr, weight_decay=cfg.weight_decay)  # fmt: skip
        lo_t, hi_t = math.log(cfg.temperature_bounds[0]), math.log(cfg.temperature_bounds[1])

        def docs(rows: Any) -> Any:
            return At[rows] if dh is None else dh(At[rows])

        def evaluate() -> tuple[np.ndarray, dict[str, np.ndarray]]:
            with torch.no_grad():
                val_t = torch.from_numpy(val_rows)
                qv = qh(Qt[val_t]).numpy()
                pool = docs(val_t).numpy() if cfg.validation_pool == "held-out" else docs(slice(None)).numpy()
                rr = group_rr(qv, pool, g[val_rows], g[val_rows] if cfg.validation_pool == "held-out" else g)
                mq = qh(Qt[torch.from_numpy(monitor_rows)]).numpy()
                mpos = docs(torch.from_numpy(monitor_rows)).numpy()
            return rr, {"raw": mq, "pos": mpos}

        def checks(
            epoch: int,
            state: dict[str, np.ndarray],
            base: dict[str, Any],
            losses: list[float],
            metrics: list[float],
            terms: dict[str, float],
            grads: dict[str, float],
        ) -> list[G.Check]:
            raw, pos = state["raw"], state["pos"]
            frozen = Q[monitor_rows]
            adapted = l2_normalize(raw)
            cos_pos = (adapted * l2_normalize(pos)).sum(axis=1)
            out = [
                G.norm_growth(np.linalg.norm(raw, axis=1), base["norms"], scale_invariant=True),
                G.positive_similarity_growth(cos_pos, base["pos"]),
                G.effective_rank(adapted),
                G.mean_pairwise_cosine(adapted),
                G.identity_distance(raw, frozen),
                G.anticorrelation(adapted, frozen, space="frozen"),
                G.anticorrelation(adapted, pos, space="target", start=base["target"]),
                G.divergence(losses, metrics, patience=cfg.patience),
            ]
            if epoch == 0:
                out.append(G.similarity_mismatch("cosine", "cosine"))
            if len(terms) > 1:
                out.append(G.loss_dominance(terms))
            if "isotropy" in grads:
                out.append(G.regulariser_gradient_share(grads["isotropy"], grads["infonce"], name="isotropy"))
            return out

        rr0, s0 = evaluate()
        cos0 = (l2_normalize(s0["raw"]) * l2_normalize(s0["pos"])).sum(axis=1)
        base = {"norms": np.linalg.norm(s0["raw"], axis=1), "pos": cos0, "target": float(cos0.mean())}
        losses, metrics = [math.nan], [float(rr0[select].mean())]
        history = [{"epoch": 0, "train_loss": None, "val_mrr": metrics[0], "temperature": cfg.temperature}]
        monitor.record(0, checks(0, s0, base, losses, metrics, {}, {}))
        best = (metrics[0], 0, _arrays(qh), _arrays(dh), rr0)
        stale, stopped = 0, "epochs"
        rng = np.random.default_rng(cfg.seed)
        bank = None
        with progress_bar("training adapter", cfg.epochs, enabled=progress) as bar:
            for epoch in range(1, cfg.epochs + 1):
                order = rng.permutation(len(fit_rows))
                total, seen = 0.0, 0
                terms_sum: dict[str, float] = {}
                grads: dict[str, float] = {}
                for start in range(0, len(order), cfg.batch_size):
                    local = order[start : start + cfg.batch_size]
                    rows = fit_t[torch.from_numpy(local)]
                    cand_local = np.unique(local if neg is None else np.concatenate([local, neg[local].ravel()]))
                    cand_local = cand_local[cand_local >= 0]
                    cand = fit_t[torch.from_numpy(cand_local)]
                    zq = F.normalize(qh(Qt[rows]), dim=1)
                    zd = F.normalize(docs(cand), dim=1)
                    tau = log_tau.clamp(lo_t, hi_t).exp()
                    logits = zq @ zd.T / tau
                    own = torch.from_numpy(np.searchsorted(cand_local, local))
                    same = gt[rows][:, None] == gt[cand][None, :]
                    same[torch.arange(len(local)), own] = False
                    logits = logits.masked_fill(same, float("-inf"))
                    parts = {"infonce": F.cross_entropy(logits, own)}
                    if cfg.isotropy_weight > 0:
                        parts["isotropy"] = cfg.isotropy_weight * _isotropy(zq, bank)
                        bank = torch.cat([zq.detach(), bank])[:bank_size] if bank is not None else zq.detach()
                    if pred is not None:
                        target = F.normalize(At[rows], dim=1)
                        parts["predictor"] = cfg.predictor_weight * (1 - F.cosine_similarity(pred(zq), target).mean())
                    loss = sum(parts.values())
                    value = float(loss.detach())
                    if not math.isfinite(value):
                        raise G.TrainingDiverged(
                            f"the adapter's training loss became {value} at epoch {epoch}: lower lr (now {cfg.lr:g})"
                        )
                    if start == 0 and len(parts) > 1 and "isotropy" in parts:
                        grads = G.gradient_norms(parts, params)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total += value * len(local)
                    seen += len(local)
                    for k, v in parts.items():
                        terms_sum[k] = terms_sum.get(k, 0.0) + float(v.detach()) * len(local)
                rr, state = evaluate()
                losses.append(total / seen)
                metrics.append(float(rr[select].mean()))
                tau_now = float(log_tau.detach().clamp(lo_t, hi_t).exp())
                history.append(
                    {"epoch": epoch, "train_loss": losses[-1], "val_mrr": metrics[-1], "temperature": tau_now}
                )
                bar.advance(1)
                terms = {k: v / seen for k, v in terms_sum.items()}
                try:
                    monitor.record(epoch, checks(epoch, state, base, losses, metrics, terms, grads))
                except G.GuardrailTripped as exc:
                    if any(c.name != "divergence" for c in exc.checks):
                        raise
                    stopped = "divergence guardrail"
                    break
                if metrics[-1] > best[0]:
                    best, stale = (metrics[-1], epoch, _arrays(qh), _arrays(dh), rr), 0
                else:
                    stale += 1
                    if stale >= cfg.patience:
                        stopped = "patience"
                        break
        extra = {}
        if pred is not None:
            extra["predictor_identity_distance"] = float(
                (pred.weight.detach() - torch.eye(d)).norm() / torch.eye(d).norm()
            )
    return InfoNCEResult(
        query_arrays=best[2],
        doc_arrays=best[3],
        best_epoch=best[1],
        val_identity=rr0,
        val_best=best[4],
        history=history,
        log=monitor.log,
        seconds=time.perf_counter() - t0,
        temperature=float(history[best[1]]["temperature"]),
        stopped=stopped,
        extra=extra,
    )


def _arrays(head: Any) -> dict[str, np.ndarray] | None:
    return None if head is None else head.arrays()


def config_dict(cfg: InfoNCEConfig) -> dict[str, Any]:
    """JSON-ready settings."""
    out = asdict(cfg)
    out["temperature_bounds"] = list(cfg.temperature_bounds)
    return out

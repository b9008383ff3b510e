"""The optimisation loop of :mod:`keff.train.finetune`: batching, InfoNCE, schedule, guardrails.

torch is imported inside the functions that need it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from keff.progress import progress_bar
from keff.train.loop import TrainingDiverged
from keff.train.st_model import raw_embedder

logger = logging.getLogger("keff.train.finetune")

#: Logit scale of the InfoNCE loss (cosine similarities times 20, i.e. temperature 0.05).
SCALE = 20.0
WEIGHT_DECAY = 0.01
GRAD_CLIP = 1.0
#: Abort when the mean pre-normalisation norm exceeds this multiple of its first value.
NORM_GROWTH_LIMIT = 10.0
#: Log loss, positive cosine and norm every this many steps (and on the first and last step).
LOG_EVERY = 10

Plan = list[tuple[int, np.ndarray]]


def plan_batches(n: int, batch_size: int, epochs: int, seed: int) -> Plan:
    """Every planned step as ``(epoch, row indices)``: a seeded shuffle per epoch.

    A trailing batch of a single row is dropped (it has no in-batch negative).

    Returns
    -------
    list of (int, numpy.ndarray of int, shape (b,))
    """
    rng = np.random.default_rng(seed)
    plan: Plan = []
    for epoch in range(1, epochs + 1):
        order = rng.permutation(n)
        plan += [(epoch, order[lo : lo + batch_size]) for lo in range(0, n, batch_size) if n - lo >= 2]
    return plan


def lr_factor(step: int, total: int, warmup_steps: int) -> float:
    """Learning-rate multiplier of 0-based ``step``: linear warmup to 1, then linear decay.

    Rises as ``(step + 1) / warmup_steps`` and then falls as
    ``(total - step) / (total - warmup_steps)``, so no step runs at a zero rate.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    return (total - step) / max(1, total - warmup_steps)


def unique_ids(texts: Sequence[str]) -> list[int]:
    """An id per text, equal for equal texts (numbered in order of first occurrence)."""
    seen: dict[str, int] = {}
    return [seen.setdefault(t, len(seen)) for t in texts]


def duplicate_mask(queries: Sequence[str], docs: Sequence[str]) -> Any:
    """Off-diagonal pairs (i, j) sharing their query or their document text.

    Returns
    -------
    torch.Tensor of bool, shape (b, b)
        True where column j must not serve as a negative of row i.
    """
    import torch

    qid = torch.tensor(unique_ids(queries))
    did = torch.tensor(unique_ids(docs))
    mask = (qid[:, None] == qid[None, :]) | (did[:, None] == did[None, :])
    return mask.fill_diagonal_(False)


def info_nce(q: Any, d: Any, duplicate: Any, scale: float = SCALE) -> tuple[Any, Any]:
    """Symmetric in-batch InfoNCE on cosine similarities (rows L2-normalised before the logits).

    Parameters
    ----------
    q, d : torch.Tensor, shape (b, dim)
        Raw (unnormalised) query and document embeddings; row i of each is a positive pair.
    duplicate : torch.Tensor of bool, shape (b, b)
        True where column j must not count as a negative of row i (see :func:`duplicate_mask`);
        masked out of the softmax.
    scale : float
        Multiplies the cosines before the softmax.

    Returns
    -------
    loss : torch.Tensor, shape ()
        Mean of the query->document and document->query cross-entropies.
    pos_cos : torch.Tensor, shape (b,)
        Cosine of each positive pair (detached).
    """
    import torch
    import torch.nn.functional as F

    cos = F.normalize(q, dim=1) @ F.normalize(d, dim=1).T
    logits = (scale * cos).masked_fill(duplicate, float("-inf"))
    target = torch.arange(q.shape[0])
    loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    return loss, cos.diagonal().detach()


def guard(record: dict[str, Any], norm_start: float, lr: float) -> None:
    """Raise :class:`TrainingDiverged` on a non-finite loss or a norm past the growth limit."""
    step = record["step"]
    if not math.isfinite(record["loss"]):
        raise TrainingDiverged(f"the loss became {record['loss']} at step {step}; lower lr (now {lr:g})")
    if not record["mean_norm"] <= NORM_GROWTH_LIMIT * norm_start:
        raise TrainingDiverged(
            f"mean embedding norm grew from {norm_start:.3f} to {record['mean_norm']:.3f} by step {step} "
            f"(limit {NORM_GROWTH_LIMIT:g}x): the model is growing norms instead of learning angles; "
            f"lower lr (now {lr:g})"
        )


def train_steps(
    model: Any,
    pairs: Sequence[tuple[str, str]],
    plan: Plan,
    *,
    lr: float,
    warmup: float,
    max_seconds: float,
    progress: bool | None,
) -> tuple[list[dict[str, Any]], str, float]:
    """Run the planned steps on ``model`` in place, or until ``max_seconds`` have passed.

    Parameters
    ----------
    model : sentence_transformers.SentenceTransformer
        Trained in place (all parameters that require a gradient); left in eval mode.
    pairs : sequence of (str, str)
        Training pairs indexed by ``plan``.
    plan : list of (int, numpy.ndarray)
        From :func:`plan_batches`.
    lr, warmup : float
        Peak AdamW rate, and the fraction of ``plan`` spent warming up.
    max_seconds : float
        Budget checked after every step (the first step always runs).
    progress : bool, optional
        Progress bar over steps.

    Returns
    -------
    log : list of dict
        One record per step taken: step, epoch, loss, mean_pos_cos, mean_norm, lr, pairs, seconds.
    stopped_by : {"epochs", "time"}
    seconds : float
        Wall-clock time of the loop.
    """
    import torch

    embed = raw_embedder(model)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=WEIGHT_DECAY)
    warmup_steps = math.ceil(warmup * len(plan))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, len(plan), warmup_steps))
    log: list[dict[str, Any]] = []
    stopped_by, start = "epochs", time.monotonic()
    model.train()
    with progress_bar("fine-tuning", len(plan), enabled=progress) as bar:
        for step, (epoch, idx) in enumerate(plan, start=1):
            queries, docs = [pairs[i][0] for i in idx], [pairs[i][1] for i in idx]
            q, d = embed(queries), embed(docs)
            loss, pos = info_nce(q, d, duplicate_mask(queries, docs))
            norm = float(torch.cat([q, d]).detach().norm(dim=1).mean())
            record = {"step": step, "epoch": epoch, "loss": float(loss.detach()), "mean_pos_cos": float(pos.mean()),
                      "mean_norm": norm, "lr": sched.get_last_lr()[0], "pairs": len(idx)}  # fmt: skip
            guard(record, log[0]["mean_norm"] if log else norm, lr)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, GRAD_CLIP)
            opt.step()
            sched.step()
            record["seconds"] = time.monotonic() - start
            log.append(record)
            bar.advance(1)
            out_of_time = record["seconds"] >= max_seconds and step < len(plan)
            if step == 1 or step % LOG_EVERY == 0 or step == len(plan) or out_of_time:
                logger.info("step %d/%d (epoch %d): loss %.4f, mean positive cos %.4f, mean norm %.3f",
                            step, len(plan), epoch, record["loss"], record["mean_pos_cos"], norm)  # fmt: skip
            if out_of_time:
                stopped_by = "time"
                logger.info("max_seconds=%g reached after step %d of %d: stopping", max_seconds, step, len(plan))
                break
    model.eval()
    return log, stopped_by, time.monotonic() - start

"""CPU fine-tuning of a sentence-transformers model on (query, document) pairs: domain specialists.

:func:`finetune_specialist` trains a copy of a base model (default keff's ``"minilm"``) with a
plain torch loop: seeded shuffling, symmetric in-batch-negatives InfoNCE on cosine similarities
(rows L2-normalised *before* the logits, scale 20, duplicate positives masked out), AdamW with
linear warmup and decay, gradient clipping at 1.0, and a wall-clock budget. Guardrails abort the
run with :class:`~keff.train.loop.TrainingDiverged` when the loss becomes NaN/infinite or the
mean pre-normalisation embedding norm grows past 10x its first value (the norm-growing failure of
unnormalised contrastive training). ``rotate_output=True`` builds a *drifted sibling*: the same
encoder followed by a trainable, randomly rotated output layer, whose vectors are unaligned with
the base model's until a map (e.g. :class:`keff.maps.Procrustes`) aligns them.

The output folder loads with ``keff.encoders.get_encoder(path)``; it is written atomically and
holds ``keff_finetune.json`` (report, hyper-parameters, seed, data hash, versions, log).
Importing this module does not import torch.
"""

from __future__ import annotations

import json
import logging
import math
import platform
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import keff
from keff.atomic import sha256_bytes
from keff.errors import DataError, KeffError, require
from keff.train import st_model
from keff.train.finetune_loop import (
    GRAD_CLIP,
    LOG_EVERY,
    NORM_GROWTH_LIMIT,
    SCALE,
    WEIGHT_DECAY,
    plan_batches,
    train_steps,
)

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass
class FinetuneReport:
    """What :func:`finetune_specialist` did.

    Attributes
    ----------
    steps : int
        Optimiser steps taken.
    epochs_done : float
        ``steps`` divided by the steps of one epoch (1.0 per full pass over the pairs).
    seconds : float
        Wall-clock time of the training loop (loading and saving excluded).
    pairs_used : int
        Pairs seen by those steps (with repeats across epochs).
    loss_first, loss_last : float
        InfoNCE loss of the first and of the last training batch.
    mean_pos_cos_first, mean_pos_cos_last : float
        Mean cosine of each query with its own document, on the first and on the last batch.
    norm_mean_last : float
        Mean pre-normalisation embedding norm (queries and documents) on the last batch.
    stopped_by : {"epochs", "time"}
        Whether all epochs ran or ``max_seconds`` cut the run.
    out_dir : str
        The saved sentence-transformers folder.
    """

    steps: int
    epochs_done: float
    seconds: float
    pairs_used: int
    loss_first: float
    loss_last: float
    mean_pos_cos_first: float
    mean_pos_cos_last: float
    norm_mean_last: float
    stopped_by: Literal["epochs", "time"]
    out_dir: str


def _check_pairs(pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    if isinstance(pairs, (str, bytes)):
        raise KeffError("pairs must be a sequence of (query, document) tuples, not a string")
    out = []
    for i, pair in enumerate(pairs):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise DataError("expected a (query, document) pair of two strings", item_id=f"pairs[{i}]")
        q, d = pair
        if not isinstance(q, str) or not isinstance(d, str) or not q.strip() or not d.strip():
            raise DataError("query and document must be non-empty strings", item_id=f"pairs[{i}]")
        out.append((q, d))
    if len(out) < 2:
        raise KeffError(f"need at least 2 pairs for in-batch negatives, got {len(out)}")
    return out


def _check_args(epochs: int, batch_size: int, lr: float, warmup: float, max_seconds: float, max_len: int) -> None:
    checks = [
        (epochs >= 1, f"epochs must be >= 1, got {epochs}"),
        (batch_size >= 2, f"batch_size must be >= 2 (in-batch negatives), got {batch_size}"),
        (lr > 0 and math.isfinite(lr), f"lr must be a positive number, got {lr}"),
        (0 <= warmup < 1, f"warmup is a fraction of the steps in [0, 1), got {warmup}"),
        (max_seconds > 0, f"max_seconds must be > 0, got {max_seconds}"),
        (max_len >= 1, f"train_max_seq_length must be >= 1, got {max_len}"),
    ]
    for ok, message in checks:
        if not ok:
            raise KeffError(message)


def _versions() -> dict[str, str]:
    import sentence_transformers
    import torch

    return {
        "keff": keff.__version__,
        "torch": torch.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "python": platform.python_version(),
    }


def _pairs_sha256(pairs: list[tuple[str, str]]) -> str:
    return sha256_bytes(json.dumps(pairs, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def finetune_specialist(
    pairs: Sequence[tuple[str, str]],
    out_dir: str | Path,
    *,
    base: str | Path = "minilm",
    epochs: int = 1,
    batch_size: int = 32,
    lr: float = 2e-5,
    warmup: float = 0.1,
    max_seconds: float = 900,
    train_max_seq_length: int = 128,
    seed: int = 0,
    rotate_output: bool = False,
    progress: bool | None = None,
) -> FinetuneReport:
    """Fine-tune ``base`` on (query, document) pairs and save it as a sentence-transformers folder.

    Parameters
    ----------
    pairs : sequence of (str, str)
        n >= 2 training pairs; each document is the positive of its query, the other documents
        of the batch are its negatives (a document or query text repeated within a batch is
        masked, never used as a negative of its own duplicate).
    out_dir : str or Path
        Destination folder. Written atomically (temporary folder beside it, then renamed); an
        existing folder is replaced only after success, and only if it is empty or a previous
        output of this function (holds ``keff_finetune.json``).
    base : str or Path, default "minilm"
        keff encoder name, sentence-transformers folder, or hub name (where a hub is reachable).
    epochs : int, default 1
        Passes over the shuffled pairs (a trailing batch of one pair is dropped).
    batch_size : int, default 32
        Pairs per step (>= 2); more pairs mean more in-batch negatives.
    lr : float, default 2e-5
        Peak AdamW learning rate (weight decay 0.01), reached after the warmup.
    warmup : float, default 0.1
        Fraction of the planned steps with a linear warmup; linear decay afterwards.
    max_seconds : float, default 900
        Wall-clock budget of the training loop, checked after every step (at least one step
        always runs); when reached, training stops and the model is saved as it is.
    train_max_seq_length : int, default 128
        Token limit while training (never above the model's own); the saved model keeps its
        original ``max_seq_length``.
    seed : int, default 0
        Seeds the shuffle, dropout (in a forked torch RNG state) and the rotation.
    rotate_output : bool, default False
        Insert a trainable ``Dense(d, d, bias=False)`` with identity activation after pooling and
        before normalisation, initialised to a seeded random orthogonal matrix: a sibling whose
        frame is rotated relative to ``base``.
    progress : bool, optional
        Show a progress bar (default: when stderr is a terminal).

    Returns
    -------
    FinetuneReport

    Raises
    ------
    DataError
        A pair that is not two non-empty strings (the message names its index).
    KeffError
        Invalid arguments, or an ``out_dir`` that is not safe to replace.
    TrainingDiverged
        NaN/infinite loss, or the mean pre-normalisation norm grew past 10x its first value.
    ModelNotAvailable
        ``base`` cannot be found or is not a sentence-transformers model.
    """
    torch = require("torch", "st")
    pairs = _check_pairs(pairs)
    _check_args(epochs, batch_size, lr, warmup, max_seconds, train_max_seq_length)
    out_dir = Path(out_dir).expanduser().absolute()
    st_model.check_out_dir(out_dir)
    folder = st_model.resolve_base_model(base)
    plan = plan_batches(len(pairs), batch_size, epochs, seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = st_model.load_model(folder)
        if rotate_output:
            model = st_model.with_rotation(model, seed)
        with st_model.max_seq_length(model, train_max_seq_length) as used_len:
            log, stopped_by, seconds = train_steps(
                model, pairs, plan, lr=lr, warmup=warmup, max_seconds=max_seconds, progress=progress
            )
    steps_per_epoch = len(plan) / epochs
    first, last = log[0], log[-1]
    report = FinetuneReport(
        steps=len(log), epochs_done=len(log) / steps_per_epoch, seconds=seconds,
        pairs_used=sum(r["pairs"] for r in log), loss_first=first["loss"], loss_last=last["loss"],
        mean_pos_cos_first=first["mean_pos_cos"], mean_pos_cos_last=last["mean_pos_cos"],
        norm_mean_last=last["mean_norm"], stopped_by=stopped_by, out_dir=str(out_dir),
    )  # fmt: skip
    meta = {
        "format_version": FORMAT_VERSION,
        "report": asdict(report),
        "params": {
            "base": str(base), "base_folder": str(folder), "epochs": epochs, "batch_size": batch_size, "lr": lr,
            "warmup": warmup, "max_seconds": max_seconds, "train_max_seq_length": train_max_seq_length,
            "train_max_seq_length_used": used_len, "seed": seed, "rotate_output": rotate_output,
            "loss": "symmetric in-batch InfoNCE on cosine", "scale": SCALE, "weight_decay": WEIGHT_DECAY,
            "grad_clip": GRAD_CLIP, "norm_growth_limit": NORM_GROWTH_LIMIT,
        },
        "data": {"n_pairs": len(pairs), "pairs_sha256": _pairs_sha256(pairs)},
        "versions": _versions(),
        "log": [r for r in log if r is first or r is last or r["step"] % LOG_EVERY == 0],
    }  # fmt: skip

    def write(tmp: Path) -> None:
        st_model.save_model(model, tmp)
        (tmp / st_model.MARKER).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")

    st_model.save_folder(out_dir, write)
    logger.info("saved fine-tuned model to %s (%d steps, stopped by %s)", out_dir, report.steps, stopped_by)
    return report

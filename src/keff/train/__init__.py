"""Torch training loops and guardrail monitors.

Importing :mod:`keff.train` does not import torch: the loop and the losses import it inside the
functions that need it. :mod:`keff.train.modules` (torch ``nn.Module`` classes) imports torch
at module level and is imported only by code that has already called
``keff.errors.require("torch", "st")``.
"""

from keff.train.guardrails import Check, GuardrailMonitor, GuardrailTripped
from keff.train.loop import EpochRecord, TrainingDiverged, TrainResult, train_model
from keff.train.losses import LOSSES, alignment_loss, cosine_loss, sq_distance_loss

__all__ = [
    "LOSSES",
    "Check",
    "EpochRecord",
    "GuardrailMonitor",
    "GuardrailTripped",
    "TrainResult",
    "TrainingDiverged",
    "alignment_loss",
    "cosine_loss",
    "sq_distance_loss",
    "train_model",
]

"""torch adapter heads over frozen vectors, each exactly the identity before training.

- ``linear``: ``x @ W + b`` with ``W = I``, ``b = 0``;
- ``lowrank``: ``x + (x @ U) @ V + b`` with ``V = 0`` (``U`` random, so gradients reach ``V``);
- ``mlp``: ``x + GELU(x @ W1 + b1) @ W2 + b2`` with ``W2 = 0``, ``b2 = 0``
  (:class:`keff.train.modules.ResidualNet` with an identity base).

Each head exports its weights with :meth:`arrays` as float32 numpy arrays in rows convention,
the names :class:`keff.adapters.QueryAdapter` stores. This module imports torch at import time:
import it only after ``keff.errors.require("torch", "st")``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from keff.errors import KeffError
from keff.train.infonce import HEAD_KINDS
from keff.train.modules import ResidualNet


def _np(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32))


class LinearHead(nn.Module):
    """``x @ W + b``, identity at start."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.W = nn.Parameter(torch.eye(dim))
        self.b = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.W + self.b

    def arrays(self) -> dict[str, np.ndarray]:
        return {"W": _np(self.W), "b": _np(self.b)}


class LowRankHead(nn.Module):
    """``x + (x @ U) @ V + b``, identity at start (``V = 0``)."""

    def __init__(self, dim: int, rank: int) -> None:
        super().__init__()
        if not 1 <= rank <= dim:
            raise KeffError(f"rank must be in [1, {dim}], got {rank}")
        self.U = nn.Parameter(torch.randn(dim, rank) / dim**0.5)
        self.V = nn.Parameter(torch.zeros(rank, dim))
        self.b = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + (x @ self.U) @ self.V + self.b

    def arrays(self) -> dict[str, np.ndarray]:
        return {"U": _np(self.U), "V": _np(self.V), "b": _np(self.b)}


class MLPHead(ResidualNet):
    """``x + GELU(x @ W1 + b1) @ W2 + b2``, identity at start."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__(dim, dim, hidden)

    def arrays(self) -> dict[str, np.ndarray]:
        return self.mlp_arrays()


def make_head(kind: str, dim: int, *, rank: int = 64, hidden: int = 256) -> nn.Module:
    """A fresh identity head of ``kind`` for ``dim``-wide vectors."""
    if kind == "linear":
        return LinearHead(dim)
    if kind == "lowrank":
        return LowRankHead(dim, rank)
    if kind == "mlp":
        return MLPHead(dim, hidden)
    raise KeffError(f"unknown adapter head {kind!r} (choose from {', '.join(HEAD_KINDS)})")

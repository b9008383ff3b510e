"""torch modules of the trained next-vector predictors (imports torch: import only after
``keff.errors.require("torch", "st")``). Each exports float32 numpy arrays with :meth:`arrays`,
the names :mod:`keff.predict.models` computes with.

The residual modules start from a learnt **base**: a softmax-weighted mean of the context units
whose weights start at the recency mean (``0.5 ** age``), so epoch 0 is the recency-mean baseline
and training can move the weights towards copy-last or the plain mean; each then adds a learnt
step that starts at zero.

- :class:`TransitionNet`: base + a low-rank linear step ``base @ A @ B`` (B starts at 0).
- :class:`GRUNet`: base + a step read from a GRU run over the k context units (input projected
  to ``hidden``, last state mapped back to the vector width).
- :class:`AttentionNet`: AMN-like attention memory: the last unit queries the context units
  (learnt query/key/value maps); base + the read value.
- :class:`MixtureNet`: a softmax-weighted sum of the context units, the weights from a small
  scorer of each unit with its position (a "mixture of context" head: it can only choose among
  inputs).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


def _np(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32))


def recency_logits(k: int, decay: float = 0.5) -> torch.Tensor:
    """Logits whose softmax is the recency-mean weights ``decay ** age`` (last unit age 0)."""
    return torch.tensor([(k - 1 - i) * math.log(decay) for i in range(k)], dtype=torch.float32)


class _Based(nn.Module):
    """The learnt base every residual module starts from."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.mix = nn.Parameter(recency_logits(k))

    def base(self, c: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bkd,k->bd", c, torch.softmax(self.mix, dim=0))


class TransitionNet(_Based):
    def __init__(self, dim: int, hidden: int, k: int) -> None:
        super().__init__(k)
        self.A = nn.Parameter(torch.randn(dim, hidden) / dim**0.5)
        self.B = nn.Parameter(torch.zeros(hidden, dim))

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        x = self.base(c)
        return x + x @ self.A @ self.B

    def arrays(self) -> dict[str, np.ndarray]:
        return {"mix": _np(self.mix), "A": _np(self.A), "B": _np(self.B)}


class GRUNet(_Based):
    def __init__(self, dim: int, hidden: int, k: int) -> None:
        super().__init__(k)
        self.inp = nn.Linear(dim, hidden)
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.out = nn.Linear(hidden, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        _, h = self.gru(self.inp(c))
        return self.base(c) + self.out(h[-1])

    def arrays(self) -> dict[str, np.ndarray]:
        g = self.gru
        return {
            "mix": _np(self.mix),
            "W_in": _np(self.inp.weight.T),
            "b_in": _np(self.inp.bias),
            "W_ih": _np(g.weight_ih_l0.T),
            "W_hh": _np(g.weight_hh_l0.T),
            "b_ih": _np(g.bias_ih_l0),
            "b_hh": _np(g.bias_hh_l0),
            "W_out": _np(self.out.weight.T),
            "b_out": _np(self.out.bias),
        }


class MixtureNet(nn.Module):
    def __init__(self, dim: int, hidden: int, k: int) -> None:
        super().__init__()
        self.score = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.pos = nn.Parameter(torch.zeros(k))

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        w = torch.softmax(self.score(c).squeeze(-1) + self.pos, dim=1)
        return (w.unsqueeze(-1) * c).sum(dim=1)

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "W1": _np(self.score[0].weight.T),
            "b1": _np(self.score[0].bias),
            "w2": _np(self.score[2].weight[0]),
            "b2": _np(self.score[2].bias),
            "pos": _np(self.pos),
        }


class AttentionNet(_Based):
    def __init__(self, dim: int, hidden: int, k: int) -> None:
        super().__init__(k)
        self.q = nn.Linear(dim, hidden)
        self.k = nn.Linear(dim, hidden)
        self.v = nn.Linear(dim, dim)
        nn.init.zeros_(self.v.weight)
        nn.init.zeros_(self.v.bias)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        q = self.q(c[:, -1])
        att = torch.softmax(torch.einsum("bh,bkh->bk", q, self.k(c)) / q.shape[1] ** 0.5, dim=1)
        return self.base(c) + torch.einsum("bk,bkd->bd", att, self.v(c))

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "mix": _np(self.mix),
            "Wq": _np(self.q.weight.T),
            "bq": _np(self.q.bias),
            "Wk": _np(self.k.weight.T),
            "bk": _np(self.k.bias),
            "Wv": _np(self.v.weight.T),
            "bv": _np(self.v.bias),
        }

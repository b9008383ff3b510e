"""torch modules of the trained next-vector predictors (imports torch: import only after
``keff.errors.require("torch", "st")``). Each exports float32 numpy arrays with :meth:`arrays`,
the names :mod:`keff.predict.models` computes with.

- :class:`GRUNet`: a GRU over the k context units (input projected to ``hidden``), its last
  state mapped back to the vector width and added to the last unit (so it starts near copy-last
  and learns the step).
- :class:`MixtureNet`: a softmax-weighted sum of the context units, the weights from a small
  scorer of each unit with its position (a "mixture of context" head: it can only choose among
  inputs).
- :class:`AttentionNet`: AMN-like attention memory: the last unit queries the context units
  (learnt query/key/value maps); the read value is added to the last unit.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def _np(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32))


class GRUNet(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.inp = nn.Linear(dim, hidden)
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.out = nn.Linear(hidden, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        _, h = self.gru(self.inp(c))
        return c[:, -1] + self.out(h[-1])

    def arrays(self) -> dict[str, np.ndarray]:
        g = self.gru
        return {
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


class AttentionNet(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.q = nn.Linear(dim, hidden)
        self.k = nn.Linear(dim, hidden)
        self.v = nn.Linear(dim, dim)
        nn.init.zeros_(self.v.weight)
        nn.init.zeros_(self.v.bias)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        q = self.q(c[:, -1])
        att = torch.softmax(torch.einsum("bh,bkh->bk", q, self.k(c)) / q.shape[1] ** 0.5, dim=1)
        return c[:, -1] + torch.einsum("bk,bkd->bd", att, self.v(c))

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "Wq": _np(self.q.weight.T),
            "bq": _np(self.q.bias),
            "Wk": _np(self.k.weight.T),
            "bk": _np(self.k.bias),
            "Wv": _np(self.v.weight.T),
            "bv": _np(self.v.bias),
        }

"""torch modules used by keff's trainable maps.

This module imports torch at import time: import it only after
``keff.errors.require("torch", "st")`` (never from the numpy core).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class ResidualNet(nn.Module):
    """``base(x) + Linear(hidden -> d_t)(Dropout(GELU(Linear(d_s -> hidden)(x))))``.

    The base is frozen: ``x`` itself (identity) or ``x @ base_W + base_b``. The last layer starts
    at zero, so before any training step the module equals its base exactly. The MLP output is
    multiplied by a fixed ``out_scale`` (1 until :meth:`init_from_data` sets it); :meth:`mlp_arrays`
    folds it into the last layer.

    Parameters
    ----------
    source_dim, target_dim, hidden : int
        Dimensions d_s, d_t and the hidden width.
    base_W : ndarray, shape (d_s, d_t), optional
        Frozen linear base (rows convention); None means the identity (needs d_s == d_t).
    base_b : ndarray, shape (d_t,), optional
        Bias of the linear base (zeros when omitted).
    dropout : float, default 0.0
        Dropout on the hidden activations (training only).
    """

    def __init__(
        self,
        source_dim: int,
        target_dim: int,
        hidden: int,
        *,
        base_W: np.ndarray | None = None,
        base_b: np.ndarray | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if base_W is None and source_dim != target_dim:
            raise ValueError(f"an identity base needs equal dims, got {source_dim} -> {target_dim}")
        self.fc1 = nn.Linear(source_dim, hidden)
        self.act = nn.GELU()  # exact erf form (approximate="none")
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, target_dim)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)
        self.register_buffer("out_scale", torch.ones(()), persistent=False)
        self.linear_base = base_W is not None
        if self.linear_base:
            b = np.zeros(target_dim, np.float32) if base_b is None else base_b
            # Frozen and not part of state_dict: the base is fitted in closed form, not trained.
            self.register_buffer("base_W", torch.as_tensor(np.asarray(base_W, np.float32)), persistent=False)
            self.register_buffer("base_b", torch.as_tensor(np.asarray(b, np.float32)), persistent=False)

    def base(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen base map, (b, d_s) -> (b, d_t)."""
        return x @ self.base_W + self.base_b if self.linear_base else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.out_scale * self.fc2(self.drop(self.act(self.fc1(x))))

    @torch.no_grad()
    def init_from_data(self, X: torch.Tensor, Y: torch.Tensor) -> None:
        """Data-dependent initialisation on the training rows (the output stays the base's).

        - The first layer is rescaled and shifted so each hidden pre-activation has mean 0 and
          standard deviation 1 on ``X``: inputs such as unit-norm embeddings otherwise sit in
          GELU's near-linear range, and the MLP starts as (and long stays) a linear map.
        - ``out_scale`` is set to the root-mean-square of the base's residual ``Y - base(X)``,
          so AdamW's roughly ``lr``-sized steps move the output relative to the residual being
          learned, not by a fixed amount that can dwarf a small residual.

        Parameters
        ----------
        X : torch.Tensor, shape (n, d_s)
        Y : torch.Tensor, shape (n, d_t)
        """
        pre = X @ self.fc1.weight.T
        mean, std = pre.mean(dim=0), pre.std(dim=0, unbiased=False)
        std = torch.where(std > 0, std, torch.ones_like(std))
        self.fc1.weight.div_(std[:, None])
        self.fc1.bias.copy_(-mean / std)
        rms = float((Y - self.base(X)).pow(2).mean().sqrt())
        self.out_scale.fill_(rms if rms > 0 else 1.0)

    def mlp_arrays(self) -> dict[str, np.ndarray]:
        """The MLP weights as float32 numpy arrays in rows convention, ``out_scale`` folded in:
        W1 (d_s, hidden), b1 (hidden,), W2 (hidden, d_t), b2 (d_t,)."""

        def arr(t: torch.Tensor) -> np.ndarray:
            return np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32))

        return {
            "W1": arr(self.fc1.weight.T),
            "b1": arr(self.fc1.bias),
            "W2": arr(self.out_scale * self.fc2.weight.T),
            "b2": arr(self.out_scale * self.fc2.bias),
        }

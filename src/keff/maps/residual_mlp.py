"""Residual MLP map: a frozen base map plus a small trained MLP correction.

``transform(X) = base(X) + GELU(X @ W1 + b1) @ W2 + b2`` with the base either the identity
(equal dims) or a closed-form ridge :class:`~keff.maps.affine.Affine` map fitted on the training
rows. Training uses torch (imported inside :meth:`ResidualMLP.fit` only, via the ``st`` extra);
inference is plain numpy from the stored float32 arrays, so applying a saved map never imports
torch.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import erf

from keff.errors import FormatError, KeffError, NotFittedError, require
from keff.estimator import COUNT, ArraySpec, ScalarSpec, is_finite_number
from keff.maps.affine import Affine
from keff.maps.base import Floor, Map, product_floor, register_map, resolve_base
from keff.sef import shown
from keff.train.loop import train_model
from keff.train.losses import LOSSES, alignment_loss

BASES = ("auto", "identity", "linear")
_SQRT_HALF = np.float32(1.0 / math.sqrt(2.0))


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, ``0.5 x (1 + erf(x / sqrt 2))``, as torch's default ``nn.GELU``.
    Computed with one temporary, in place (the element-wise erf is most of the map's cost
    beyond its matrix products)."""
    g = x * _SQRT_HALF
    erf(g, out=g)
    g += 1.0
    g *= x
    g *= 0.5
    return g


def split_rows(n: int, val_frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/validation row indices; ``round(val_frac * n)`` (at least 1) rows held out."""
    if not 0.0 <= val_frac < 1.0:
        raise KeffError(f"val_frac must be in [0, 1), got {val_frac!r}")
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, round(val_frac * n)) if val_frac > 0 else 0
    if n - n_val < 2:
        raise KeffError(f"{n} rows leave {n - n_val} for training after holding out {n_val}: need at least 2")
    return np.sort(order[n_val:]), np.sort(order[:n_val])


@register_map("mlp")
class ResidualMLP(Map):
    """Base map plus a one-hidden-layer GELU MLP, trained with torch, applied with numpy.

    The MLP's last layer starts at zero, so the untrained map equals its base exactly. The first
    layer is standardised on the training rows and the MLP output scaled to the base's residual
    (:meth:`keff.train.modules.ResidualNet.init_from_data`); the scale is folded into ``W2_``
    and ``b2_``, so inference is exactly the formula below.

    ``transform(X) = base(X) + GELU(X @ W1_ + b1_) @ W2_ + b2_`` (exact erf GELU), in numpy.

    Parameters
    ----------
    hidden : int, default 512
        Hidden width.
    base : {"auto", "identity", "linear"}, default "auto"
        Frozen base: the identity (needs d_s == d_t), a ridge :class:`Affine` map fitted on the
        training rows (alpha by GCV), or "auto" (identity when dims match, else linear).
    loss : {"cosine", "mse"}, default "cosine"
        ``1 - cos(pred, y)`` or the squared Euclidean distance (see :mod:`keff.train.losses`).
    mse_weight : float, default 0.0
        Weight of an added squared-distance term.
    lr, weight_decay : float
        AdamW settings.
    epochs : int, default 200
        Maximum epochs (0: no training; the map is its base).
    batch_size : int, default 256
    val_frac : float, default 0.1
        Share of rows held out (seeded) for early stopping; 0 trains on all rows for ``epochs``.
    patience : int, default 10
        Epochs without a validation improvement before stopping; the best epoch's weights are kept.
    seed : int, default 0
        Seeds the split, the initialisation, shuffling and dropout.
    dropout : float, default 0.0
        Dropout on the hidden layer during training.

    Attributes
    ----------
    W1_ : ndarray, shape (d_source, hidden), float32
    b1_ : ndarray, shape (hidden,), float32
    W2_ : ndarray, shape (hidden, d_target), float32
    b2_ : ndarray, shape (d_target,), float32
    base_W_ : ndarray, shape (d_source, d_target), float32
        Only with the linear base; ``base_b_`` (d_target,) likewise.
    base_ : str
        The resolved base ("identity" or "linear"); ``base_alpha_`` is its ridge alpha (or None).
    best_epoch_ : int
        Epoch whose weights were kept (0: the untrained map).
    history_ : list of dict
        Per epoch: ``epoch``, ``train_loss``, ``val_loss``, ``output_norm`` (not saved to SEF).
    train_rows_, val_rows_ : ndarray of int
        Rows of the fitted X used for training and for early stopping (not saved to SEF).
    """

    _state = {
        "W1_": ("source_dim_", "hidden"),
        "b1_": ("hidden",),
        "W2_": ("hidden", "target_dim_"),
        "b2_": ("target_dim_",),
    }
    _base_state = {"base_W_": ArraySpec(("source_dim_", "target_dim_")), "base_b_": ArraySpec(("target_dim_",))}
    _scalars = {
        "base_": ScalarSpec(str, choices=("identity", "linear")),
        "base_alpha_": ScalarSpec(float, minimum=0, optional=True),
        "best_epoch_": COUNT,
    }

    def __init__(
        self,
        hidden: int = 512,
        base: str = "auto",
        loss: str = "cosine",
        mse_weight: float = 0.0,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        epochs: int = 200,
        batch_size: int = 256,
        val_frac: float = 0.1,
        patience: int = 10,
        seed: int = 0,
        dropout: float = 0.0,
    ) -> None:
        self.hidden = hidden
        self.base = base
        self.loss = loss
        self.mse_weight = mse_weight
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.val_frac = val_frac
        self.patience = patience
        self.seed = seed
        self.dropout = dropout

    # -- fitting --------------------------------------------------------------------------
    def _check_params(self) -> None:
        if isinstance(self.hidden, bool) or not isinstance(self.hidden, int) or self.hidden < 1:
            raise KeffError(f"hidden must be a positive int, got {shown(self.hidden)}")
        if not isinstance(self.loss, str) or self.loss not in LOSSES:
            raise KeffError(f"unknown loss {shown(self.loss)}: choose one of {', '.join(LOSSES)}")
        if not (is_finite_number(self.dropout) and 0.0 <= self.dropout < 1.0):
            raise KeffError(f"dropout must be in [0, 1), got {shown(self.dropout)}")
        if not (is_finite_number(self.lr) and self.lr > 0):
            raise KeffError(f"lr must be > 0, got {shown(self.lr)}")
        if not isinstance(self.base, str) or self.base not in BASES:
            raise KeffError(f"base must be one of {', '.join(map(repr, BASES))}; got {shown(self.base)}")

    def _fit(self, X: np.ndarray, Y: np.ndarray) -> None:
        self._check_params()
        base = resolve_base(self.base, BASES, X.shape[1], Y.shape[1], unequal="linear")
        train, val = split_rows(X.shape[0], self.val_frac, self.seed)
        base_W = base_b = None
        self.base_alpha_ = None
        if base == "linear":
            affine = Affine().fit(X[train], Y[train])
            base_W, base_b, self.base_alpha_ = affine.W_, affine.b_, float(affine.alpha_)
        result = self._train(X, Y, train, val, base_W, base_b)
        for name, arr in result["arrays"].items():
            setattr(self, f"{name}_", arr)
        if base == "linear":
            self.base_W_, self.base_b_ = base_W, base_b
        self.base_ = base
        self.best_epoch_ = result["best_epoch"]
        self.history_ = result["history"]
        self.stopped_early_ = result["stopped_early"]
        self.train_rows_, self.val_rows_ = train, val

    def _train(
        self,
        X: np.ndarray,
        Y: np.ndarray,
        train: np.ndarray,
        val: np.ndarray,
        base_W: np.ndarray | None,
        base_b: np.ndarray | None,
    ) -> dict[str, Any]:
        """Build the torch module at its (seeded) initialisation and run the training loop."""
        torch = require("torch", "st")
        from keff.train.modules import ResidualNet  # imports torch: only when a map is trained

        loss_fn = alignment_loss(self.loss, self.mse_weight)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            net = ResidualNet(X.shape[1], Y.shape[1], self.hidden, base_W=base_W, base_b=base_b, dropout=self.dropout)
        # Fancy indexing copies, so read-only inputs (np.load mmap) are fine for from_numpy.
        X_train, Y_train = torch.from_numpy(X[train]), torch.from_numpy(Y[train])
        val_pair = (torch.from_numpy(X[val]), torch.from_numpy(Y[val])) if val.size else None
        net.init_from_data(X_train, Y_train)
        result = train_model(
            net,
            loss_fn,
            X_train,
            Y_train,
            val_pair,
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            patience=self.patience,
            seed=self.seed,
        )
        return {
            "arrays": net.mlp_arrays(),
            "best_epoch": result.best_epoch,
            "history": [r.to_dict() for r in result.history],
            "stopped_early": result.stopped_early,
        }

    # -- applying -------------------------------------------------------------------------
    def base_transform(self, X: np.ndarray) -> np.ndarray:
        """The frozen base alone, (n, d_source) -> (n, d_target)."""
        self._check_fitted()
        return X @ self.base_W_ + self.base_b_ if self.base_ == "linear" else X

    def _transform(self, X: np.ndarray) -> np.ndarray:
        pre = X @ self.W1_
        pre += self.b1_
        out = gelu(pre) @ self.W2_
        out += self.b2_
        out += self.base_transform(X)
        return out

    def matmul_floor(self, rng: np.random.Generator) -> Floor:
        """``x @ Wb + (x @ W1) @ W2`` with the linear base, ``(x @ W1) @ W2`` with the identity:
        the products of :meth:`transform` (see :meth:`Map.matmul_floor`)."""
        self._check_fitted()
        chains = [(self.W1_.shape, self.W2_.shape)]
        if self.base_ == "linear":
            chains.insert(0, (self.base_W_.shape,))
        return product_floor(rng, *chains)

    def fit_report(self) -> dict[str, Any]:
        """Training summary: base, split sizes, best epoch and loss, early stop, per-epoch history."""
        self._check_fitted()
        if not hasattr(self, "history_"):
            raise NotFittedError(
                "this ResidualMLP was loaded from a file: its training history is not saved "
                "(pass fit_report() as save(meta=...) to keep it)"
            )
        return {
            "base": self.base_,
            "base_alpha": self.base_alpha_,
            "n_train": int(self.train_rows_.size),
            "n_val": int(self.val_rows_.size),
            "epochs_run": len(self.history_) - 1,
            "best_epoch": self.best_epoch_,
            "best_val_loss": self.history_[self.best_epoch_]["val_loss"],
            "stopped_early": self.stopped_early_,
            "history": self.history_,
        }

    # -- state ----------------------------------------------------------------------------
    def _state_specs(self) -> dict[str, ArraySpec]:
        """The MLP's arrays, and the base's with a linear base."""
        linear = resolve_base(self.base, BASES, self.source_dim_, self.target_dim_, unequal="linear") == "linear"
        return {**self._state, **(self._base_state if linear else {})}

    def _after_restore(self) -> None:
        base = resolve_base(self.base, BASES, self.source_dim_, self.target_dim_, unequal="linear")
        if getattr(self, "base_", base) != base:
            raise FormatError(f"ResidualMLP records base {self.base_!r} but base={self.base!r} resolves to {base!r}")
        self.base_ = base

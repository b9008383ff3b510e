"""Row-wise vector losses for training maps and adapters (torch imported on first call).

Every loss takes ``pred`` and ``target`` tensors of shape (n, d) and returns a scalar tensor: the
mean over rows of a per-row loss, so a weighted mean of minibatch losses equals the full-set loss.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from keff.errors import KeffError

LossFn = Callable[[Any, Any], Any]

#: Loss names accepted by :func:`alignment_loss`.
LOSSES = ("cosine", "mse")


def cosine_loss(pred: Any, target: Any) -> Any:
    """Mean of ``1 - cos(pred_i, target_i)`` over rows.

    Parameters
    ----------
    pred, target : torch.Tensor, shape (n, d)

    Returns
    -------
    torch.Tensor, shape ()
    """
    import torch.nn.functional as F

    return 1.0 - F.cosine_similarity(pred, target, dim=1, eps=1e-8).mean()


def sq_distance_loss(pred: Any, target: Any) -> Any:
    """Mean over rows of the squared Euclidean distance ``||pred_i - target_i||^2``.

    Summed over dimensions (not averaged), so for unit vectors it equals
    ``2 - 2 cos`` and sits on the same scale as :func:`cosine_loss` whatever the dimension.

    Parameters
    ----------
    pred, target : torch.Tensor, shape (n, d)

    Returns
    -------
    torch.Tensor, shape ()
    """
    return (pred - target).pow(2).sum(dim=1).mean()


def alignment_loss(kind: str = "cosine", mse_weight: float = 0.0) -> LossFn:
    """The loss ``kind`` (``"cosine"`` or ``"mse"``) plus ``mse_weight`` times :func:`sq_distance_loss`.

    Parameters
    ----------
    kind : {"cosine", "mse"}
        Main loss; ``"mse"`` is :func:`sq_distance_loss`.
    mse_weight : float, default 0.0
        Weight (>= 0) of an added squared-distance term.

    Returns
    -------
    callable
        ``loss(pred, target) -> scalar tensor``.
    """
    if kind not in LOSSES:
        raise KeffError(f"unknown loss {kind!r}: choose one of {', '.join(LOSSES)}")
    if not mse_weight >= 0:
        raise KeffError(f"mse_weight must be >= 0, got {mse_weight!r}")
    main = cosine_loss if kind == "cosine" else sq_distance_loss
    if mse_weight == 0:
        return main

    def combined(pred: Any, target: Any) -> Any:
        return main(pred, target) + mse_weight * sq_distance_loss(pred, target)

    return combined

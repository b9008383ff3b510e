"""Next-vector predictors without training loops: the honest baselines every model must beat.

Each takes contexts (n, k, d) (oldest unit first) and returns predicted next vectors (n, d):

- :class:`CopyLast`: the last context unit;
- :class:`ContextMean`: the mean of the context;
- :class:`RecencyMean`: a mean weighted ``decay ** age`` (the last unit has age 0);
- :class:`RidgeContext`: ridge regression from the stacked context (k x d) to the next vector;
- :class:`KNNTransition`: the successors of the nearest training contexts (cosine on the
  stacked, normalised context), averaged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from keff.arrays import l2_normalize
from keff.errors import FormatError, KeffError
from keff.estimator import COUNT, ArraySpec, Estimator, is_finite_number, rebuild, registrar
from keff.sef import load_sef, save_sef, shown

#: The predictor registry: short name -> class (filled by :func:`register_predictor`).
PREDICTORS: dict[str, type[Predictor]] = {}
#: The same classes by class name, as SEF files record them.
PREDICTOR_TYPES: dict[str, type[Predictor]] = {}
#: The SEF kind of a saved predictor.
SEF_KIND = "predictor"


#: Class decorator: register a predictor class under a short name (and its class name).
register_predictor = registrar("predictor", PREDICTORS, PREDICTOR_TYPES)


def check_contexts(contexts: Any, targets: Any = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Contexts as float32 (n, k, d) and targets as (n, d), finite and matching."""
    C = np.asarray(contexts, dtype=np.float32)
    if C.ndim != 3 or 0 in C.shape:
        raise KeffError(f"contexts must be a non-empty (n, k, d) array, got shape {C.shape}")
    if not np.isfinite(C).all():
        raise KeffError("contexts contain NaN or infinite values")
    if targets is None:
        return C, None
    T = np.asarray(targets, dtype=np.float32)
    if T.shape != (C.shape[0], C.shape[2]):
        raise KeffError(f"targets must have shape {(C.shape[0], C.shape[2])} to match the contexts, got {T.shape}")
    if not np.isfinite(T).all():
        raise KeffError("targets contain NaN or infinite values")
    return C, T


class Predictor(Estimator):
    """Base class: ``fit(contexts, targets)``, ``predict(contexts)``."""

    registered_as: ClassVar[str] = ""
    _fitted_marker = "n_features_in_"
    _scalars = {"context_length_": COUNT}

    def fit(self, contexts: Any, targets: Any) -> Predictor:
        C, T = check_contexts(contexts, targets)
        self._check_params()
        self._fit(C, T)
        self.n_features_in_ = int(C.shape[2])
        self.context_length_ = int(C.shape[1])
        return self

    def predict(self, contexts: Any) -> np.ndarray:
        self._check_fitted()
        C, _ = check_contexts(contexts)
        if C.shape[2] != self.n_features_in_:
            raise KeffError(f"{type(self).__name__} was fitted on {self.n_features_in_}-d vectors; got {C.shape[2]}-d")
        return np.asarray(self._predict(C), dtype=np.float32)

    def save(self, path: str | Path, *, meta: dict[str, Any] | None = None) -> Path:
        """Write the fitted predictor to one SEF file (``meta``: provenance such as the encoder)."""
        return save_sef(path, self.get_state(), {"kind": SEF_KIND, **self.describe(), "provenance": meta or {}})

    def _fit(self, C: np.ndarray, T: np.ndarray) -> None:
        """Most baselines learn nothing."""

    def _predict(self, C: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


@register_predictor("copy-last")
class CopyLast(Predictor):
    def _predict(self, C: np.ndarray) -> np.ndarray:
        return C[:, -1]


@register_predictor("context-mean")
class ContextMean(Predictor):
    def _predict(self, C: np.ndarray) -> np.ndarray:
        return C.mean(axis=1)


@register_predictor("recency-mean")
class RecencyMean(Predictor):
    """Weights ``decay ** age`` (age 0 for the last unit), normalised to sum to 1."""

    def __init__(self, decay: float = 0.5) -> None:
        self.decay = decay

    def _check_params(self) -> None:
        if not (is_finite_number(self.decay) and 0 < self.decay <= 1):
            raise KeffError(f"decay must be in (0, 1], got {shown(self.decay)}")

    def _predict(self, C: np.ndarray) -> np.ndarray:
        w = self.decay ** np.arange(C.shape[1] - 1, -1, -1, dtype=np.float64)
        return np.einsum("nkd,k->nd", C, (w / w.sum()).astype(np.float32))


@register_predictor("ridge")
class RidgeContext(Predictor):
    """``[c_1 .. c_k] @ W_ + b_`` fitted in closed form with an L2 penalty ``alpha`` on W."""

    _state = {"W_": ArraySpec(("m", "n_features_in_")), "b_": ArraySpec(("n_features_in_",))}

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def _check_params(self) -> None:
        if not (is_finite_number(self.alpha) and self.alpha >= 0):
            raise KeffError(f"alpha must be >= 0, got {shown(self.alpha)}")

    def _fit(self, C: np.ndarray, T: np.ndarray) -> None:
        X = C.reshape(len(C), -1).astype(np.float64)
        mx, my = X.mean(axis=0), T.mean(axis=0, dtype=np.float64)
        Xc, Yc = X - mx, T - my
        gram = Xc.T @ Xc + self.alpha * np.eye(X.shape[1])
        W = np.linalg.lstsq(gram, Xc.T @ Yc, rcond=None)[0]
        self.W_ = W.astype(np.float32)
        self.b_ = (my - mx @ W).astype(np.float32)

    def _after_restore(self) -> None:
        if self.W_.shape[0] != self.context_length_ * self.n_features_in_:
            raise FormatError(f"RidgeContext W_ has {self.W_.shape[0]} rows for k x d = "
                              f"{self.context_length_} x {self.n_features_in_}")  # fmt: skip

    def _predict(self, C: np.ndarray) -> np.ndarray:
        if C.shape[1] != self.context_length_:
            raise KeffError(f"RidgeContext was fitted on contexts of {self.context_length_} units; got {C.shape[1]}")
        return C.reshape(len(C), -1) @ self.W_ + self.b_


@register_predictor("knn-transition")
class KNNTransition(Predictor):
    """The mean successor of the ``n_neighbors`` training contexts nearest by cosine (stacked,
    each unit normalised)."""

    _state = {"keys_": ArraySpec(("n", "m")), "successors_": ArraySpec(("n", "n_features_in_"))}

    def __init__(self, n_neighbors: int = 5) -> None:
        self.n_neighbors = n_neighbors

    def _check_params(self) -> None:
        if isinstance(self.n_neighbors, bool) or not isinstance(self.n_neighbors, int) or self.n_neighbors < 1:
            raise KeffError(f"n_neighbors must be a positive int, got {shown(self.n_neighbors)}")

    @staticmethod
    def _keys(C: np.ndarray) -> np.ndarray:
        return l2_normalize(l2_normalize(C.reshape(-1, C.shape[2])).reshape(len(C), -1))

    def _fit(self, C: np.ndarray, T: np.ndarray) -> None:
        self.keys_ = self._keys(C).astype(np.float32)
        self.successors_ = T.astype(np.float32)

    def _predict(self, C: np.ndarray) -> np.ndarray:
        if C.shape[1] != self.context_length_:
            raise KeffError(f"KNNTransition was fitted on contexts of {self.context_length_} units; got {C.shape[1]}")
        k = min(self.n_neighbors, len(self.keys_))
        out = np.empty((len(C), self.successors_.shape[1]), np.float32)
        q = self._keys(C)
        for lo in range(0, len(q), 1024):
            s = q[lo : lo + 1024] @ self.keys_.T
            top = np.argpartition(-s, k - 1, axis=1)[:, :k]
            out[lo : lo + 1024] = self.successors_[top].mean(axis=1)
        return out


def load_predictor(path: str | Path) -> tuple[Predictor, dict[str, Any]]:
    """Load a predictor saved with :meth:`Predictor.save`: ``(predictor, meta)``; any defect is a
    :class:`~keff.errors.FormatError` naming the file."""
    arrays, meta = load_sef(path, kind=SEF_KIND)
    try:
        return rebuild(PREDICTOR_TYPES, meta, arrays, what="predictor"), meta  # type: ignore[return-value]
    except FormatError as exc:
        raise FormatError(f"{path}: {exc}") from None

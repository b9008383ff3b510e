"""The asymmetric adapter: a query head and a document head, trained together.

The document head is applied once to the stored document vectors (:meth:`AsymAdapter.transform_docs`,
``keff adapt apply-docs``), so an index is transformed, never re-encoded; queries go through the
query head at search time. Saved as one SEF file of kind ``"asym-adapter"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from keff.adapters.heads import AdapterTraining, apply_head, head_specs
from keff.arrays import as_matrix
from keff.errors import FormatError, KeffError
from keff.estimator import ArraySpec, Estimator, rebuild
from keff.sef import load_sef, save_sef
from keff.train.infonce import InfoNCEResult

SEF_KIND = "asym-adapter"


class AsymAdapter(AdapterTraining, Estimator):
    """Separate query and document heads (same kind), identity at start, trained with InfoNCE.

    See :class:`keff.adapters.heads.AdapterTraining` for the parameters and ``fit``.
    """

    _scalars = AdapterTraining._adapter_scalars
    _fitted_marker = "n_features_in_"

    _asymmetric = True

    def _store(self, result: InfoNCEResult, dim: int) -> None:
        for side, arrays in (("q_", result.query_arrays), ("d_", result.doc_arrays)):
            for name, arr in arrays.items():
                setattr(self, f"{side}{name}_", arr)
        self.n_features_in_ = dim

    def _state_specs(self) -> dict[str, ArraySpec]:
        return {**head_specs(self.head, "q_"), **head_specs(self.head, "d_")}

    def _shape_symbols(self, specs: Any) -> dict[str, int]:
        return {**super()._shape_symbols(specs), "d": self.n_features_in_}

    def _side(self, side: str) -> dict[str, np.ndarray]:
        return {name[2:-1]: getattr(self, name) for name in head_specs(self.head, side)}

    def _apply(self, side: str, X: Any) -> np.ndarray:
        self._check_fitted()
        X = as_matrix(X)
        if X.shape[1] != self.n_features_in_:
            raise KeffError(f"AsymAdapter was fitted on {self.n_features_in_}-d vectors; got {X.shape[1]}-d")
        return np.asarray(apply_head(self.head, self._side(side), X), dtype=np.float32)

    def transform_queries(self, X: Any) -> np.ndarray:
        """Query vectors (n, d) through the query head."""
        return self._apply("q_", X)

    def transform_docs(self, X: Any) -> np.ndarray:
        """Document vectors (n, d) through the document head (once, when the index is built)."""
        return self._apply("d_", X)

    def save(self, path: str | Path, *, meta: dict[str, Any] | None = None) -> Path:
        return save_sef(path, self.get_state(), {"kind": SEF_KIND, **self.describe(), "provenance": meta or {}})

    @classmethod
    def load(cls, path: str | Path) -> tuple[AsymAdapter, dict[str, Any]]:
        """Load a saved asymmetric adapter: ``(adapter, meta)``; any defect is a FormatError naming the file."""
        arrays, meta = load_sef(path, kind=SEF_KIND)
        try:
            return rebuild({cls.__name__: cls}, meta, arrays, what="adapter"), meta  # type: ignore[return-value]
        except FormatError as exc:
            raise FormatError(f"{path}: {exc}") from None

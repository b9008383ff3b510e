"""The query-only adapter: one identity-initialised head on the query side, a map like any other.

Registered in the map registry as ``"adapter"``, so everything that applies a query map (an
index's attached query maps, ``keff project eval``, ``keff serve``) applies it; the document
vectors are untouched.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keff.adapters.heads import AdapterTraining, apply_head, head_specs
from keff.errors import FormatError
from keff.estimator import ArraySpec
from keff.maps.base import Map, product_floor, register_map
from keff.train.infonce import InfoNCEResult


@register_map("adapter")
class QueryAdapter(AdapterTraining, Map):
    """Query-side adapter ``X -> head(X)`` trained with InfoNCE against the paired answers.

    See :class:`keff.adapters.heads.AdapterTraining` for the parameters. ``fit(X, Y, groups,
    domains)`` takes questions ``X`` (n, d), answers ``Y`` (n, d), a relevance group per pair
    and, optionally, a domain per pair (for ``validation="domains"``).
    """

    fit_takes_groups = True
    _scalars = AdapterTraining._adapter_scalars

    _asymmetric = False

    def _store(self, result: InfoNCEResult, dim: int) -> None:
        for name, arr in result.query_arrays.items():
            setattr(self, f"{name}_", arr)
        self._head = None
        self.source_dim_ = self.target_dim_ = dim

    def _state_specs(self) -> dict[str, ArraySpec]:
        return head_specs(self.head)

    def _shape_symbols(self, specs: Any) -> dict[str, int]:
        return {**super()._shape_symbols(specs), "d": self.source_dim_}

    def _after_restore(self) -> None:
        self._head = None
        if self.source_dim_ != self.target_dim_:
            raise FormatError(f"an adapter maps a width to itself; got {self.source_dim_} -> {self.target_dim_}")

    def _arrays(self) -> dict[str, np.ndarray]:
        """The head's arrays by name, built once per fit or load (a single query pays for it otherwise)."""
        if getattr(self, "_head", None) is None:
            self._head = {name[:-1]: getattr(self, name) for name in head_specs(self.head)}
        return self._head

    def _transform(self, X: np.ndarray) -> np.ndarray:
        return apply_head(self.head, self._arrays(), X)

    def matmul_floor(self, rng: np.random.Generator):
        """The head's matrix products: one (d, d) for linear, (d, r)(r, d) for lowrank, (d, h)(h, d) for mlp."""
        self._check_fitted()
        d = self.source_dim_
        chain = {
            "linear": ((d, d),),
            "lowrank": ((d, self.rank), (self.rank, d)),
            "mlp": ((d, self.hidden), (self.hidden, d)),
        }
        return product_floor(rng, chain[self.head])

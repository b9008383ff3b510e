"""A chain of already-fitted maps applied in order (e.g. model A -> model B -> model C)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from keff.errors import FormatError, KeffError
from keff.maps.base import Map, map_from_description, register_map


@register_map
class MapChain(Map):
    """Apply fitted maps in order: ``maps[-1].transform(... maps[0].transform(X))``.

    A chain is built from maps that are already fitted (fit each part on its own anchors), so
    it is fitted as soon as it is constructed; :meth:`fit` refuses.

    Parameters
    ----------
    maps : sequence of Map
        At least one fitted map; each part's target dimension must equal the next part's
        source dimension.

    Attributes
    ----------
    source_dim_ : int
        Source dimension of the first part.
    target_dim_ : int
        Target dimension of the last part.
    """

    def __init__(self, maps: Sequence[Map]) -> None:
        self.maps = list(maps)
        if not self.maps:
            raise KeffError("MapChain needs at least one map")
        for i, part in enumerate(self.maps):
            if not isinstance(part, Map):
                raise KeffError(f"MapChain part {i} is a {type(part).__name__}, not a keff Map")
            if not part.is_fitted:
                raise KeffError(f"MapChain part {i} ({type(part).__name__}) is not fitted: fit each part first")
        for i, (a, b) in enumerate(zip(self.maps, self.maps[1:])):
            if a.target_dim_ != b.source_dim_:
                raise KeffError(
                    f"MapChain parts do not line up: part {i} ({type(a).__name__}) outputs {a.target_dim_}-d "
                    f"but part {i + 1} ({type(b).__name__}) expects {b.source_dim_}-d"
                )
        self.source_dim_ = self.maps[0].source_dim_
        self.target_dim_ = self.maps[-1].target_dim_

    def fit(self, X: Any, Y: Any) -> MapChain:
        raise KeffError(
            "MapChain applies already-fitted maps and cannot be fitted as a whole: fit each part on its own "
            "paired anchors, then build the chain with chain(part1, part2, ...)"
        )

    def _transform(self, X: np.ndarray) -> np.ndarray:
        for part in self.maps:
            X = part.transform(X)
        return X

    def describe(self) -> dict[str, Any]:
        return {
            "type": type(self).__name__,
            "parts": [part.describe() for part in self.maps],
            "source_dim": self.source_dim_,
            "target_dim": self.target_dim_,
        }

    def get_state(self) -> dict[str, np.ndarray]:
        """Every part's arrays, prefixed by its position: ``"0/W_"``, ``"1/A_"``, ..."""
        return {f"{i}/{name}": arr for i, part in enumerate(self.maps) for name, arr in part.get_state().items()}

    @classmethod
    def from_description(cls, description: dict[str, Any], arrays: dict[str, np.ndarray]) -> MapChain:
        parts = description.get("parts")
        if not isinstance(parts, list) or not parts:
            raise FormatError("MapChain description has no 'parts' list")
        maps = []
        for i, part in enumerate(parts):
            prefix = f"{i}/"
            sub = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
            maps.append(map_from_description(part, sub))
        known = {f"{i}/" for i in range(len(parts))}
        stray = sorted(k for k in arrays if k.split("/", 1)[0] + "/" not in known)
        if stray:
            raise FormatError(f"MapChain state holds arrays of no part: {stray}")
        return cls(maps)


def chain(*maps: Map) -> MapChain:
    """Chain fitted maps in order: ``chain(a_to_b, b_to_c)`` maps A-space rows to C-space."""
    return MapChain(maps)

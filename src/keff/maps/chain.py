"""A chain of already-fitted maps applied in order (e.g. model A -> model B -> model C).

A chain is bounded: it holds at most :data:`MAX_CHAIN_MAPS` maps (counting the maps inside
nested chains) and nests chains at most :data:`MAX_CHAIN_DEPTH` deep. Loading checks both on
the description before rebuilding any part, and rebuilds the parts in time linear in the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from keff.errors import FormatError, KeffError
from keff.estimator import split_prefixes
from keff.maps.base import Floor, Map, map_from_description, register_map
from keff.sef import shown

#: Most maps one chain holds, counting the maps inside nested chains.
MAX_CHAIN_MAPS = 256
#: Deepest nesting of chains: a chain of plain maps has depth 1, a chain holding it depth 2.
MAX_CHAIN_DEPTH = 8


def check_chain_description(description: dict[str, Any]) -> None:
    """Check a chain description against :data:`MAX_CHAIN_MAPS` and :data:`MAX_CHAIN_DEPTH`
    before anything is rebuilt.

    An iterative walk that stops at the first excess, so its cost is bounded by the limits,
    not by the file (a part list longer than the limit is refused without being read).

    Raises
    ------
    FormatError
        A chain without a non-empty ``parts`` list, too many maps, or too deep a nesting.
    """
    committed, pending = 1, [(description, 1)]  # maps known so far; a pending chain counts as one
    while pending:
        node, depth = pending.pop()
        parts = node.get("parts")
        if not isinstance(parts, list) or not parts:
            raise FormatError("MapChain description has no 'parts' list")
        if depth > MAX_CHAIN_DEPTH:
            raise FormatError(f"MapChain nests chains more than {MAX_CHAIN_DEPTH} deep")
        committed += len(parts) - 1
        if committed > MAX_CHAIN_MAPS:
            raise FormatError(f"MapChain holds more than {MAX_CHAIN_MAPS} maps (nested chains included)")
        pending += [(p, depth + 1) for p in parts if isinstance(p, dict) and p.get("type") == "MapChain"]


@register_map("chain")
class MapChain(Map):
    """Apply fitted maps in order: ``maps[-1].transform(... maps[0].transform(X))``.

    A chain is built from maps that are already fitted (fit each part on its own anchors), so
    it is fitted as soon as it is constructed; :meth:`fit` refuses.

    Parameters
    ----------
    maps : sequence of Map
        At least one fitted map; each part's target dimension must equal the next part's
        source dimension. At most :data:`MAX_CHAIN_MAPS` maps in all (nested chains
        included) and at most :data:`MAX_CHAIN_DEPTH` levels of chains.

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
        if len(self.maps) > MAX_CHAIN_MAPS:
            raise KeffError(f"a MapChain holds at most {MAX_CHAIN_MAPS} maps; got {len(self.maps)}")
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
        self._n_maps = sum(p._n_maps if isinstance(p, MapChain) else 1 for p in self.maps)
        self._depth = 1 + max(p._depth if isinstance(p, MapChain) else 0 for p in self.maps)
        if self._n_maps > MAX_CHAIN_MAPS:
            raise KeffError(
                f"a MapChain holds at most {MAX_CHAIN_MAPS} maps, nested chains included; got {self._n_maps}"
            )
        if self._depth > MAX_CHAIN_DEPTH:
            raise KeffError(f"MapChains nest at most {MAX_CHAIN_DEPTH} deep; this one nests {self._depth}")
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

    def matmul_floor(self, rng: np.random.Generator) -> Floor:
        """The parts' floors applied in order, as :meth:`transform` applies the parts (see
        :meth:`Map.matmul_floor`)."""
        floors = [part.matmul_floor(rng) for part in self.maps]

        def floor(x: np.ndarray) -> np.ndarray:
            for part_floor in floors:
                x = part_floor(x)
            return x

        return floor

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
        """Rebuild a chain: bounds first, then each part from its own arrays (one pass over
        the array names), then the declared dimensions against the parts'."""
        check_chain_description(description)
        parts = description["parts"]
        groups = split_prefixes(arrays)
        stray = sorted(k for k in groups if k not in {str(i) for i in range(len(parts))})
        if stray:
            names = [f"{k}/{name}" if k else name for k in stray for name in groups[k]]
            raise FormatError(f"MapChain state holds arrays of no part: {shown(names)}")
        maps = [cls._rebuild_part(i, part, groups.get(str(i), {})) for i, part in enumerate(parts)]
        chain = cls(maps)
        for name in ("source_dim", "target_dim"):
            declared, actual = description.get(name), getattr(chain, f"{name}_")
            if type(declared) is not int or declared != actual:
                raise FormatError(f"MapChain declares {name} {shown(declared)} but its parts give {actual}")
        return chain

    @staticmethod
    def _rebuild_part(i: int, description: Any, arrays: dict[str, np.ndarray]) -> Map:
        try:
            return map_from_description(description, arrays)
        except FormatError as exc:
            raise FormatError(f"part {i}: {exc}") from None


def chain(*maps: Map) -> MapChain:
    """Chain fitted maps in order: ``chain(a_to_b, b_to_c)`` maps A-space rows to C-space."""
    return MapChain(maps)

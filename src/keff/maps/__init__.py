"""Vector -> vector maps: fit(X, Y), transform(X), save/load as SEF. Rows, ``X @ W + b``.

The registry: :data:`MAPS` (short name -> class) and :func:`make_map`. Importing this package
imports every map module below, which registers it; a new map kind is its module plus one import
line here.
"""

from keff.maps.affine import Affine
from keff.maps.base import MAP_TYPES, MAPS, Map, load_map, make_map, map_params, register_map
from keff.maps.chain import MapChain, chain
from keff.maps.cluster_routed import ClusterRouted
from keff.maps.contrastive import ContrastiveMap
from keff.maps.low_rank import LowRankAffine
from keff.maps.procrustes import Procrustes
from keff.maps.report import AlignmentReport, alignment_report, per_text_cosine
from keff.maps.residual_mlp import ResidualMLP

__all__ = [
    "MAPS",
    "MAP_TYPES",
    "Affine",
    "AlignmentReport",
    "ClusterRouted",
    "ContrastiveMap",
    "LowRankAffine",
    "Map",
    "MapChain",
    "Procrustes",
    "ResidualMLP",
    "alignment_report",
    "chain",
    "load_map",
    "make_map",
    "map_params",
    "per_text_cosine",
    "register_map",
]

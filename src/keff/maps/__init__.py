"""Vector -> vector maps: fit(X, Y), transform(X), save/load as SEF. Rows, ``X @ W + b``."""

from keff.maps.affine import Affine
from keff.maps.base import MAP_TYPES, Map, load_map, register_map
from keff.maps.chain import MapChain, chain
from keff.maps.cluster_routed import ClusterRouted, routed_throughput
from keff.maps.contrastive import ContrastiveMap
from keff.maps.low_rank import LowRankAffine
from keff.maps.procrustes import Procrustes
from keff.maps.report import AlignmentReport, alignment_report, per_text_cosine
from keff.maps.residual_mlp import ResidualMLP

__all__ = [
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
    "per_text_cosine",
    "register_map",
    "routed_throughput",
]

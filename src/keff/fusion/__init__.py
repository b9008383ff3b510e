"""Fusing specialists per query: vector fusers (route, mean, Kalman, gate), score-level
baselines (RRF, convex, concatenation), routing that skips specialists, and the
:class:`Specialist` that bundles an encoder with its alignment, centroid and sigma^2.

By name: :func:`fuse` (vectors), :func:`fusion_weights` (per-query weights for per-specialist
indexes) and :func:`score_fuse` (score matrices), each over one registry in
:mod:`keff.fusion.methods`."""

from keff.fusion.gate import LearnedGate
from keff.fusion.methods import FUSERS, SCORE_FUSERS, WEIGHTINGS, fuse, fusion_weights, score_fuse
from keff.fusion.routing import compute_saved, masked_kalman_fuse, select_specialists, tune_threshold
from keff.fusion.score import concat_vectors, convex_scores, rrf_scores, tune_convex_weights, tune_rrf_k
from keff.fusion.specialist import Specialist, fit_specialist
from keff.fusion.vector import (
    hard_route,
    kalman_fuse,
    mean_fuse,
    precision_weights,
    stack,
    weighted_fuse,
    weighted_query_concat,
    weighted_scores,
)

__all__ = [
    "FUSERS",
    "SCORE_FUSERS",
    "WEIGHTINGS",
    "fuse",
    "fusion_weights",
    "score_fuse",
    "LearnedGate",
    "Specialist",
    "compute_saved",
    "concat_vectors",
    "convex_scores",
    "fit_specialist",
    "hard_route",
    "kalman_fuse",
    "masked_kalman_fuse",
    "mean_fuse",
    "precision_weights",
    "rrf_scores",
    "select_specialists",
    "stack",
    "tune_convex_weights",
    "tune_rrf_k",
    "tune_threshold",
    "weighted_fuse",
    "weighted_query_concat",
    "weighted_scores",
]

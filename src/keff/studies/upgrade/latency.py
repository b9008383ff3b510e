"""Added query latency of each fitted map, against plain matrix products, through one harness."""

from __future__ import annotations

import numpy as np

from keff.eval import compare_latency
from keff.maps import Map
from keff.maps.base import Floor
from keff.studies.upgrade.config import UpgradeConfig
from keff.studies.upgrade.corpora import Encoded

#: Timed one-row calls per function.
SINGLE_CALLS = 300


def map_against(m: Map, plain: Floor, X: np.ndarray, repeats: int) -> dict[str, float]:
    """The map's ``transform`` and ``plain`` timed on ``X``, interleaved (:func:`compare_latency`).

    Returns
    -------
    dict
        ``batch_map_us``, ``batch_plain_us`` (median us per row of a whole-batch call),
        ``single_map_p50_us``, ``single_plain_p50_us`` (median us of one-row calls),
        ``batch_ratio``, ``single_ratio`` (medians of map/plain ratios paired call by call).
    """
    timed = compare_latency(
        {"plain": lambda rows: plain(X[rows]), "map": lambda rows: m.transform(X[rows])},
        X.shape[0],
        baseline="plain",
        repeats=repeats,
        single=SINGLE_CALLS,
    )
    return {
        "batch_map_us": timed["batch_us"]["map"],
        "batch_plain_us": timed["batch_us"]["plain"],
        "single_map_p50_us": timed["single_us"]["map"],
        "single_plain_p50_us": timed["single_us"]["plain"],
        "batch_ratio": timed["batch_ratio"]["map"],
        "single_ratio": timed["single_ratio"]["map"],
    }


def latency_rows(
    latency_maps: dict[tuple[str, str], Map], vecs: dict[str, Encoded], old: str, new: str, config: UpgradeConfig
) -> list[dict]:
    """Each map's time against its own cost floor (:meth:`keff.maps.Map.matmul_floor`) and
    against one dense ``X @ W`` of shape (d_source, d_target).

    Query maps (c) are timed on new-model queries, corpus maps (d) on old-model documents, both
    repeated to ``config.latency_batch`` rows.
    """
    out = []
    rng = np.random.default_rng(0)
    for (cond, kind), m in sorted(latency_maps.items()):
        src = vecs[new].queries if cond == "c" else vecs[old].docs
        X = np.ascontiguousarray(np.resize(src, (config.latency_batch, src.shape[1])), dtype=np.float32)
        W = rng.standard_normal((m.source_dim_, m.target_dim_)).astype(np.float32)
        own = map_against(m, m.matmul_floor(rng), X, config.latency_repeats)
        dense = map_against(m, lambda x, W=W: x @ W, X, config.latency_repeats)
        out.append(
            {
                "old": old, "new": new, "condition": cond, "map": kind, "shape": [m.source_dim_, m.target_dim_],
                "own_shapes": own, "dense": dense,
            }
        )  # fmt: skip
    return out

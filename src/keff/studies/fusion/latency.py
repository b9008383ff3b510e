"""What fusing costs per query: Kalman against mean fusion, timed with keff's one harness."""

from __future__ import annotations

import numpy as np

from keff.eval.latency import compare_latency
from keff.fusion import fuse, fusion_weights, stack, weighted_query_concat
from keff.index import ExactIndex
from keff.studies.fusion.strategies import Member


def latency(members: list[Member], *, repeats: int = 21, single: int = 300) -> dict:
    """Kalman vs mean fusion per query, alone and with the fused-index search, interleaved in one
    run (:func:`keff.eval.latency.compare_latency`); and, at equal caching (every document vector
    computed once per specialist), Kalman weights over per-specialist indexes searched as one
    concatenated index of the specialists' own vectors.

    Returns
    -------
    dict
        ``batch_<name>_us`` (median us per query in a batch of every test query) and
        ``single_<name>_us`` (median us of one query) for ``mean``, ``kalman``, ``mean+search``,
        ``kalman+search`` and ``per-index-kalman+search``; per mode, the ratios of those medians
        ``<mode>_ratio_fuse`` (Kalman / mean), ``<mode>_ratio_fuse_search`` (Kalman+search /
        mean+search) and ``<mode>_ratio_per_index`` (per-index Kalman+search / mean+search);
        ``n_specialists`` and ``batch_queries``.
    """
    Z = stack([m.frame["test"] for m in members])
    var = np.stack([m.variances["calibrated"]["test"] for m in members])
    index = ExactIndex(fuse(stack([m.frame["docs"] for m in members]), method="mean"))
    own = [m.own["test"] for m in members]
    per_specialist = ExactIndex(np.concatenate([m.own["docs"] for m in members], axis=1))

    fns = {
        "mean": lambda rows: fuse(Z[:, rows], method="mean"),
        "kalman": lambda rows: fuse(Z[:, rows], var[:, rows], method="kalman"),
        "mean+search": lambda rows: index.search(fuse(Z[:, rows], method="mean"), 10),
        "kalman+search": lambda rows: index.search(fuse(Z[:, rows], var[:, rows], method="kalman"), 10),
        "per-index-kalman+search": lambda rows: per_specialist.search(
            weighted_query_concat([q[rows] for q in own], fusion_weights(var[:, rows], "kalman")), 10
        ),
    }
    timed = compare_latency(fns, Z.shape[1], baseline="mean", repeats=repeats, single=single)
    out = {}
    for mode in ("batch", "single"):
        us = timed[f"{mode}_us"]
        out.update({f"{mode}_{name}_us": us[name] for name in fns})
        out[f"{mode}_ratio_fuse"] = us["kalman"] / us["mean"]
        out[f"{mode}_ratio_fuse_search"] = us["kalman+search"] / us["mean+search"]
        out[f"{mode}_ratio_per_index"] = us["per-index-kalman+search"] / us["mean+search"]
    out["n_specialists"], out["batch_queries"] = len(members), int(Z.shape[1])
    return out

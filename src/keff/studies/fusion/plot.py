"""The fusion study's figure: nDCG@10 of every strategy, overall and per domain."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from keff.atomic import atomic_path

COLOURS = {"single": "#7f7f7f", "fused index": "#1f77b4", "per-specialist indexes": "#2ca02c", "ceiling": "#d62728"}


def plot_fusion(result: dict, path: str | Path) -> Path:
    """Horizontal bars: one row per strategy, overall nDCG@10 and one column per domain; the
    dashed line is the best single specialist. Writes the PNG atomically and returns its path."""
    rows = sorted(result["rows"], key=lambda r: r["metrics"]["ndcg@10"])
    panels = ["overall", *sorted(rows[0]["domains"])]
    fig = Figure(figsize=(4 * len(panels), 0.28 * len(rows) + 1.5), dpi=110)
    FigureCanvasAgg(fig)
    y = np.arange(len(rows))
    for i, panel in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        vals = [r["metrics"]["ndcg@10"] if panel == "overall" else r["domains"][panel]["ndcg@10"] for r in rows]
        ax.barh(y, vals, color=[COLOURS.get(r["family"], "k") for r in rows])
        best_single = max(v for v, r in zip(vals, rows) if r["family"] == "single")
        ax.axvline(best_single, color="k", lw=0.8, ls="--")
        ax.set_yticks(y, [r["strategy"] for r in rows] if i == 0 else [""] * len(rows), fontsize=7)
        ax.set_xlim(min(vals) * 0.9, max(vals) * 1.02)
        ax.set_title(f"nDCG@10: {panel}", fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path

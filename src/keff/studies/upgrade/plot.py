"""The upgrade figures: % of the ceiling nDCG@10, and gap closed, against anchors; one panel per
corpus, pair and condition."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from keff.atomic import atomic_path
from keff.studies.upgrade.experiment import CONDITIONS


def plot(results: dict, path: Path) -> Path:
    """Draw ``results`` (from :func:`keff.studies.upgrade.run`) to the PNG ``path``; returns it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    summary, baselines = results["summary"], results["baselines"]
    panels = sorted({(s["corpus"], s["old"], s["new"], s["condition"]) for s in summary})
    cols = 2
    rows_n = (len(panels) + 1) // cols
    fig = Figure(figsize=(11, 3.2 * rows_n), dpi=110)
    FigureCanvasAgg(fig)
    for i, (corpus, old, new, cond) in enumerate(panels):
        ax = fig.add_subplot(rows_n, cols, i + 1)
        for kind in sorted({s["map"] for s in summary}):
            pts = sorted(
                (s["n_anchors"], s["pct_ceiling_mean"], s["pct_ceiling_std"])
                for s in summary
                if (s["corpus"], s["old"], s["new"], s["condition"], s["map"]) == (corpus, old, new, cond, kind)
            )
            if pts:
                x, y, e = zip(*pts)
                ax.errorbar(x, y, yerr=e, marker="o", ms=3, capsize=2, label=kind)
        a = next(b for b in baselines if (b["corpus"], b["old"], b["new"]) == (corpus, old, new))
        ax.axhline(100, color="k", lw=0.8)
        ax.axhline(a["pct_a"], color="grey", ls="--", lw=0.8, label="old model (a)")
        ax.axhline(98, color="red", ls=":", lw=0.8, label="98% target")
        _label(ax, f"{corpus}: {old}->{new}, ({cond}) {CONDITIONS[cond]}", "% of ceiling nDCG@10", legend=i == 0)
    return _save(fig, path)


def _label(ax, title: str, ylabel: str, *, legend: bool) -> None:
    """Log anchor axis, title, labels (and the legend on the first panel)."""
    ax.set_xscale("log")
    ax.set_title(title, fontsize=7)
    ax.set_xlabel("anchors", fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)
    if legend:
        ax.legend(fontsize=6)


def _save(fig, path: Path, rect: tuple[float, float, float, float] = (0, 0, 1, 1)) -> Path:
    fig.tight_layout(rect=rect)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)


def plot_gap(results: dict, path: Path, conditions: str = "cd") -> Path:
    """Gap closed (with its CI) against the anchor count, one line per map (one colour per map
    throughout), one panel per part, corpus, pair and condition (of ``conditions``), over every
    part of ``results`` (or ``results`` itself); 0 is the old model, 1 the new one."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    gaps = [{**g, "part": part.get("part", "")} for part in results.get("parts", [results]) for g in part["gaps"]
            if g["gap_closed"] is not None and g["condition"] in conditions]  # fmt: skip
    panels = sorted({(g["part"], g["corpus"], g["old"], g["new"], g["condition"]) for g in gaps})
    kinds = sorted({g["map"] for g in gaps})
    colour = {kind: f"C{i}" for i, kind in enumerate(kinds)}
    cols = 2
    rows_n = max(1, (len(panels) + 1) // cols)
    fig = Figure(figsize=(11, 3.2 * rows_n), dpi=110)
    FigureCanvasAgg(fig)
    for i, key in enumerate(panels):
        part, corpus, old, new, cond = key
        ax = fig.add_subplot(rows_n, cols, i + 1)
        for kind in kinds:
            mine = [g for g in gaps if (g["part"], g["corpus"], g["old"], g["new"], g["condition"]) == key
                    and g["map"] == kind]  # fmt: skip
            pts = sorted((g["n_anchors"], g["gap_closed"], *g["gap_ci"]) for g in mine)
            if pts:
                x, y, lo, hi = (np.array(v, dtype=float) for v in zip(*pts))
                # infinite or far-out bounds (a resample where the gap vanished) are drawn at the panel's edge
                y, lo, hi = (np.clip(v, -2, 2) for v in (y, lo, hi))
                ax.errorbar(x, y, yerr=[np.maximum(y - lo, 0), np.maximum(hi - y, 0)], marker="o", ms=3, capsize=2,
                            label=kind, color=colour[kind])  # fmt: skip
        ax.axhline(1, color="k", lw=0.8)
        ax.axhline(0, color="grey", ls="--", lw=0.8)
        ax.axhline(0.5, color="red", ls=":", lw=0.8)
        ax.set_ylim(-1.5, 1.5)
        title = f"{part + ': ' if part else ''}{corpus} {old}->{Path(new).name}, ({cond}) {CONDITIONS[cond]}"
        _label(ax, title, "gap closed (nDCG@10)", legend=False)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=colour[k], marker="o", ms=3, label=k) for k in kinds]
    handles += [Line2D([], [], color="k", lw=0.8, label="new model (b)"),
                Line2D([], [], color="grey", ls="--", lw=0.8, label="old model (a)"),
                Line2D([], [], color="red", ls=":", lw=0.8, label="50% target")]  # fmt: skip
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=7)
    return _save(fig, path, rect=(0, 0.03, 1, 1))  # room for the legend below the panels

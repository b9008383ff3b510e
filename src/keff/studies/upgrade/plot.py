"""The upgrade figure: % of the ceiling nDCG@10 against anchors, one panel per corpus, pair and condition."""

from __future__ import annotations

from pathlib import Path

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
        ax.set_xscale("log")
        ax.set_title(f"{corpus}: {old}->{new}, ({cond}) {CONDITIONS[cond]}", fontsize=8)
        ax.set_xlabel("anchors", fontsize=8)
        ax.set_ylabel("% of ceiling nDCG@10", fontsize=8)
        ax.tick_params(labelsize=7)
        if i == 0:
            ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)

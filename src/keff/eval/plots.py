"""PNG charts of evaluation results (matplotlib, Agg canvas, imported lazily)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from keff.atomic import atomic_path
from keff.errors import KeffError
from keff.eval.report import Result


def plot_results(
    results: Sequence[Result],
    path: str | Path,
    *,
    metrics: Sequence[str] = ("ndcg@10", "mrr@10", "recall@100"),
    title: str | None = None,
) -> Path:
    """Grouped bar chart: one group per metric, one bar per result; written atomically as PNG.

    Parameters
    ----------
    results : sequence of Result
        Bars are labelled ``system`` (plus `` (dataset)`` when results span several datasets).
    path : str or Path
        Output PNG file.
    metrics : sequence of str
        Metrics to plot; every result must have each of them.
    title : str, optional
        Chart title.

    Returns
    -------
    Path
        ``path``.

    Notes
    -----
    Draws on a standalone Agg canvas (no pyplot), so it never changes the process's matplotlib
    backend or opens a window.
    """
    if not results:
        raise KeffError("no results to plot")
    metrics = list(metrics)
    if not metrics:
        raise KeffError("no metrics to plot")
    for r in results:
        missing = [m for m in metrics if m not in r.metrics]
        if missing:
            raise KeffError(
                f"result {r.system!r} on {r.dataset!r} has no {', '.join(missing)}; "
                f"pass metrics= among {sorted(r.metrics)}"
            )
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    several_datasets = len({r.dataset for r in results}) > 1
    labels = [f"{r.system} ({r.dataset})" if several_datasets else r.system for r in results]
    x = np.arange(len(metrics), dtype=np.float64)
    width = 0.8 / len(results)
    fig = Figure(figsize=(max(6.0, 1.2 * len(metrics) * max(1, len(results)) ** 0.5 + 2), 4.5), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for i, (r, label) in enumerate(zip(results, labels)):
        values = [r.metrics[m] for m in metrics]
        bars = ax.bar(x - 0.4 + width * (i + 0.5), values, width, label=label)
        ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=1)
    ax.set_xticks(x, metrics)
    ax.set_ylabel("score")
    top = max(r.metrics[m] for r in results for m in metrics)
    ax.set_ylim(0.0, max(1.0, top) * 1.08)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if title:
        ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path

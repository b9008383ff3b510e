"""Shared rich consoles and table printing for the CLI."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

# Off a terminal (logs, CI) rich would wrap tables at 80 columns; metric tables need more.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def print_results_table(results: Sequence, metrics: Sequence[str], *, title: str | None = None) -> None:
    """Print one row per result (system, dataset, metrics, latency) as a rich table."""
    table = Table(title=title)
    table.add_column("system")
    table.add_column("dataset")
    for m in metrics:
        table.add_column(m, justify="right")
    table.add_column("p50 / p95 search (us)", justify="right")
    for r in results:
        lat = r.meta.get("latency", {}).get("single", {})
        lat_txt = f"{lat.get('p50_us', float('nan')):.0f} / {lat.get('p95_us', float('nan')):.0f}" if lat else "-"
        table.add_row(r.system, r.dataset, *(f"{r.metrics[m]:.4f}" for m in metrics), lat_txt)
    out.print(table)

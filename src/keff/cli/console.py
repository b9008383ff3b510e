"""Shared rich consoles and table printing for the CLI.

rich is imported on first use, not at import: ``keff --help`` must not pay for it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any


class _LazyConsole:
    """A rich ``Console`` made on first use (attribute access), then used as is."""

    def __init__(self, *, stderr: bool) -> None:
        self._stderr = stderr
        self._console = None

    def _get(self):
        if self._console is None:
            from rich.console import Console

            # Off a terminal (logs, CI) rich would wrap tables at 80 columns; metric tables need more.
            stream = sys.stderr if self._stderr else sys.stdout
            self._console = Console(stderr=self._stderr, width=None if stream.isatty() else 160)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)


out: Any = _LazyConsole(stderr=False)
err: Any = _LazyConsole(stderr=True)


def print_results_table(results: Sequence, metrics: Sequence[str], *, title: str | None = None) -> None:
    """Print one row per result (system, dataset, metrics, latency) as a rich table."""
    from rich.table import Table

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

"""One progress-bar helper for every long loop in keff (encoding, downloads, benchmarks)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


class _Bar:
    """Handle returned by :func:`progress_bar`; ``advance(n)`` moves the bar by ``n`` units."""

    def __init__(self, progress, task) -> None:
        self._progress = progress
        self._task = task

    def advance(self, n: float = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)


@contextmanager
def progress_bar(description: str, total: float | None, *, enabled: bool | None = None) -> Iterator[_Bar]:
    """A rich progress bar on stderr, or a no-op handle when disabled.

    Parameters
    ----------
    description : str
        Label shown before the bar.
    total : float or None
        Number of units (None for an indeterminate bar).
    enabled : bool, optional
        Force the bar on or off; by default it shows when stderr is a terminal.
    """
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield _Bar(None, None)
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        task = progress.add_task(description, total=total)
        yield _Bar(progress, task)

"""One progress helper for every long loop in keff (encoding, downloads, benchmarks).

On a terminal it draws a rich bar on stderr. Off a terminal (CI logs, pipes, ``nohup``) it prints
a plain line every ``KEFF_PROGRESS_INTERVAL`` seconds (default 30) and one when the work ends, so a
long job is never silent: ``encoding with minilm: 1,024/5,183 texts (20%), 21.3 texts/s,
elapsed 0:00:48, ETA 0:03:15``.

Work whose items cost unequal time (texts of different lengths, encoded longest first) passes a
``cost_total`` and advances by each item's cost as well: the ETA then follows the cost (estimated
tokens), not the item count, which would otherwise promise far too much time while the longest
texts go first.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

#: Seconds between plain progress lines off a terminal (``KEFF_PROGRESS_INTERVAL`` overrides).
DEFAULT_INTERVAL = 30.0


def _interval() -> float:
    raw = os.environ.get("KEFF_PROGRESS_INTERVAL", "")
    try:
        value = float(raw) if raw else DEFAULT_INTERVAL
    except ValueError:
        return DEFAULT_INTERVAL
    return max(value, 0.0)


def format_duration(seconds: float) -> str:
    """``H:MM:SS`` for a non-negative number of seconds."""
    seconds = int(round(max(seconds, 0.0)))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _count(x: float) -> str:
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.1f}"


class _Bar:
    """Handle returned by :func:`progress_bar`: ``advance(n, cost=c)`` records progress."""

    def __init__(self, description: str, total: float | None, unit: str, cost_total: float | None) -> None:
        self.description = description
        self.total = total
        self.unit = unit
        self.cost_total = cost_total
        self.done = 0.0
        self.cost_done = 0.0
        self.start = time.monotonic()

    def advance(self, n: float = 1, *, cost: float | None = None) -> None:
        """Record ``n`` more items done (and their ``cost``, when the bar was given a cost total)."""
        self.done += n
        self.cost_done += n if cost is None else cost
        self._update()

    def _update(self) -> None:  # overridden by the visible bars
        pass

    def eta_seconds(self) -> float | None:
        """Seconds left, from the rate of cost (or items) so far; None before any progress."""
        elapsed = time.monotonic() - self.start
        if self.cost_total is not None:
            done, total = self.cost_done, self.cost_total
        else:
            done, total = self.done, self.total
        if total is None or done <= 0 or elapsed <= 0:
            return None
        return max(total - done, 0.0) * elapsed / done

    def line(self) -> str:
        """One plain-text status line."""
        elapsed = time.monotonic() - self.start
        parts = [f"{self.description}: {_count(self.done)}"]
        if self.total:
            parts[0] += f"/{_count(self.total)} {self.unit} ({100.0 * self.done / self.total:.0f}%)"
        else:
            parts[0] += f" {self.unit}"
        if elapsed > 0 and self.done > 0:
            parts.append(f"{self.done / elapsed:,.1f} {self.unit}/s")
        parts.append(f"elapsed {format_duration(elapsed)}")
        eta = self.eta_seconds()
        if eta is not None and self.total and self.done < self.total:
            parts.append(f"ETA {format_duration(eta)}")
        return ", ".join(parts)


class _LineBar(_Bar):
    """Plain lines on stderr, at most one per interval, plus one at the end."""

    def __init__(self, *args, interval: float) -> None:
        super().__init__(*args)
        self.interval = interval
        self.last = self.start
        self.printed = 0

    def _emit(self) -> None:
        print(self.line(), file=sys.stderr, flush=True)
        self.printed += 1
        self.last = time.monotonic()

    def _update(self) -> None:
        if time.monotonic() - self.last >= self.interval:
            self._emit()

    def finish(self) -> None:
        # a job that printed progress says when it ended; a short one stays quiet
        if self.printed or time.monotonic() - self.start >= self.interval:
            self._emit()


class _RichBar(_Bar):
    def __init__(self, *args, progress, task) -> None:
        super().__init__(*args)
        self._progress = progress
        self._task = task

    def _update(self) -> None:
        self._progress.update(self._task, completed=self.cost_done, done=_count(self.done), eta=self._eta_text())

    def _eta_text(self) -> str:
        eta = self.eta_seconds()
        return "-:--:--" if eta is None else format_duration(eta)


@contextmanager
def progress_bar(
    description: str,
    total: float | None,
    *,
    enabled: bool | None = None,
    unit: str = "items",
    cost_total: float | None = None,
) -> Iterator[_Bar]:
    """Report progress of a long loop on stderr.

    Parameters
    ----------
    description : str
        What is being done (``"encoding with minilm"``).
    total : float or None
        Number of items (None when unknown).
    enabled : bool, optional
        True: a bar on a terminal, plain lines elsewhere; False: silent; None (default): on a
        terminal a bar, elsewhere plain lines every ``KEFF_PROGRESS_INTERVAL`` seconds.
    unit : str
        Name of the items in the plain lines (``"texts"``, ``"bytes"``).
    cost_total : float, optional
        Total cost of the items (e.g. estimated tokens); with it, :meth:`_Bar.advance` takes each
        step's ``cost`` and the ETA follows cost instead of item count.
    """
    if enabled is False:
        yield _Bar(description, total, unit, cost_total)
        return
    if not sys.stderr.isatty():
        bar = _LineBar(description, total, unit, cost_total, interval=_interval())
        yield bar
        bar.finish()
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[done]}" + (f"/{_count(total)} {unit}" if total else f" {unit}")),
        TimeElapsedColumn(),
        TextColumn("ETA {task.fields[eta]}"),
    ]
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        task = progress.add_task(
            description, total=cost_total if cost_total is not None else total, done="0", eta="-:--:--"
        )
        yield _RichBar(description, total, unit, cost_total, progress=progress, task=task)

"""How far a long command got: a bar on a terminal, a line every few seconds anywhere else.

Under ``nohup``, systemd or a pipe, rich draws no bar (stderr is not a terminal), so a run of
minutes would show no sign of life. There :class:`ProgressLines` writes one line to stderr every
``every`` seconds (the first once ``every`` seconds have passed, so a short run writes none)::

    replay: 12.3 of 50.0 MB (24.6%), 3.1 MB/s, elapsed 0:00:04, ETA 0:00:12
    generate: 65,536 of 200,000 events (32.8%), 16,384 events/s, elapsed 0:00:04, ETA 0:00:08

and, when it wrote any, a last one when the run ends, with ``done`` for the ETA. Without a
known total the percentage and the ETA are left out. The rate is the average since the start,
so the ETA does not jump with each batch. :func:`progress` chooses between the bar and the
lines.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

__all__ = ["DEFAULT_EVERY", "MEGABYTE", "ProgressEvery", "ProgressLines", "Update", "progress"]

DEFAULT_EVERY = 5.0
"""Seconds between two progress lines, unless a command is told otherwise."""
MEGABYTE = 1_000_000
"""The ``scale`` that shows bytes as MB."""

Update = Callable[[int, int | None], None]
"""``update(done, total)``: how far the run got; ``total`` None keeps the one known."""


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


@dataclass
class ProgressLines:
    """Writes a progress line to ``console`` at most every ``every`` seconds (see the module).

    ``start`` is where the run began (a replay continuing after a checkpoint), so that the
    rate counts only this run's work. ``scale`` divides the amounts shown (``MEGABYTE`` for
    bytes, shown with one decimal).
    """

    label: str
    total: int | None
    console: Console
    unit: str = "events"
    every: float = DEFAULT_EVERY
    scale: int = 1
    start: int = 0
    clock: Callable[[], float] = time.monotonic
    done: int = field(init=False, default=0)
    written: int = field(init=False, default=0)
    """How many lines were written."""

    def __post_init__(self) -> None:
        self.done = self.start
        self._began = self.clock()
        self._next = self._began + self.every

    def update(self, done: int, total: int | None = None) -> None:
        """Record how far the run got; write a line if one is due."""
        self.done = done
        if total is not None:
            self.total = total
        now = self.clock()
        if self.every > 0 and now >= self._next:
            self._write(self.line(now))
            # from now, not from when it was due: a slow batch does not cause a burst of lines
            self._next = now + self.every

    def finish(self) -> None:
        """Write the last line (``done``), if the run wrote any before."""
        if self.written:
            self._write(self.line(self.clock(), finished=True))

    def line(self, now: float, *, finished: bool = False) -> str:
        """The progress line at ``now`` (see the module for its form)."""
        elapsed = max(now - self._began, 1e-9)
        rate = (self.done - self.start) / elapsed
        parts = [f"{self.label}: {self._amount(self.done)}"]
        total = self.total
        if total is not None:
            share = 100.0 * self.done / total if total > 0 else 100.0
            parts[0] += f" of {self._amount(total)} {self.unit} ({share:.1f}%)"
        else:
            parts[0] += f" {self.unit}"
        parts.append(f"{self._amount(rate)} {self.unit}/s")
        parts.append(f"elapsed {_clock(elapsed)}")
        if finished:
            parts.append("done")
        elif total is not None:
            left = max(total - self.done, 0)
            parts.append(f"ETA {_clock(left / rate)}" if rate > 0 else "ETA unknown")
        return ", ".join(parts)

    def _amount(self, value: float) -> str:
        if self.scale == 1:
            return f"{value:,.0f}"
        return f"{value / self.scale:,.1f}"

    def _write(self, line: str) -> None:
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)
        self.written += 1


@contextlib.contextmanager
def progress(label: str, total: int | None, console: Console, *, unit: str = "events",
             every: float = DEFAULT_EVERY, scale: int = 1, start: int = 0,
             bar: bool = True) -> Iterator[Update]:
    """How a long run reports its progress to ``console`` (stderr): yields ``update``.

    On a terminal, a transient rich bar (none when ``bar`` is false: a small input); anywhere
    else, :class:`ProgressLines` every ``every`` seconds (none when ``every`` is 0). The last
    line is written only when the block ends without an exception.
    """
    if console.is_terminal:
        columns = (TextColumn(label), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                   TimeRemainingColumn())
        with Progress(*columns, console=console, transient=True, disable=not bar) as shown:
            task = shown.add_task(label, total=total, completed=start)

            def advance(done: int, new_total: int | None = None) -> None:
                shown.update(task, completed=done, total=new_total)

            yield advance
        return
    lines = ProgressLines(label, total, console, unit=unit, every=every, scale=scale,
                          start=start)
    yield lines.update
    lines.finish()


ProgressEvery = Annotated[float, typer.Option(
    "--progress-every", min=0.0, metavar="SECONDS",
    help="when stderr is not a terminal (nohup, systemd, a pipe): seconds between progress "
    "lines with the rate and the ETA; 0: none (on a terminal a bar is drawn instead)")]
"""The ``--progress-every`` option of the long commands."""

"""Progress lines: their form, their pace, and the bar on a terminal."""

from __future__ import annotations

import io

from rich.console import Console

from pointengine.replay.progress import MEGABYTE, ProgressLines, progress


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _console() -> tuple[Console, io.StringIO]:
    text = io.StringIO()
    return Console(file=text, force_terminal=False, width=60, soft_wrap=True), text


def test_a_line_every_interval_with_rate_and_eta_then_done() -> None:
    console, text = _console()
    clock = Clock()
    lines = ProgressLines("generate", 200_000, console, every=5.0, clock=clock)
    clock.now += 4.9
    lines.update(50_000)  # not yet due
    clock.now += 0.1
    lines.update(60_000)
    clock.now += 1.0
    lines.update(70_000)  # the next is due 5 s after the last line
    clock.now += 5.0
    lines.update(110_000)
    clock.now += 9.0
    lines.update(200_000)
    lines.finish()
    assert text.getvalue().splitlines() == [
        "generate: 60,000 of 200,000 events (30.0%), 12,000 events/s, elapsed 0:00:05, "
        "ETA 0:00:11",
        "generate: 110,000 of 200,000 events (55.0%), 10,000 events/s, elapsed 0:00:11, "
        "ETA 0:00:09",
        "generate: 200,000 of 200,000 events (100.0%), 10,000 events/s, elapsed 0:00:20, "
        "ETA 0:00:00",
        "generate: 200,000 of 200,000 events (100.0%), 10,000 events/s, elapsed 0:00:20, done",
    ]


def test_bytes_in_megabytes_from_where_the_run_began_and_without_a_total() -> None:
    console, text = _console()
    clock = Clock()
    lines = ProgressLines("replay", 50 * MEGABYTE, console, unit="MB", scale=MEGABYTE,
                          start=10 * MEGABYTE, every=2.0, clock=clock)
    clock.now += 4.0
    lines.update(22 * MEGABYTE)  # 12 MB in 4 s, however far the file was read before
    unknown = ProgressLines("settle", None, console, unit="ledger lines", every=1.0,
                            clock=clock)
    clock.now += 3_700.0
    unknown.update(37_000)
    assert text.getvalue().splitlines() == [
        "replay: 22.0 of 50.0 MB (44.0%), 3.0 MB/s, elapsed 0:00:04, ETA 0:00:09",
        "settle: 37,000 ledger lines, 10 ledger lines/s, elapsed 1:01:40",
    ]


def test_a_short_run_writes_nothing_and_zero_means_never() -> None:
    console, text = _console()
    clock = Clock()
    quick = ProgressLines("replay", 10, console, clock=clock)
    clock.now += 1.0
    quick.update(10)
    quick.finish()
    never = ProgressLines("replay", 10, console, every=0.0, clock=clock)
    clock.now += 1_000.0
    never.update(5)
    never.finish()
    assert text.getvalue() == ""


def test_a_terminal_gets_the_bar_not_lines() -> None:
    text = io.StringIO()
    console = Console(file=text, force_terminal=True, width=60)
    with progress("replay", 100, console, every=0.0) as update:
        update(50, None)
        update(100, None)
    assert "replay: " not in text.getvalue()  # the transient bar is drawn and cleared

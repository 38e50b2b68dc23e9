"""Replay: evaluate a stream of JSON-line events in batches, never stopping on bad input.

Each line is validated; a bad line goes to the rejects file with its line number and reason
(a My Number is masked, never repeated) and the run goes on. Valid events go to the engine in
batches; the store writes the ledger. The report counts what happened and sums the points per
program and per provider.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO

import orjson

from pointengine.engine import Decision, Engine, fewer_collections
from pointengine.errors import InputError, UnreadableEvents
from pointengine.events import AnyEvent, parse_event
from pointengine.fastparse import FastParser
from pointengine.privacy import carries_my_number, redact

BATCH = 2_000


@dataclass(frozen=True)
class Position:
    """How far into an event file a replay got: bytes read and the last line's number."""

    offset: int = 0
    line: int = 0


START = Position()
"""The beginning of a file."""


@dataclass
class ReplayReport:
    """What a replay did."""

    lines: int = 0
    applied: int = 0
    duplicates: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    totals: dict[tuple[str, str], int] = field(default_factory=dict)
    stopped_early: bool = False
    position: Position = field(default_factory=Position)

    @property
    def events_per_second(self) -> float:
        """Lines per second over the whole run."""
        return self.lines / self.seconds if self.seconds else 0.0

    def per_program(self) -> dict[str, int]:
        """Net points per program."""
        out: Counter[str] = Counter()
        for (program, _), points in self.totals.items():
            out[program] += points
        return dict(sorted(out.items()))

    def per_provider(self) -> dict[str, int]:
        """Net points per provider."""
        out: Counter[str] = Counter()
        for (_, provider), points in self.totals.items():
            out[provider] += points
        return dict(sorted(out.items()))


class Rejects:
    """The rejects file: one JSON line per refused input, with its line number and reason."""

    def __init__(self, handle: IO[bytes] | None) -> None:
        self._handle = handle

    def flush(self) -> None:
        """Write out what is buffered."""
        if self._handle is not None:
            self._handle.flush()

    def write(self, line: int, reason: str, message: str, raw: bytes | None = None) -> None:
        """Record one refusal; ``message`` and ``raw`` are masked before they are written."""
        if self._handle is None:
            return
        record: dict[str, object] = {"line": line, "reason": reason,
                                     "message": redact(message.encode()).decode()}
        if raw is not None:
            record["input"] = redact(raw.strip()[:500]).decode("utf-8", "replace")
        self._handle.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))


def read_events(handle: BinaryIO, rejects: Rejects, report: ReplayReport,
                batch: int = BATCH, start: Position = START,
                ) -> Iterator[tuple[list[tuple[int, AnyEvent]], Position]]:
    """Batches of (line number, event), each with the position after its last line; bad lines
    are rejected and counted on the way. ``handle`` is read from ``start``.

    Charges, purchases and refunds take the fast path (:mod:`pointengine.fastparse`); every
    other line, and every line the fast path is unsure of, is validated by ``parse_event``.
    Each block of lines is scanned for a My Number once; in a block where one turns up, each
    line is scanned and a line that carries one goes to ``parse_event``, which rejects it.
    """
    fast = FastParser()
    chunk: list[tuple[int, AnyEvent]] = []
    lines = enumerate(handle, start=start.line + 1)
    offset, number = start.offset, start.line
    while True:
        block = list(itertools.islice(lines, batch))
        if not block:
            break
        suspicious = carries_my_number(b"".join(raw for _, raw in block))
        for number, raw in block:
            offset += len(raw)
            if not raw.strip():
                continue
            report.lines += 1
            event = None if suspicious and carries_my_number(raw) else fast.parse(raw)
            if event is None:
                try:
                    event = parse_event(raw)
                except InputError as exc:
                    report.rejected += 1
                    report.reasons[exc.reason_code] += 1
                    rejects.write(number, exc.reason_code, str(exc), raw)
                    continue
            chunk.append((number, event))
            if len(chunk) >= batch:
                yield chunk, Position(offset, number)
                chunk = []
    if chunk or (offset, number) != (start.offset, start.line):
        yield chunk, Position(offset, number)


def open_events(events: Path) -> BinaryIO:
    """``events`` opened for reading, or :class:`UnreadableEvents` saying why it cannot be."""
    try:
        return events.open("rb")
    except OSError as exc:
        raise UnreadableEvents(f"cannot read the events file {events}: "
                               f"{exc.strerror or exc}") from None


def replay(events: Path, engine: Engine, *, rejects: Path | None = None,
           on_progress: Callable[[int], None] | None = None,
           on_decisions: Callable[[list[Decision]], None] | None = None,
           batch: int = BATCH, should_stop: Callable[[], bool] | None = None,
           start: Position = START,
           on_position: Callable[[Position], None] | None = None) -> ReplayReport:
    """Replay ``events`` through ``engine`` from ``start``; return the report.

    After each batch: ``on_decisions`` gets its decisions, ``on_progress`` the bytes read,
    ``on_position`` how far the replay got (the rejects file is flushed first, so that a
    checkpoint taken then is consistent with it), and ``should_stop`` is asked whether to go
    on; when it says no the replay ends there, between batches, and the report says so.
    Raises :class:`UnreadableEvents` before writing anything when ``events`` cannot be read.
    """
    report = ReplayReport(position=start)
    started = time.perf_counter()
    with open_events(events) as handle, contextlib.ExitStack() as stack:
        reject_handle = stack.enter_context(rejects.open("ab")) if rejects is not None else None
        sink = Rejects(reject_handle)
        stack.enter_context(fewer_collections())
        handle.seek(start.offset)
        for chunk, position in read_events(handle, sink, report, batch, start):
            decisions = engine.process([event for _, event in chunk])
            for (number, _), decision in zip(chunk, decisions, strict=True):
                _count(report, sink, number, decision)
            report.position = position
            if on_decisions is not None:
                on_decisions(decisions)
            if on_progress is not None:
                on_progress(position.offset)
            if on_position is not None:
                sink.flush()
                on_position(position)
            if should_stop is not None and should_stop():
                report.stopped_early = True
                break
    report.seconds = time.perf_counter() - started
    report.totals = engine.store.totals()
    return report


def _count(report: ReplayReport, sink: Rejects, number: int, decision: Decision) -> None:
    status = decision.applied.status
    if status == "applied":
        report.applied += 1
    elif status == "duplicate":
        report.duplicates += 1
    else:
        code = decision.applied.code
        report.rejected += 1
        report.reasons[code] += 1
        sink.write(number, code, decision.applied.reason or code)

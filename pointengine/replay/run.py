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

from pointengine.decide.engine import Decision, Engine, fewer_collections, frozen_between_batches
from pointengine.errors import InputError, UnreadableEvents
from pointengine.lane.lane import Lane
from pointengine.lane.scan import suspects
from pointengine.model.events import AnyEvent, parse_event
from pointengine.model.fastparse import FastParser
from pointengine.model.privacy import carries_my_number, redact
from pointengine.replay.redis_replay import RedisLaneReplay
from pointengine.store.redis_store import RedisStore
from pointengine.store.writeback import WriteBackStore

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
    lane_lines: int = 0
    """Lines the compiled lane decided (:mod:`pointengine.lane.lane`); the rest took the Python
    path."""

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


class _InLineOrder(Rejects):
    """Refusals held back and written in the order of their lines: a batch's bad lines are
    found while it is read, its refused events when it is decided."""

    def __init__(self, sink: Rejects) -> None:
        super().__init__(None)
        self._sink = sink
        self._held: list[tuple[int, str, str, bytes | None]] = []

    def write(self, line: int, reason: str, message: str, raw: bytes | None = None) -> None:
        """Hold one refusal back."""
        self._held.append((line, reason, message, raw))

    def release(self) -> None:
        """Write what was held, by line number."""
        for line, reason, message, raw in sorted(self._held, key=lambda held: held[0]):
            self._sink.write(line, reason, message, raw)
        self._held.clear()


class Lines:
    """A block of lines read together: ``raws``, the first of them line number ``first``.
    ``lines[i]`` is ``(line number, raw line)``."""

    __slots__ = ("first", "raws")

    def __init__(self, first: int, raws: list[bytes]) -> None:
        self.first = first
        self.raws = raws

    def __len__(self) -> int:
        return len(self.raws)

    def __getitem__(self, index: int) -> tuple[int, bytes]:
        return self.first + index, self.raws[index]

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        return zip(itertools.count(self.first), self.raws, strict=False)


def read_blocks(handle: BinaryIO, batch: int = BATCH, start: Position = START,
                ) -> Iterator[tuple[Lines, Position]]:
    """Blocks of ``batch`` lines, each with the position after its last line; ``handle`` is
    read from ``start``. A block may hold blank lines."""
    number = start.line + 1
    offset = start.offset
    while True:
        raws = list(itertools.islice(handle, batch))
        if not raws:
            return
        offset += sum(map(len, raws))
        yield Lines(number, raws), Position(offset, number + len(raws) - 1)
        number += len(raws)


class _Parser:
    """Validates lines for the Python path, rejecting bad ones on the way (see
    :func:`read_events`)."""

    def __init__(self, rejects: Rejects, report: ReplayReport) -> None:
        self.fast = FastParser()
        self.rejects = rejects
        self.report = report

    def parse(self, number: int, raw: bytes, flagged: bool) -> AnyEvent | None:
        """The event of a non-blank line, or None when it was rejected (and counted)."""
        self.report.lines += 1
        event = None if flagged else self.fast.parse(raw)
        if event is None:
            try:
                event = parse_event(raw)
            except InputError as exc:
                self.report.rejected += 1
                self.report.reasons[exc.reason_code] += 1
                self.rejects.write(number, exc.reason_code, str(exc), raw)
                return None
        return event


def _flagged(raws: list[bytes]) -> set[int] | None:
    """Indices of the lines that carry a My Number, or None when none does.

    A compiled prefilter (:func:`pointengine.lane.scan.suspects`) passes the lines that cannot carry
    one; the guard looks at the others.
    """
    found = {i for i in suspects(raws) if carries_my_number(raws[i])}
    return found or None


def read_events(handle: BinaryIO, rejects: Rejects, report: ReplayReport,
                batch: int = BATCH, start: Position = START,
                ) -> Iterator[tuple[list[tuple[int, AnyEvent]], Position]]:
    """Batches of (line number, event), each with the position after its last line; bad lines
    are rejected and counted on the way. ``handle`` is read from ``start``.

    Charges, purchases and refunds take the fast path (:mod:`pointengine.model.fastparse`); every
    other line, and every line the fast path is unsure of, is validated by ``parse_event``.
    A line that carries a My Number goes to ``parse_event``, which rejects it.
    """
    parser = _Parser(rejects, report)
    for block, position in read_blocks(handle, batch, start):
        flagged = _flagged(block.raws) or ()
        chunk: list[tuple[int, AnyEvent]] = []
        for i, (number, raw) in enumerate(block):
            if raw.strip():
                event = parser.parse(number, raw, i in flagged)
                if event is not None:
                    chunk.append((number, event))
        yield chunk, position


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
           after_batch: Callable[[], None] | None = None,
           batch: int = BATCH, should_stop: Callable[[], bool] | None = None,
           start: Position = START,
           on_position: Callable[[Position], None] | None = None) -> ReplayReport:
    """Replay ``events`` through ``engine`` from ``start``; return the report.

    After each batch: ``on_decisions`` gets its decisions, ``after_batch`` is called,
    ``on_progress`` gets the bytes read, ``on_position`` how far the replay got (the rejects
    file is flushed first, so that a checkpoint taken then is consistent with it), and
    ``should_stop`` is asked whether to go on; when it says no the replay ends there, between
    batches, and the report says so.
    Raises :class:`UnreadableEvents` before writing anything when ``events`` cannot be read.

    Unless ``on_decisions`` asks for every decision, the lines the engine's compiled lane
    takes (:mod:`pointengine.lane.lane`: charges, purchases, refunds, applications,
    registrations) go through it, on the embedded store or, as batches for the store's
    script, on Redis (:mod:`pointengine.replay.redis_replay`); the other lines go through the Python
    path, each in its turn. The ledger, the rejects and the state are the same either way.
    """
    report = ReplayReport(position=start)
    started = time.perf_counter()
    lane = engine.lane() if on_decisions is None else None
    on_redis = isinstance(engine.store, RedisStore)
    with open_events(events) as handle, contextlib.ExitStack() as stack:
        reject_handle = stack.enter_context(rejects.open("ab")) if rejects is not None else None
        sink = Rejects(reject_handle)
        stack.enter_context(fewer_collections())
        settle = stack.enter_context(frozen_between_batches())
        handle.seek(start.offset)
        if lane is None:
            batches: Iterator[Position] = _python_batches(handle, engine, sink, report, batch,
                                                          start, on_decisions)
        elif on_redis:
            assert isinstance(engine.store, RedisStore)
            batches = RedisLaneReplay(engine, engine.store).blocks(handle, sink, report, batch,
                                                                   start)
        else:
            batches = _lane_batches(handle, engine, lane, sink, report, batch, start)
        write_back = engine.store if isinstance(engine.store, WriteBackStore) else None
        for position in batches:
            settle()
            if write_back is not None:
                write_back.write_back()
            report.position = position
            if after_batch is not None:
                after_batch()
            if on_progress is not None:
                on_progress(position.offset)
            if on_position is not None:
                sink.flush()
                if write_back is not None:
                    write_back.confirm()
                on_position(position)
            if should_stop is not None and should_stop():
                report.stopped_early = True
                break
        if write_back is not None:
            write_back.confirm()
    report.seconds = time.perf_counter() - started
    report.totals = engine.store.totals()
    return report


def _python_batches(handle: BinaryIO, engine: Engine, sink: Rejects, report: ReplayReport,
                    batch: int, start: Position,
                    on_decisions: Callable[[list[Decision]], None] | None,
                    ) -> Iterator[Position]:
    """Every line parsed, and decided by the engine a batch at a time."""
    held = _InLineOrder(sink)
    for chunk, position in read_events(handle, held, report, batch, start):
        decisions = engine.process([event for _, event in chunk])
        for (number, _), decision in zip(chunk, decisions, strict=True):
            _count(report, held, number, decision)
        held.release()
        if on_decisions is not None:
            on_decisions(decisions)
        yield position


def _lane_batches(handle: BinaryIO, engine: Engine, lane: Lane, sink: Rejects,
                  report: ReplayReport, batch: int, start: Position) -> Iterator[Position]:
    """Each block through the lane; a line it leaves goes through the Python path."""
    parser = _Parser(sink, report)
    for block, position in read_blocks(handle, batch, start):
        raws = block.raws
        flagged = _flagged(raws)
        i = 0
        while i < len(raws):
            i = lane.run(raws, i, flagged)
            count_lane(report, sink, lane, block)
            if i == len(raws):
                break
            number, raw = block[i]
            if raw.strip():
                event = parser.parse(number, raw, flagged is not None and i in flagged)
                if event is not None:
                    _count(report, sink, number, engine.process([event])[0])
            i += 1
        yield position


def count_lane(report: ReplayReport, sink: Rejects, lane: Lane, block: Lines) -> None:
    """Move what the lane counted into the report, and write its refusals (in intents mode
    the store's answer counts the rest)."""
    report.lines += lane.lines
    report.lane_lines += lane.lines
    report.applied += lane.taken_applied
    report.duplicates += lane.duplicates
    report.rejected += lane.rejected
    for index, code, message in lane.rejects:
        report.reasons[str(code)] += 1
        sink.write(block.first + index, code, message)
    lane.lines = lane.taken_applied = lane.duplicates = lane.rejected = 0
    lane.rejects.clear()


def _count(report: ReplayReport, sink: Rejects, number: int, decision: Decision) -> None:
    status = decision.applied.status
    if status == "applied":
        report.applied += 1
    elif status == "duplicate":
        report.duplicates += 1
    else:
        code, message = decision.applied.refusal()
        report.rejected += 1
        report.reasons[str(code)] += 1
        sink.write(number, code, message)

"""Replay: evaluate a stream of JSON-line events in batches, never stopping on bad input.

Each line is validated; a bad line goes to the rejects file with its line number and reason
(a My Number is masked, never repeated) and the run goes on. Valid events go to the engine in
batches; the store writes the ledger. The report counts what happened and sums the points per
program and per provider.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from pointengine.decide.engine import Decision, Engine, fewer_collections, frozen_between_batches
from pointengine.lane.attach import lane_for
from pointengine.lane.lane import Lane
from pointengine.model.output import appending
from pointengine.replay.reading import (
    BATCH,
    Lines,
    Parser,
    flagged_lines,
    open_events,
    read_blocks,
    read_events,
)
from pointengine.replay.redis_replay import RedisLaneReplay
from pointengine.replay.report import (
    START,
    InLineOrder,
    Position,
    Rejects,
    ReplayReport,
    count_decision,
    count_lane,
)
from pointengine.store.redis_store import RedisStore
from pointengine.store.writeback import WriteBackStore

__all__ = ["BATCH", "START", "Lines", "Position", "Rejects", "ReplayReport", "open_events",
           "read_blocks", "read_events", "replay"]


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
    Raises :class:`UnreadableEvents` before writing anything when ``events`` cannot be read,
    and :class:`~pointengine.errors.OutputError` when the rejects file or the ledger cannot be
    written (the replay stops there; what it wrote since its last checkpoint is for the caller
    to cut back).

    Unless ``on_decisions`` asks for every decision, the lines the engine's compiled lane
    takes (:mod:`pointengine.lane.lane`: charges, purchases, refunds, applications,
    registrations) go through it, on the embedded store or, as batches for the store's
    script, on Redis (:mod:`pointengine.replay.redis_replay`); the other lines go through the Python
    path, each in its turn. The ledger, the rejects and the state are the same either way.
    """
    report = ReplayReport(position=start)
    started = time.perf_counter()
    lane = lane_for(engine) if on_decisions is None else None
    on_redis = isinstance(engine.store, RedisStore)
    with open_events(events) as handle, contextlib.ExitStack() as stack:
        reject_handle = stack.enter_context(appending(rejects)) if rejects is not None else None
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
    held = InLineOrder(sink)
    for chunk, position in read_events(handle, held, report, batch, start):
        decisions = engine.process([event for _, event in chunk])
        for (number, _), decision in zip(chunk, decisions, strict=True):
            count_decision(report, held, number, decision)
        held.release()
        if on_decisions is not None:
            on_decisions(decisions)
        yield position


def _lane_batches(handle: BinaryIO, engine: Engine, lane: Lane, sink: Rejects,
                  report: ReplayReport, batch: int, start: Position) -> Iterator[Position]:
    """Each block through the lane; a line it leaves goes through the Python path."""
    parser = Parser(sink, report)
    for block, position in read_blocks(handle, batch, start):
        raws = block.raws
        flagged = flagged_lines(raws)
        i = 0
        while i < len(raws):
            i = lane.run(raws, i, flagged)
            count_lane(report, sink, lane, block.first)
            if i == len(raws):
                break
            number, raw = block[i]
            if raw.strip():
                event = parser.parse(number, raw, flagged is not None and i in flagged)
                if event is not None:
                    count_decision(report, sink, number, engine.process([event])[0])
            i += 1
        yield position



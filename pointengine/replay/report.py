"""What a replay counts and writes: how far it got, its report, its rejects file.

Shared by every way of replaying (:mod:`pointengine.replay.run` and
:mod:`pointengine.replay.redis_replay`), so that a line is counted the same whichever path
decided it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

import orjson

from pointengine.decide.engine import Decision
from pointengine.errors import OutputError
from pointengine.model.privacy import redact

if TYPE_CHECKING:
    from pointengine.lane.lane import Lane

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
    """The rejects file: one JSON line per refused input, with its line number and reason.

    A write that fails raises :class:`~pointengine.errors.OutputError` naming the file.
    """

    def __init__(self, handle: IO[bytes] | None) -> None:
        self._handle = handle

    def _failed(self, exc: OSError) -> OutputError:
        return OutputError(Path(getattr(self._handle, "name", "the rejects file")), exc)

    def flush(self) -> None:
        """Write out what is buffered."""
        if self._handle is not None:
            try:
                self._handle.flush()
            except OSError as exc:
                raise self._failed(exc) from exc

    def write(self, line: int, reason: str, message: str, raw: bytes | None = None) -> None:
        """Record one refusal; ``message`` and ``raw`` are masked before they are written."""
        if self._handle is None:
            return
        record: dict[str, object] = {"line": line, "reason": reason,
                                     "message": redact(message.encode()).decode()}
        if raw is not None:
            record["input"] = redact(raw.strip())[:500].decode("utf-8", "replace")
        try:
            self._handle.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
        except OSError as exc:
            raise self._failed(exc) from exc


class InLineOrder(Rejects):
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


def count_lane(report: ReplayReport, sink: Rejects, lane: Lane, first: int) -> None:
    """Move what the lane counted into the report, and write its refusals (in intents mode
    the store's answer counts the rest); ``first`` is the line number of the block's first
    line."""
    report.lines += lane.lines
    report.lane_lines += lane.lines
    report.applied += lane.taken_applied
    report.duplicates += lane.duplicates
    report.rejected += lane.rejected
    for index, code, message in lane.rejects:
        report.reasons[str(code)] += 1
        sink.write(first + index, code, message)
    lane.lines = lane.taken_applied = lane.duplicates = lane.rejected = 0
    lane.rejects.clear()


def count_decision(report: ReplayReport, sink: Rejects, number: int, decision: Decision) -> None:
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

"""Reading an events file: blocks of lines, each line validated, bad ones rejected on the
way (a My Number masked, never repeated)."""

from __future__ import annotations

import io
import itertools
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from pointengine.errors import InputError, UnreadableEvents
from pointengine.model.bounds import MAX_EVENT_BYTES
from pointengine.model.events import AnyEvent, parse_event
from pointengine.model.fastparse import FastParser
from pointengine.model.privacy import carries_my_number
from pointengine.model.scan import longest, suspects
from pointengine.replay.report import START, Position, Rejects, ReplayReport

BATCH = 2_000


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
    read from ``start``. A block may hold blank lines.

    No line is held longer than :data:`~pointengine.model.bounds.MAX_EVENT_BYTES` (its line
    break not counted): of a longer one the block holds its beginning, cut so that no reader
    takes it for an event (the Python path refuses it as too large), and the rest is skipped
    unread by any parser.
    """
    number = start.line + 1
    offset = start.offset
    reader = _LineReader(handle)
    while True:
        raws = reader.take(batch)
        if not raws:
            return
        offset += sum(map(len, raws))
        if longest(raws) > MAX_EVENT_BYTES:
            offset += sum(reader.cut.pop(id(raw), 0) for raw in raws)
            raws = [raw if len(raw.rstrip(b"\r\n")) <= MAX_EVENT_BYTES else _cut(raw)
                    for raw in raws]
        yield Lines(number, raws), Position(offset, number + len(raws) - 1)
        number += len(raws)


_CHUNK = 1 << 20


def _cut(raw: bytes) -> bytes:
    """A line longer than the bound, cut: a NUL is no part of a JSON text, so the cut line is
    no event to any reader."""
    return raw[:MAX_EVENT_BYTES] + b"\x00\n"


class _LineReader:
    """The lines of a binary file, split in C a chunk at a time (a call per line from Python
    would cost a tenth of what a replay does with a line), none held longer than the bound: a
    line that goes on past it is cut as soon as it does, and the rest of it read past."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self._lines: Iterator[bytes] = iter(())
        self._rest = b""  # the beginning of the line the chunks read so far end in
        self.cut: dict[int, int] = {}
        """Lines cut before the whole of them was read, by ``id``: the bytes left out."""

    def take(self, n: int) -> list[bytes]:
        """The next ``n`` lines (fewer at the end of the file), each with its line break."""
        raws = list(itertools.islice(self._lines, n))
        while len(raws) < n and self._refill():
            raws.extend(itertools.islice(self._lines, n - len(raws)))
        return raws

    def _refill(self) -> bool:
        """Split the next chunk's whole lines; False at the end of the file."""
        chunk = self._handle.read(_CHUNK)
        if not chunk:  # what is left: whole lines after a cut one, and a last line
            last, self._rest = self._rest, b""
            self._lines = iter(io.BytesIO(last))
            return bool(last)
        data = self._rest + chunk
        end = data.rfind(b"\n") + 1
        self._rest = data[end:]
        whole: Iterable[bytes] = io.BytesIO(data[:end])
        if len(self._rest) > MAX_EVENT_BYTES + 2:  # a long line, its line break not read yet
            whole = itertools.chain(whole, (self._cut_rest(),))
        self._lines = iter(whole)
        return True

    def _cut_rest(self) -> bytes:
        """The line the rest begins, cut; the chunks are read past its line break."""
        long, self._rest = self._rest, b""
        length = len(long)
        while True:
            chunk = self._handle.read(_CHUNK)
            end = chunk.find(b"\n") + 1
            if not chunk or end:
                length += end
                self._rest = chunk[end:] if end else b""
                break
            length += len(chunk)
        line = _cut(long)
        self.cut[id(line)] = length - len(line)
        return line


class Parser:
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


def flagged_lines(raws: list[bytes]) -> set[int] | None:
    """Indices of the lines that carry a My Number, or None when none does.

    A compiled prefilter (:func:`pointengine.model.scan.suspects`) passes the lines that cannot
    carry one; the guard looks at the others.
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
    parser = Parser(rejects, report)
    for block, position in read_blocks(handle, batch, start):
        flagged = flagged_lines(block.raws) or ()
        chunk: list[tuple[int, AnyEvent]] = []
        for i, (number, raw) in enumerate(block):
            if raw.strip():
                event = parser.parse(number, raw, i in flagged)
                if event is not None:
                    chunk.append((number, event))
        yield chunk, position


def open_events(events: Path) -> BinaryIO:
    """``events`` opened for reading, or :class:`UnreadableEvents` saying why it cannot be."""
    return open_regular(events, "events file")


def open_regular(path: Path, what: str) -> BinaryIO:
    """``path`` opened for reading, or :class:`UnreadableEvents` saying why it cannot be
    (``what`` names it: ``events file``, ``ledger``).

    Only a regular file is read: a device or a pipe (``/dev/zero``, a FIFO) may never end,
    and opening a FIFO would wait for a writer, so its kind is asked first.
    """
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            raise UnreadableEvents(f"cannot read the {what} {path}: not a regular file")
        return path.open("rb")
    except OSError as exc:
        raise UnreadableEvents(f"cannot read the {what} {path}: "
                               f"{exc.strerror or exc}") from None



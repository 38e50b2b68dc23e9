"""The ledger: one append-only line per award or reversal, the audit trail of every yen.

A line names the event that caused it, the person, the program and the rule version that
decided, the points (negative for a reversal), the provider the points flow to, and the event's
time. Lines are JSON (orjson), one per line, in the order the store applied them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, Literal, Protocol

import orjson

from pointengine.errors import IntegrityError, OutputError
from pointengine.model.bounds import MAX_EVENT_BYTES
from pointengine.model.output import make_folder, writing
from pointengine.model.privacy import carries_my_number, redact


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One award (points > 0) or reversal (points < 0)."""

    seq: int
    kind: Literal["award", "reversal"]
    event: str
    person: str
    program: str
    version: int
    points: int
    provider: str
    at: str
    transaction: str | None = None

    def to_json(self) -> bytes:
        """The entry as one JSON line (with the newline); orjson reads the dataclass directly."""
        return orjson.dumps(self, option=orjson.OPT_APPEND_NEWLINE)

    @classmethod
    def from_json(cls, line: bytes | str) -> LedgerEntry:
        """Read back a line written by :meth:`to_json`.

        Raises :class:`IntegrityError` for anything else: a ledger that does not hold exactly
        such lines (integer yen and versions, the fields of an entry) was damaged. Its message
        quotes the line's content masked (:func:`~pointengine.model.privacy.redact`): a
        damaged line may hold a My Number.
        """
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise _damaged(f"not JSON: {exc}") from None
        if not isinstance(data, dict) or set(data) != _FIELDS:
            got = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise _damaged(f"not a ledger entry: fields {got}, expected {sorted(_FIELDS)}")
        for name, kind in _TYPES.items():
            value = data[name]
            if type(value) is not kind and not (name == "transaction" and value is None):
                raise _damaged(f"{name} is {value!r}, not {kind.__name__}")
        if data["kind"] not in ("award", "reversal"):
            raise _damaged(f"kind is {data['kind']!r}, not 'award' or 'reversal'")
        return cls(**data)


def _damaged(message: str) -> IntegrityError:
    """An :class:`IntegrityError` whose message, built from a line's content, is masked."""
    return IntegrityError(redact(message.encode("utf-8", "surrogateescape"))
                          .decode("utf-8", "surrogateescape"))


def entry_of(line: bytes, where: str) -> LedgerEntry:
    """The entry of the ledger line ``line`` (``where``: its file and number, for messages).

    A line that carries a My Number is refused whatever else it holds, and the message does
    not repeat it (a ledger never holds one: a replay refuses such events); any other damage
    raises :class:`IntegrityError` as :meth:`LedgerEntry.from_json` does, after ``where``.
    """
    if carries_my_number(line):
        raise IntegrityError(f"{where}: a My Number in the line (not shown): a ledger never "
                             "holds one")
    try:
        return LedgerEntry.from_json(line)
    except IntegrityError as exc:
        raise IntegrityError(f"{where}: {exc}") from None


def numbered_lines(handle: BinaryIO, name: str) -> Iterator[tuple[int, bytes]]:
    """The lines of a ledger file, numbered from 1 (blank ones too), none held longer than
    :data:`~pointengine.model.bounds.MAX_EVENT_BYTES` (its line break not counted): a longer
    one raises :class:`IntegrityError` naming ``name`` and the line, as soon as it is seen."""
    number = 0
    while line := handle.readline(MAX_EVENT_BYTES + 3):
        number += 1
        if len(line.rstrip(b"\r\n")) > MAX_EVENT_BYTES:
            raise IntegrityError(f"{name}:{number}: a line over {MAX_EVENT_BYTES:,} bytes; a "
                                 "ledger line is a few hundred")
        yield number, line


_TYPES: dict[str, type] = {"seq": int, "kind": str, "event": str, "person": str, "program": str,
                           "version": int, "points": int, "provider": str, "at": str,
                           "transaction": str}
_FIELDS = set(_TYPES)


class LedgerSink(Protocol):
    """Where a store appends entries, in order."""

    def append(self, entries: Iterable[LedgerEntry]) -> None:
        """Append ``entries`` durably, in order."""

    def append_lines(self, lines: bytes) -> None:
        """Append entries already written as :meth:`LedgerEntry.to_json` lines, in order
        (the replay's fast lane writes them so)."""


class ListSink:
    """Keeps entries in memory (tests, ``explain``)."""

    def __init__(self) -> None:
        self.entries: list[LedgerEntry] = []

    def append(self, entries: Iterable[LedgerEntry]) -> None:
        """Append in memory."""
        self.entries.extend(entries)

    def append_lines(self, lines: bytes) -> None:
        """Append the entries of JSON lines, read back as entries."""
        self.entries.extend(LedgerEntry.from_json(line) for line in lines.splitlines())


class FileSink:
    """Appends JSON lines to a file, buffered; ``close`` flushes.

    A write that fails (a full disk, a read-only file system) raises
    :class:`~pointengine.errors.OutputError` naming the file; what was written of it since the
    last checkpoint is for the checkpoint's owner to cut back.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        make_folder(path.parent)
        with writing(path):
            self._file: IO[bytes] = path.open("ab", buffering=1 << 20)

    def append(self, entries: Iterable[LedgerEntry]) -> None:
        """Append the entries' JSON lines."""
        self.append_lines(b"".join(e.to_json() for e in entries))

    def append_lines(self, lines: bytes) -> None:
        """Append JSON lines as they are."""
        try:
            self._file.write(lines)
        except OSError as exc:
            raise OutputError(self.path, exc) from exc

    def flush(self) -> int:
        """Write out what is buffered; return the file's length in bytes."""
        with writing(self.path):
            self._file.flush()
            return self._file.tell()

    def close(self) -> None:
        """Flush and close the file."""
        with writing(self.path):
            self._file.close()

    def abandon(self) -> None:
        """Close the file, giving up what is still buffered: after a failure to write, when
        the file is about to be cut back to its last checkpoint anyway."""
        # closing flushes, which fails again on a full disk; the file is closed all the same
        with contextlib.suppress(OSError):
            self._file.close()


def read_ledger(path: Path) -> Iterator[LedgerEntry]:
    """Every entry of a ledger file, in order; a damaged line raises :class:`IntegrityError`
    that names the file and the line."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    yield LedgerEntry.from_json(line)
                except IntegrityError as exc:
                    raise IntegrityError(f"{path}:{number}: {exc}") from None

"""The ledger: one append-only line per award or reversal, the audit trail of every yen.

A line names the event that caused it, the person, the program and the rule version that
decided, the points (negative for a reversal), the provider the points flow to, and the event's
time. Lines are JSON (orjson), one per line, in the order the store applied them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal, Protocol

import orjson


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
        """Read back a line written by :meth:`to_json`."""
        return cls(**orjson.loads(line))


class LedgerSink(Protocol):
    """Where a store appends entries, in order."""

    def append(self, entries: Iterable[LedgerEntry]) -> None:
        """Append ``entries`` durably, in order."""


class ListSink:
    """Keeps entries in memory (tests, ``explain``)."""

    def __init__(self) -> None:
        self.entries: list[LedgerEntry] = []

    def append(self, entries: Iterable[LedgerEntry]) -> None:
        """Append in memory."""
        self.entries.extend(entries)


class FileSink:
    """Appends JSON lines to a file, buffered; ``close`` flushes."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] = path.open("ab", buffering=1 << 20)

    def append(self, entries: Iterable[LedgerEntry]) -> None:
        """Append the entries' JSON lines."""
        self._file.write(b"".join(e.to_json() for e in entries))

    def flush(self) -> int:
        """Write out what is buffered; return the file's length in bytes."""
        self._file.flush()
        return self._file.tell()

    def close(self) -> None:
        """Flush and close the file."""
        self._file.close()


def read_ledger(path: Path) -> Iterator[LedgerEntry]:
    """Every entry of a ledger file, in order."""
    with path.open("rb") as handle:
        for line in handle:
            if line.strip():
                yield LedgerEntry.from_json(line)

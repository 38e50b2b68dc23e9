"""Checkpoints of the embedded store, consistent with its ledger file.

``replay`` on the embedded store keeps its state in ``state.pickle`` next to ``ledger.jsonl``.
A checkpoint records the store together with the ledger's length in bytes at that moment, and
is written at batch boundaries only (where the store and the ledger agree), atomically (a
temporary file renamed over the old one; one that cannot be written whole, on a full disk say,
is removed and the old checkpoint stays).

When a run stops without its final checkpoint (killed, a crash, a power cut), the ledger may
hold lines written after the last checkpoint, for events the saved state does not know. On
the next run :func:`restore` cuts the ledger back to the checkpoint's length; replaying the
same file then applies those events again and writes the same lines, so every event is in the
ledger exactly once. A ledger *shorter* than its checkpoint has lost lines that the state
counts: that cannot be repaired, and :class:`CheckpointError` says so.

A checkpoint also holds the replay's progress (:func:`progress_record`): which file, how far
into it (bytes and line), the rejects file's length, and fingerprints of the file's first
bytes and of those before that point. :func:`resume_at` continues the same file there, with
the rejects cut back too, so a bad line is reported once.

A run that cannot write its output (:class:`~pointengine.errors.OutputError`) does at once what
the next run would: it cuts the ledger and the rejects back to what the last checkpoint
recorded (:class:`Kept`), or removes them when there is no checkpoint yet, so that nothing
half-written stays and the next run continues from the checkpoint.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pointengine.errors import OperationalError, OutputError
from pointengine.model.ledger import FileSink
from pointengine.model.output import cut_back, length_of, write_whole, writing
from pointengine.replay.report import START, Position
from pointengine.store.memory import MemoryStore

FORMAT = 5
"""The layout of a checkpoint's objects; raised whenever a class the store keeps changes (2:
transactions remember their payer, enrolments their JST days; 3: transactions and awards are
compiled records, :mod:`pointengine.store.records`, and keys are fingerprinted with XXH64; 4: the
counters are a :class:`~pointengine.store.compact.Counters` table; 5: the classes moved into the
package's folders, so a checkpoint of format 4 cannot even be unpickled)."""


class CheckpointError(OperationalError):
    """A saved state that does not fit its ledger (or is not a saved embedded store)."""


@dataclass(frozen=True)
class Kept:
    """The ledger's and the rejects' lengths as the last checkpoint left them (None: the file
    did not exist then), to cut them back to when a run fails before its next checkpoint."""

    ledger: Path
    rejects: Path
    ledger_bytes: int | None
    rejects_bytes: int | None

    @classmethod
    def now(cls, ledger: Path, rejects: Path) -> Kept:
        """The files' lengths now: right after a checkpoint, or when a run starts."""
        return cls(ledger, rejects, length_of(ledger), length_of(rejects))

    def cut_back(self) -> OutputError | None:
        """Cut both files back (remove one that did not exist); the first failure to, if any
        (the next run's :func:`restore` and :func:`resume_at` cut them back then)."""
        failed: OutputError | None = None
        for path, length in ((self.ledger, self.ledger_bytes),
                             (self.rejects, self.rejects_bytes)):
            try:
                cut_back(path, length)
            except OutputError as exc:
                failed = failed or exc
        return failed


@dataclass(frozen=True)
class Restored:
    """A store restored from a checkpoint, what had to be cut from the ledger, and the
    replay's own record saved with it (see :func:`save`)."""

    store: MemoryStore
    dropped_bytes: int
    dropped_lines: int
    progress: dict[str, Any] | None = None


def save(path: Path, store: MemoryStore, sink: FileSink,
         progress: dict[str, Any] | None = None) -> None:
    """Write a checkpoint of ``store`` with the current length of ``sink``'s ledger, and
    ``progress``, the replay's record of how far it got (plain data).

    Raises :class:`~pointengine.errors.OutputError` when the ledger or the checkpoint cannot be
    written; the previous checkpoint is then left as it was, and no partial file.
    """
    ledger_bytes = sink.flush()
    kept = store.sink
    store.sink = None  # type: ignore[assignment]  # a file handle does not pickle
    try:
        payload = pickle.dumps({"format": FORMAT, "store": store, "ledger_bytes": ledger_bytes,
                                "progress": progress}, protocol=pickle.HIGHEST_PROTOCOL)
    finally:
        store.sink = kept
    write_whole(path, payload, durable=True)


def load(path: Path) -> tuple[MemoryStore, int, dict[str, Any] | None]:
    """The store saved in ``path``, the ledger length it was saved with and the replay's
    progress record.

    Raises :class:`CheckpointError` when ``path`` is not a checkpoint of the embedded store, or
    one of another :data:`FORMAT` (its objects would lack what this version reads).
    """
    try:
        saved = pickle.loads(path.read_bytes())
    except ImportError:
        raise CheckpointError(
            f"{path} was saved by another version of pointengine (its classes are not where "
            "this version keeps them): replay the stream with --fresh to start over") from None
    except (pickle.UnpicklingError, EOFError, AttributeError) as exc:
        raise CheckpointError(f"{path} is not a saved embedded store: {exc}") from None
    format_ = saved.get("format", 1) if isinstance(saved, dict) else 1
    if isinstance(saved, MemoryStore) or (isinstance(saved, dict) and format_ != FORMAT
                                          and isinstance(saved.get("store"), MemoryStore)):
        raise CheckpointError(
            f"{path} was saved by another version of pointengine (state format {format_}; this "
            f"version reads {FORMAT}): replay the stream with --fresh to start over")
    if not (isinstance(saved, dict) and isinstance(saved.get("store"), MemoryStore)
            and isinstance(saved.get("ledger_bytes"), int)):
        raise CheckpointError(f"{path} is not a saved embedded store")
    progress = saved.get("progress")
    return saved["store"], saved["ledger_bytes"], progress if isinstance(progress, dict) else None


def restore(path: Path, ledger: Path) -> Restored:
    """The store saved in ``path``, with ``ledger`` cut back to the checkpoint's length.

    Raises :class:`CheckpointError` when ``path`` is not a checkpoint of the embedded store, or
    when ``ledger`` is shorter than the checkpoint recorded, and
    :class:`~pointengine.errors.OutputError` when it is longer and cannot be cut back.
    """
    store, recorded, progress = load(path)
    actual = ledger.stat().st_size if ledger.exists() else 0
    if actual < recorded:
        raise CheckpointError(
            f"{ledger} has {actual:,} bytes but the state in {path} was saved when it had "
            f"{recorded:,}: ledger lines are missing and cannot be recovered; use --fresh to "
            "start over")
    return Restored(store, actual - recorded, _cut(ledger, recorded), progress)


def progress_record(events: Path, position: Position, rejects_bytes: int) -> dict[str, Any]:
    """The progress record of a replay of ``events`` that got to ``position``."""
    head, before = _fingerprints(events, position.offset)
    return {"input": str(events.resolve()), "offset": position.offset, "line": position.line,
            "head": head, "before": before, "rejects_bytes": rejects_bytes}


def resume_at(events: Path, record: dict[str, Any] | None, rejects: Path) -> Position:
    """Where to continue ``events``: where ``record`` says, when it is a record of the same
    file (its first bytes and those before that point unchanged), with ``rejects`` cut back
    to its length then; otherwise at the start."""
    if not record or record.get("input") != str(events.resolve()):
        return START
    offset = int(record["offset"])
    if events.stat().st_size < offset or _fingerprints(events, offset) != (
            record.get("head"), record.get("before")):
        return START
    if rejects.exists():
        _cut(rejects, int(record.get("rejects_bytes", 0)))
    return Position(offset, int(record["line"]))


def _fingerprints(events: Path, offset: int) -> tuple[str, str]:
    """SHA-256 of the file's first 64 KiB and of the 64 KiB before ``offset`` (both within
    the first ``offset`` bytes)."""
    window = 1 << 16
    with events.open("rb") as handle:
        head = handle.read(min(offset, window))
        handle.seek(max(0, offset - window))
        before = handle.read(min(offset, window))
    return hashlib.sha256(head).hexdigest(), hashlib.sha256(before).hexdigest()


def _cut(path: Path, length: int) -> int:
    """Cut ``path`` back to ``length`` bytes; the number of lines cut. Raises
    :class:`~pointengine.errors.OutputError` when it cannot."""
    current = length_of(path)
    if current is None or current <= length:
        return 0  # nothing to cut: a read-only file system need not be written then
    with writing(path), path.open("r+b") as handle:
        handle.seek(length)
        lines = handle.read().count(b"\n")
        handle.truncate(length)
    return lines

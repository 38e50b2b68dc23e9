"""Checkpoints of the embedded store, consistent with its ledger file.

``replay`` on the embedded store keeps its state in ``state.pickle`` next to ``ledger.jsonl``.
A checkpoint records the store together with the ledger's length in bytes at that moment, and
is written at batch boundaries only (where the store and the ledger agree), atomically (a
temporary file renamed over the old one).

When a run stops without its final checkpoint (killed, a crash, a power cut), the ledger may
hold lines written after the last checkpoint, for events the saved state does not know. On
the next run :func:`restore` cuts the ledger back to the checkpoint's length; replaying the
same file then applies those events again and writes the same lines, so every event is in the
ledger exactly once. A ledger *shorter* than its checkpoint has lost lines that the state
counts: that cannot be repaired, and :class:`CheckpointError` says so.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pointengine.errors import OperationalError
from pointengine.ledger import FileSink
from pointengine.memory_store import MemoryStore


class CheckpointError(OperationalError):
    """A saved state that does not fit its ledger (or is not a saved embedded store)."""


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
    ``progress``, the replay's record of how far it got (plain data)."""
    ledger_bytes = sink.flush()
    kept = store.sink
    store.sink = None  # type: ignore[assignment]  # a file handle does not pickle
    try:
        payload = pickle.dumps({"store": store, "ledger_bytes": ledger_bytes,
                                "progress": progress}, protocol=pickle.HIGHEST_PROTOCOL)
    finally:
        store.sink = kept
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


def load(path: Path) -> tuple[MemoryStore, int | None, dict[str, Any] | None]:
    """The store saved in ``path``, the ledger length it was saved with (None: unknown) and
    the replay's progress record.

    Raises :class:`CheckpointError` when ``path`` is not a checkpoint of the embedded store.
    """
    try:
        saved = pickle.loads(path.read_bytes())
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        raise CheckpointError(f"{path} is not a saved embedded store: {exc}") from None
    if isinstance(saved, MemoryStore):  # written before checkpoints recorded the ledger
        return saved, None, None
    if not (isinstance(saved, dict) and isinstance(saved.get("store"), MemoryStore)
            and isinstance(saved.get("ledger_bytes"), int)):
        raise CheckpointError(f"{path} is not a saved embedded store")
    progress = saved.get("progress")
    return saved["store"], saved["ledger_bytes"], progress if isinstance(progress, dict) else None


def restore(path: Path, ledger: Path) -> Restored:
    """The store saved in ``path``, with ``ledger`` cut back to the checkpoint's length.

    Raises :class:`CheckpointError` when ``path`` is not a checkpoint of the embedded store, or
    when ``ledger`` is shorter than the checkpoint recorded.
    """
    store, recorded, progress = load(path)
    actual = ledger.stat().st_size if ledger.exists() else 0
    if recorded is None:
        return Restored(store, 0, 0)
    if actual < recorded:
        raise CheckpointError(
            f"{ledger} has {actual:,} bytes but the state in {path} was saved when it had "
            f"{recorded:,}: ledger lines are missing and cannot be recovered; use --fresh to "
            "start over")
    dropped_lines = 0
    if actual > recorded:
        with ledger.open("r+b") as handle:
            handle.seek(recorded)
            dropped_lines = handle.read().count(b"\n")
            handle.truncate(recorded)
    return Restored(store, actual - recorded, dropped_lines, progress)

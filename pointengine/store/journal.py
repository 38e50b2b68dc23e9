"""What an embedded store wrote since its last write-back to Redis (the exclusive replay's
journal, :mod:`pointengine.store.writeback`)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Journal"]


@dataclass
class Journal:
    """What the store wrote since the last write-back, appended to by the store and by the
    compiled lane (which holds these lists: they are emptied in place, never replaced)."""

    applied: list[str] = field(default_factory=list)
    """Event keys applied."""
    transactions: list[str | bytes] = field(default_factory=list)
    """Flat (id, record) pairs, in the order written: ``amount|refunded|payer`` for those
    that earned nothing, the lane's new transactions' records as they were made."""
    kept: list[str] = field(default_factory=list)
    """Ids of the transactions the store keeps as a :class:`Transaction` (they earned
    points) whose record is made at write-back, from what the store keeps then, and written
    after the pairs above: those the Python path made, and those changed since a record
    above was made."""
    slots: list[int] = field(default_factory=list)
    """Counter slots the lane changed."""
    counters: list[str] = field(default_factory=list)
    """Counter keys the Python path changed."""
    members: list[str] = field(default_factory=list)
    persons: list[str] = field(default_factory=list)
    tallies: list[str] = field(default_factory=list)
    ledger: list[bytes] = field(default_factory=list)
    """Ledger lines (:meth:`LedgerEntry.to_json`), in order."""

    def clear(self) -> None:
        """Empty every list in place."""
        for name in ("applied", "transactions", "kept", "slots", "counters", "members", "persons",
                     "tallies", "ledger"):
            del getattr(self, name)[:]

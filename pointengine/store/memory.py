"""The embedded store: the whole contract in process memory, no server to install.

Single-threaded by design (one replay, one service worker): nothing else runs between an
intent's checks and its writes, so each intent is atomic. A refused intent is checked before
anything is written, so it changes nothing. The tables and the apply step are compiled
(:mod:`pointengine.store.apply`), shared with the fast lane, which applies what it decides
with the same methods.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pointengine.model.ledger import LedgerSink, ListSink
from pointengine.store.apply import Tables
from pointengine.store.contract import Store

if TYPE_CHECKING:
    from pointengine.store.journal import Journal

__all__ = ["MemoryStore"]


class MemoryStore(Tables, Store):
    """The embedded default store.

    Memory grows with persons, not events: every event key and every transaction that earned
    no refundable points is kept in a compact table (:mod:`pointengine.store.compact`, 8 and 16
    bytes each); only transactions that earned points keep a full record for their refunds.

    ``person_watch``: the ids of the persons the store wrote since the compiled lane, which
    keeps a digest of each person, last looked (it empties the list); None when no lane
    watches. ``journal``: what the store wrote since its last write-back, for a store that
    writes through to Redis (:class:`~pointengine.store.writeback.WriteBackStore`); None for
    the embedded store.
    """

    if TYPE_CHECKING:
        sink: LedgerSink
        journal: Journal | None
        person_watch: list[str] | None

    def __init__(self, sink: LedgerSink | None = None) -> None:
        self.sink = sink if sink is not None else ListSink()

"""The store contract on the embedded store (:class:`MemoryStore` with a :class:`ListSink`)."""

from __future__ import annotations

from pointengine.model.ledger import LedgerEntry, ListSink
from pointengine.store.contract import Store
from pointengine.store.memory import MemoryStore
from tests.store_contract import StoreContract


class TestMemoryStore(StoreContract):
    """Every contract test, on MemoryStore."""

    def make_store(self) -> Store:
        return MemoryStore(ListSink())

    def ledger_entries(self, store: Store) -> list[LedgerEntry]:
        assert isinstance(store, MemoryStore) and isinstance(store.sink, ListSink)
        return list(store.sink.entries)

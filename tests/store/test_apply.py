"""The store contract on the apply step alone: the compiled tables with a ledger sink, no
store class around them."""

from __future__ import annotations

from typing import cast

from pointengine.model.ledger import LedgerEntry, ListSink
from pointengine.store.apply import Tables
from pointengine.store.contract import Store
from tests.store_contract import StoreContract


class _Bare(Tables):
    """The tables as the contract suite uses a store (it closes each one it makes)."""

    def close(self) -> None:
        """Nothing to release."""


class TestApplyStep(StoreContract):
    """Every contract test, on the tables and their apply step."""

    def make_store(self) -> Store:
        tables = _Bare()
        tables.sink = ListSink()
        return cast(Store, tables)

    def ledger_entries(self, store: Store) -> list[LedgerEntry]:
        assert isinstance(store, _Bare) and isinstance(store.sink, ListSink)
        return list(store.sink.entries)

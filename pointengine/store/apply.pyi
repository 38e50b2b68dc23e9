"""The embedded store's tables and the one apply step (compiled; see apply.pyx)."""

from collections.abc import Iterable, Sequence
from typing import Any

from pointengine.model.persons import Person
from pointengine.store.compact import Counters, KeyTable
from pointengine.store.contract import Applied, Intent
from pointengine.store.records import Transaction

PAID_SHIFT: int

def paid_key(transaction: str, payer: str) -> str:
    """The key of a transaction that earned nothing."""

class Tables:
    """Persons, event keys, counters, memberships, transactions, totals and tallies, and the
    apply step on them."""

    _persons: dict[str, Person]
    _applied: KeyTable
    _counters: Counters
    _members: set[str]
    _transactions: dict[str, Transaction]
    _paid: KeyTable
    _totals: dict[tuple[str, str], int]
    _tallies: dict[str, int]
    _seq: int
    sink: Any
    journal: Any
    person_watch: Any
    def persons(self, ids: Iterable[str]) -> dict[str, Person]:
        """The stored persons among ``ids``."""
    def applied(self, events: Iterable[str]) -> set[str]:
        """The event keys already applied."""
    def counter(self, key: str) -> int:
        """A counter's value."""
    def totals(self) -> dict[tuple[str, str], int]:
        """Net points per (program, provider)."""
    def tallies(self, prefix: str) -> dict[str, int]:
        """Tallies under ``prefix``."""
    def apply_many(self, intents: Sequence[Intent]) -> list[Applied]:
        """Apply each intent in order, atomically."""

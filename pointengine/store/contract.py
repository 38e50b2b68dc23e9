"""The store contract: where persons, caps, budgets, transactions and the ledger live.

The engine decides *what* an event may earn (eligibility and the points it asks for); the store
decides *how much it gets*, atomically, against the state of every cap it touches. One call to
:meth:`Store.apply_many` takes a batch of :class:`Intent` and, for each, in order and as one
unit:

1. refuses it as a duplicate if its event key was applied before (nothing changes);
2. for a refund, looks up the transaction; an unknown transaction, one another payer made
   (the refund's ``payer``, person and provider, must be the transaction's) or a refund beyond
   what was paid is refused (nothing changes); otherwise each award the transaction earned
   gives back ``floor(points * refunded_total / amount) - reversed_so_far`` and frees that much
   of every cap the award counted in;
3. for each :class:`Claim`: admits the person to the program (budget in persons, the provider's
   allocation) unless already admitted, or refuses the claim when an admission is full; then
   awards ``min(points, room)`` where room is the least headroom over the claim's caps, and
   counts the award in every cap;
4. adds the intent's tallies (health points towards a lottery), records the transaction (for
   later refunds), writes the person, appends the ledger lines, and marks the event applied.

An embedded implementation (:mod:`pointengine.store.memory`) and Redis implement this contract
and pass the same contract tests. Keys are plain strings built by :mod:`pointengine.decide.awards`.

The values handed to the store are named tuples: several are made for every event, and a named
tuple is built several times faster than a frozen dataclass. What the embedded store keeps of
each transaction that earned points is in :mod:`pointengine.store.records`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from pointengine.errors import IntegrityError
from pointengine.model.persons import Person
from pointengine.model.refusals import Refusal, refusal_message


class Cap(NamedTuple):
    """A counter that an award counts in, and the most it may reach."""

    key: str
    limit: int
    label: str


class Admission(NamedTuple):
    """A counter of persons admitted (a budget in persons, a provider's allocation)."""

    key: str
    limit: int
    label: str


class Claim(NamedTuple):
    """What one program asks to award for one event, before caps."""

    program: str
    version: int
    points: int
    provider: str
    caps: tuple[Cap, ...]
    member_key: str = ""
    admissions: tuple[Admission, ...] = ()
    refundable: bool = True


class Intent(NamedTuple):
    """One event, as the store must apply it."""

    event: str
    person: str
    at: str
    claims: tuple[Claim, ...] = ()
    person_state: Person | None = None
    transaction: str | None = None
    amount: int = 0
    refund_of: str | None = None
    refund_amount: int = 0
    tallies: tuple[tuple[str, int], ...] = ()
    payer: str = ""  # who made the transaction, or asks its refund: "person|provider"


class Outcome(NamedTuple):
    """What a claim got: ``awarded`` of ``wanted``, and what clipped or refused it."""

    program: str
    version: int
    wanted: int
    awarded: int
    limited_by: str | None = None


@dataclass(slots=True)
class Applied:
    """The result of applying one intent: ``code`` says why one was not applied, and
    ``reason`` is the message made from it (:mod:`pointengine.model.refusals`)."""

    event: str
    status: str  # applied | duplicate | rejected
    reason: str | None = None
    outcomes: list[Outcome] = field(default_factory=list)
    reversed: dict[str, int] = field(default_factory=dict)
    code: Refusal | None = None

    @classmethod
    def refused(cls, event: str, code: Refusal, **facts: object) -> Applied:
        """An event refused for ``code`` (a duplicate is one too, with its own status)."""
        status = "duplicate" if code is Refusal.DUPLICATE else "rejected"
        return cls(event, status, refusal_message(code, **facts), code=code)

    def refusal(self) -> tuple[Refusal, str]:
        """The code and the message of a refused event."""
        if self.code is None or self.reason is None:
            raise IntegrityError(f"event {self.event!r} was {self.status}, not refused")
        return self.code, self.reason


def unknown_transaction(intent: Intent) -> Applied:
    """A refund refused because its transaction is unknown, or another payer's."""
    return Applied.refused(intent.event, Refusal.UNKNOWN_TRANSACTION,
                           transaction=intent.refund_of, person=intent.person)


def refund_exceeds(intent: Intent, left: int, whole: int) -> Applied:
    """A refund refused because it asks more than is ``left`` of the transaction."""
    return Applied.refused(intent.event, Refusal.REFUND_EXCEEDS_PAYMENT,
                           amount=intent.refund_amount, left=left, whole=whole)


class Store(ABC):
    """Persons, counters, transactions and the ledger, applied atomically per intent."""

    @abstractmethod
    def persons(self, ids: Iterable[str]) -> dict[str, Person]:
        """The stored persons among ``ids`` (absent ones are left out)."""

    @abstractmethod
    def applied(self, events: Iterable[str]) -> set[str]:
        """The event keys among ``events`` that were applied before."""

    @abstractmethod
    def apply_many(self, intents: Sequence[Intent]) -> list[Applied]:
        """Apply each intent in order, each atomically (see the module docstring)."""

    @abstractmethod
    def counter(self, key: str) -> int:
        """The current value of a cap or admission counter (0 if never touched)."""

    @abstractmethod
    def totals(self) -> dict[tuple[str, str], int]:
        """Net points per (program, provider), maintained with every ledger line."""

    @abstractmethod
    def tallies(self, prefix: str) -> dict[str, int]:
        """Every tally whose key starts with ``prefix`` (key suffix → value)."""

    def close(self) -> None:  # noqa: B027 - optional hook, most stores hold nothing to release
        """Release resources."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

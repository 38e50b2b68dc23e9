"""The embedded store: the whole contract in process memory, no server to install.

Single-threaded by design (one replay, one service worker); Python dicts give each intent's
atomicity for free because nothing else runs between its checks and its writes. A refused
intent is checked before anything is written, so it changes nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from pointengine.model.ledger import LedgerEntry, LedgerSink, ListSink
from pointengine.model.persons import Person
from pointengine.model.refusals import Refusal
from pointengine.store.compact import Counters, KeyTable, fingerprint
from pointengine.store.contract import (
    Applied,
    Intent,
    Outcome,
    Store,
    refund_exceeds,
    unknown_transaction,
)
from pointengine.store.records import Award, Transaction

if TYPE_CHECKING:
    from pointengine.store.journal import Journal

PAID_SHIFT = 32  # a transaction that earned nothing is kept as amount << PAID_SHIFT | refunded


class MemoryStore(Store):
    """The embedded default store.

    Memory grows with persons, not events: every event key and every transaction that earned
    no refundable points is kept in a compact table (:mod:`pointengine.store.compact`, 8 and 16
    bytes each); only transactions that earned points keep a full record for their refunds.
    """

    person_watch: list[str] | None = None
    """The ids of the persons the store wrote since the compiled lane, which keeps a digest
    of each person, last looked (it empties the list); None when no lane watches."""

    journal: Journal | None = None
    """What the store wrote since its last write-back, for a store that writes through to
    Redis (:class:`~pointengine.store.writeback.WriteBackStore`); None for the embedded store."""
    def __init__(self, sink: LedgerSink | None = None) -> None:
        self.sink: LedgerSink = sink if sink is not None else ListSink()
        self._persons: dict[str, Person] = {}
        self._applied = KeyTable(values=False)
        self._counters = Counters()
        self._members: set[str] = set()
        self._transactions: dict[str, Transaction] = {}  # those that earned points
        self._paid = KeyTable()  # the others: amount << PAID_SHIFT | refunded
        self._totals: dict[tuple[str, str], int] = {}
        self._tallies: dict[str, int] = {}
        self._seq = 0

    def __getstate__(self) -> dict[str, object]:
        """What a checkpoint keeps: not the lane's watch, which a new lane sets again."""
        state = dict(self.__dict__)
        state.pop("person_watch", None)
        return state

    def persons(self, ids: Iterable[str]) -> dict[str, Person]:
        """The stored persons among ``ids``."""
        found = self._persons
        return {i: found[i] for i in ids if i in found}

    def applied(self, events: Iterable[str]) -> set[str]:
        """The event keys already applied."""
        return {e for e in events if e in self._applied}

    def counter(self, key: str) -> int:
        """A counter's value."""
        return self._counters.get(key, 0)

    def totals(self) -> dict[tuple[str, str], int]:
        """Net points per (program, provider)."""
        return dict(self._totals)

    def tallies(self, prefix: str) -> dict[str, int]:
        """Tallies under ``prefix``."""
        n = len(prefix)
        return {k[n:]: v for k, v in self._tallies.items() if k.startswith(prefix)}

    def apply_many(self, intents: Sequence[Intent]) -> list[Applied]:
        """Apply each intent in order, atomically."""
        entries: list[LedgerEntry] = []
        results = [self._apply(intent, entries) for intent in intents]
        if entries:
            self.sink.append(entries)
        return results

    def _apply(self, intent: Intent, entries: list[LedgerEntry]) -> Applied:
        fp = fingerprint(intent.event)
        if self._applied.has(fp):
            return Applied.refused(intent.event, Refusal.DUPLICATE)
        result = Applied(intent.event, "applied")
        if intent.refund_of is not None:
            refused = self._refund(intent, result, entries)
            if refused is not None:
                return refused
        awards: list[Award] = []
        counters = self._counters
        for claim in intent.claims:
            if claim.member_key and claim.member_key not in self._members:
                full = next((a for a in claim.admissions
                             if counters.get(a.key, 0) >= a.limit), None)
                if full is not None:
                    result.outcomes.append(
                        Outcome(claim.program, claim.version, claim.points, 0, full.label))
                    continue
                if claim.points > 0:
                    self._members.add(claim.member_key)
                    for admission in claim.admissions:
                        counters[admission.key] = counters.get(admission.key, 0) + 1
                    if self.journal is not None:
                        self.journal.members.append(claim.member_key)
                        self.journal.counters.extend(a.key for a in claim.admissions)
            points = claim.points
            limited_by = None
            for cap in claim.caps:
                room = cap.limit - counters.get(cap.key, 0)
                if room < points:
                    points, limited_by = max(room, 0), cap.label
            result.outcomes.append(
                Outcome(claim.program, claim.version, claim.points, points, limited_by))
            if points <= 0:
                continue
            for cap in claim.caps:
                counters[cap.key] = counters.get(cap.key, 0) + points
            if self.journal is not None:
                self.journal.counters.extend(cap.key for cap in claim.caps)
            self._count(entries, "award", intent, claim.program, claim.version, points,
                        claim.provider, None)
            if claim.refundable:
                # cap keys are interned: millions of awards share a few per person
                awards.append(Award(claim.program, claim.version, points, claim.provider,
                                    tuple(sys.intern(c.key) for c in claim.caps)))
        for key, amount in intent.tallies:
            self._tallies[key] = self._tallies.get(key, 0) + amount
        if intent.transaction is not None:
            if awards or not 0 <= intent.amount < 1 << 31:
                # a payer is shared by the person's transactions with the provider
                self._transactions[intent.transaction] = Transaction(
                    intent.amount, tuple(awards), sys.intern(intent.payer))
                if self.journal is not None:
                    self.journal.kept.append(intent.transaction)
            else:
                self._transactions.pop(intent.transaction, None)
                self._paid.add(_paid_key(intent.transaction, intent.payer),
                               intent.amount << PAID_SHIFT)
                if self.journal is not None:
                    self.journal.transactions += (intent.transaction,
                                                  f"{intent.amount}|0|{intent.payer}")
        if intent.person_state is not None:
            self._persons[intent.person] = intent.person_state
            if self.person_watch is not None:
                self.person_watch.append(intent.person)
        self._applied.add(intent.event, fp=fp)
        if self.journal is not None:
            self.journal.applied.append(intent.event)
            self.journal.tallies.extend(key for key, _ in intent.tallies)
            if intent.person_state is not None:
                self.journal.persons.append(intent.person)
        return result

    def _refund(self, intent: Intent, result: Applied,
                entries: list[LedgerEntry]) -> Applied | None:
        assert intent.refund_of is not None
        tx = self._transactions.get(intent.refund_of)
        if tx is None:
            return self._refund_plain(intent)
        if tx.payer != intent.payer:
            return unknown_transaction(intent)
        refunded = tx.refunded + intent.refund_amount
        if refunded > tx.amount:
            return refund_exceeds(intent, tx.amount - tx.refunded, tx.amount)
        tx.refunded = refunded
        if self.journal is not None:
            self.journal.kept.append(intent.refund_of)
        if tx.reversed is None:
            tx.reversed = [0] * len(tx.awards)
        back = tx.reversed
        for i, award in enumerate(tx.awards):
            # A 0-yen transaction can only be refunded 0 yen, which takes back nothing.
            earned_back = award.points * refunded // tx.amount if tx.amount else 0
            share = earned_back - back[i]
            if share <= 0:
                continue
            back[i] += share
            for key in award.caps:
                self._counters[key] -= share
            if self.journal is not None:
                self.journal.counters.extend(award.caps)
            result.reversed[award.program] = result.reversed.get(award.program, 0) + share
            self._count(entries, "reversal", intent, award.program, award.version, -share,
                        award.provider, intent.refund_of)
        return None

    def _refund_plain(self, intent: Intent) -> Applied | None:
        """A refund of a transaction that earned nothing: only the amounts are checked."""
        assert intent.refund_of is not None
        key = _paid_key(intent.refund_of, intent.payer)
        packed = self._paid.get(key)
        if packed is None:
            return unknown_transaction(intent)
        amount, refunded = packed >> PAID_SHIFT, packed & ((1 << PAID_SHIFT) - 1)
        if refunded + intent.refund_amount > amount:
            return refund_exceeds(intent, amount - refunded, amount)
        self._paid.add(key, packed + intent.refund_amount)
        if self.journal is not None:
            self.journal.transactions += (
                intent.refund_of,
                f"{amount}|{refunded + intent.refund_amount}|{intent.payer}")
        return None

    def _count(self, entries: list[LedgerEntry], kind: str, intent: Intent, program: str,
               version: int, points: int, provider: str, transaction: str | None) -> None:
        self._seq += 1
        key = (program, provider)
        self._totals[key] = self._totals.get(key, 0) + points
        entries.append(LedgerEntry(self._seq, kind, intent.event, intent.person,  # type: ignore[arg-type]
                                   program, version, points, provider, intent.at, transaction))


def _paid_key(transaction: str, payer: str) -> str:
    """The key of a transaction that earned nothing: its payer is part of it, as the compact
    table keeps no room to check it apart."""
    return f"{transaction}|{payer}" if payer else transaction

"""The engine: route each event to the few programs it can concern, decide, and apply.

For a batch of events the engine (1) updates the persons that applications, registrations and
moves change, (2) routes every event to the programs of the national level and of the
jurisdictions it touches (the store's municipality and prefecture, the person's), (3) asks each
program version's compiled ruleset for the first failing check, (4) turns each eligible program
into a claim of points, and (5) hands the batch to the store, which clips claims to their caps
atomically and writes the ledger. The engine holds no per-person state between batches.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, cast

from pointengine.catalog.loading import (
    ANYWHERE,
    Catalog,
    Program,
    as_place,
    as_resident,
    as_store,
    via,
)
from pointengine.catalog.programs import Lottery, ProgramVersion
from pointengine.decide.awards import (
    claim_for,
    claims_for,
    drawn_key,
    health_points_key,
    requested_points,
)
from pointengine.decide.conditions import Check
from pointengine.decide.eligibility import checks_for
from pointengine.decide.facts import Fact, build_fact
from pointengine.decide.matching import CompiledRuleset
from pointengine.model.events import (
    AnyEvent,
    Charge,
    HealthInsuranceRegistration,
    LotteryDraw,
    MynapointApplication,
    Participation,
    PublicFundsAccountRegistration,
    Purchase,
    Refund,
    ResidenceChange,
)
from pointengine.model.municipalities import registry
from pointengine.model.persons import Enrolment, Person
from pointengine.model.refusals import Refusal
from pointengine.store.contract import Applied, Claim, Intent, Store


@dataclass(frozen=True, slots=True)
class Verdict:
    """One program's answer to one event: the failed check, or the points it asked (in all:
    a per-child grant to a known household asks them in one claim per birth date)."""

    program: str
    version: int
    failed: Check | None
    wanted: int


@dataclass(slots=True)
class Decision:
    """What became of one event; ``verdicts`` is filled when the engine explains."""

    event: AnyEvent
    applied: Applied
    verdicts: list[Verdict] = field(default_factory=list)


ROUTES_KEPT = 100_000
"""Routes remembered (type, provider, places), by the engine and by the lane; then they are
forgotten at once."""


class Companion(Protocol):
    """Something built from an engine and its catalog that must be closed with them."""

    def close(self) -> None:
        """Release what it holds."""


C = TypeVar("C", bound=Companion)


class _Refused(Exception):
    """An event the engine refuses before it reaches the store, for ``code``."""

    def __init__(self, code: Refusal, **facts: object) -> None:
        super().__init__(code)
        self.code = code
        self.facts = facts


class Engine:
    """Evaluates batches of canonical events against a catalog, on a store."""

    def __init__(self, catalog: Catalog, store: Store, *, explain: bool = False) -> None:
        self.catalog = catalog
        self.store = store
        self.explain = explain
        self._bases = catalog.bases()
        self._rulesets: dict[int, CompiledRuleset] = {}
        self._codes = registry()
        self._place_keys = _PlaceKeys()
        self._routes: dict[tuple[str | int, ...], list[Program]] = {}
        self._companions: dict[str, Companion] = {}

    def close(self) -> None:
        """Drop every compiled ruleset and companion."""
        self._drop_companions()
        for ruleset in self._rulesets.values():
            ruleset.close()
        self._rulesets.clear()

    def companion(self, key: str, make: Callable[[], C]) -> C:
        """What ``make`` builds for this engine and its catalog, built once and closed when the
        catalog changes or the engine closes: the compiled lane (:mod:`pointengine.lane.attach`)
        is one, so the engine knows no lane and no concrete store."""
        found = self._companions.get(key)
        if found is None:
            found = self._companions[key] = make()
        return cast(C, found)  # one key is one kind of companion

    def _drop_companions(self) -> None:
        companions, self._companions = self._companions, {}
        for companion in companions.values():
            companion.close()

    def swap_catalog(self, catalog: Catalog) -> None:
        """Decide later batches with ``catalog``; drop the rulesets of versions it lacks.

        Rulesets are cached by version object, so a version object the new catalog kept from
        the old one keeps its ruleset (see :mod:`pointengine.decide.reload`).
        """
        self._drop_companions()
        keep = {id(v) for program in catalog.programs.values() for v in program.versions}
        for key in [k for k in self._rulesets if k not in keep]:
            self._rulesets.pop(key).close()
        self.catalog = catalog
        self._bases = catalog.bases()
        self._routes = {}

    def ruleset(self, version: ProgramVersion) -> CompiledRuleset:
        """The compiled ruleset of a program version (compiled on first use)."""
        ruleset = self._rulesets.get(id(version))
        if ruleset is None:
            ruleset = CompiledRuleset(version.label, checks_for(version))
            self._rulesets[id(version)] = ruleset
        return ruleset

    def process(self, events: Sequence[AnyEvent]) -> list[Decision]:
        """Decide and apply a batch of events, in order."""
        with fewer_collections():
            return self._process(events)

    def _process(self, events: Sequence[AnyEvent]) -> list[Decision]:
        keys = [e.key for e in events]
        seen = self.store.applied(keys)
        persons = self.store.persons({e.person for e in events})
        decisions: list[Decision] = []
        pending = _Pending(decisions)
        for event in events:
            decision = Decision(event, Applied(event.key, "applied"))
            decisions.append(decision)
            if event.key in seen:
                decision.applied = Applied.refused(event.key, Refusal.DUPLICATE)
                continue
            draw = isinstance(event, LotteryDraw)
            if draw:
                # A draw counts every health point reported before it, this batch's too.
                pending.apply(self.store)
            try:
                batch = self._intents(event, persons, decision)
            except _Refused as refused:
                decision.applied = Applied.refused(event.key, refused.code, **refused.facts)
                continue
            # A refused event was not applied: the same key later in the batch is decided
            # again, as in a later batch. A refund is refused by the store, when the batch is
            # applied, so its repeats are left to the store's own duplicate check.
            if not isinstance(event, Refund):
                seen.add(event.key)
            pending.add(batch)
            if draw:
                pending.apply(self.store)  # a second draw of the program sees this one
        pending.apply(self.store)
        return decisions

    def _intents(self, event: AnyEvent, persons: dict[str, Person],
                 decision: Decision) -> list[Intent]:
        if isinstance(event, (Purchase, Charge)):  # most events: the short way
            self._known_provider(event.provider)
            key = event.key
            person = persons.get(event.person)
            claims = self._claims(event, person, decision, []) if person is not None else ()
            return [Intent(key, event.person, event.at.isoformat(), claims=claims,
                           transaction=key, amount=event.amount,
                           payer=f"{event.person}|{event.provider}")]
        person = persons.get(event.person)
        changed = self._changed_person(event, person)
        if changed is not None:
            persons[event.person] = person = changed
        at = event.at.isoformat()
        if isinstance(event, LotteryDraw):
            return self._draw(event, persons, at)
        if isinstance(event, Refund):
            self._known_provider(event.provider)
            # Only the person who paid, with the provider they paid with, can be refunded.
            return [Intent(event.key, event.person, at,
                           refund_of=f"{event.source}/{event.transaction}",
                           refund_amount=event.amount,
                           payer=f"{event.person}|{event.provider}")]
        tallies: list[tuple[str, int]] = []
        claims = self._claims(event, person, decision, tallies) if person is not None else ()
        return [Intent(event.key, event.person, at, claims=claims, person_state=changed,
                       tallies=tuple(tallies))]

    def _claims(self, event: AnyEvent, person: Person, decision: Decision,
                tallies: list[tuple[str, int]]) -> tuple[Claim, ...]:
        """What each program the event concerns asks for it (lottery tallies go to ``tallies``)."""
        fact = build_fact(event, person, self._bases)
        claims: list[Claim] = []
        for program in self._route(event, fact):
            claims.extend(self._decide(program.version_at(event.at), event, person, fact,
                                       decision, tallies))
        return tuple(claims)

    def _decide(self, version: ProgramVersion, event: AnyEvent, person: Person, fact: Fact,
                decision: Decision, tallies: list[tuple[str, int]]) -> tuple[Claim, ...]:
        """The program's claims for the event: none, one, or (a per-child grant to a known
        household) one per birth date of the children, each with its own points."""
        failed = self.ruleset(version).first_failure(fact)
        wanted = 0
        if failed is None:
            if isinstance(version.award, Lottery):
                if isinstance(event, Participation) and event.health_points > 0:
                    tallies.append((health_points_key(version.id, person.id),
                                    event.health_points))
            else:
                wanted = requested_points(version, event, person)
        if self.explain:
            decision.verdicts.append(Verdict(version.id, version.version, failed, wanted))
        if wanted <= 0:
            return ()
        provider = str(fact[f"chosen{version.phase}"])
        return claims_for(version, event, person, provider, wanted)

    def _route(self, event: AnyEvent, fact: Fact) -> list[Program]:
        # The fact already holds the store's and the person's places at the event's time.
        if isinstance(event, Participation):
            return self.programs_for(event.type, fact, event.municipality)
        route = (event.type, fact["provider"], fact["residence"], fact["residence_pref"],
                 fact["store_place"], fact["store_pref"])
        found = self._routes.get(route)
        if found is None:
            found = self.programs_for(event.type, fact)
            if len(self._routes) >= ROUTES_KEPT:
                self._routes.clear()
            self._routes[route] = found
        return found

    def programs_for(self, event_type: str, fact: Mapping[str, str | int],
                     activity_place: str | None = None) -> list[Program]:
        """The programs an event of ``event_type`` can concern: national ones, those open to
        its ``provider`` and those of the places in ``fact`` (``residence``,
        ``residence_pref``, ``store_place``, ``store_pref``), and for a participation those of
        ``activity_place`` and its city and prefecture."""
        keys: list[str] = ["national", ANYWHERE]
        if fact["provider"]:
            keys.append(via(str(fact["provider"])))
        places = self._place_keys
        for field_name in ("residence", "residence_pref", "store_place", "store_pref"):
            code = fact[field_name]
            if code:
                # Explaining, every program of every place is asked, so that a visitor learns
                # that a residents-only program refused them for not living there.
                keys.extend(places[code]["any" if self.explain else field_name])
        if activity_place is not None:
            for jurisdiction in self._codes.jurisdictions_of(activity_place):
                keys.extend(places[jurisdiction]["any"] if self.explain
                            else (as_place(jurisdiction),))
        return self.catalog.candidates(dict.fromkeys(keys), event_type)

    def _changed_person(self, event: AnyEvent, person: Person | None) -> Person | None:
        if isinstance(event, MynapointApplication):
            self._known_provider(event.provider)
            earlier = person.enrolments.get(event.phase) if person is not None else None
            if earlier is not None and earlier.provider != event.provider:
                raise _Refused(Refusal.PROVIDER_ALREADY_CHOSEN, phase=event.phase,
                               chosen=earlier.provider)
            new = person.copy() if person is not None else Person(event.person)
            if earlier is None or event.at < earlier.applied_at:
                # A repeat application (as for parts ② and ③) keeps the first one's date.
                new.enrolments[event.phase] = Enrolment(event.provider, event.at,
                                                        event.card_applied_on)
            if new.residence_at(event.at) != event.residence:
                new.move(event.at, event.residence)
            new.birth_date = event.birth_date or new.birth_date
            new.children = event.children_birth_dates or new.children
            new.household = event.household or new.household
            new.phase1_applicant = new.phase1_applicant or event.applied_in_phase1
            return new
        if isinstance(event, HealthInsuranceRegistration | PublicFundsAccountRegistration):
            what = ("health_insurance" if isinstance(event, HealthInsuranceRegistration)
                    else "public_funds_account")
            new = person.copy() if person is not None else Person(event.person)
            first = new.registrations.get(what)
            new.registrations[what] = min(first, event.at) if first else event.at
            return new
        if isinstance(event, ResidenceChange):
            new = person.copy() if person is not None else Person(event.person)
            new.move(event.at, event.residence)
            return new
        return None

    def _known_provider(self, provider: str) -> None:
        if provider not in self._bases:
            raise _Refused(Refusal.UNKNOWN_PROVIDER, provider=provider)

    def _draw(self, event: LotteryDraw, persons: dict[str, Person], at: str) -> list[Intent]:
        program = self.catalog.programs.get(event.program)
        if program is None or not isinstance(program.current.award, Lottery):
            raise _Refused(Refusal.UNKNOWN_LOTTERY, program=event.program)
        version = program.version_at(event.at)
        award = version.award
        assert isinstance(award, Lottery)
        period = version.conditions.period
        if period is not None and event.day <= period.to:
            raise _Refused(Refusal.LOTTERY_NOT_DUE, program=program.id, ends=period.to)
        drawn = drawn_key(version.id)
        if self.store.tallies(drawn):
            raise _Refused(Refusal.LOTTERY_ALREADY_DRAWN, program=program.id)
        entrants = [p for p, points in self.store.tallies(f"ht|{version.id}|").items()
                    if points >= award.threshold]
        winners = sorted(entrants, key=lambda p: _draw_rank(award.seed, event.key, p))
        stored = self.store.persons(winners[: award.winners])
        intents = [Intent(event.key, event.person, at, tallies=((drawn, 1),))]
        for winner in winners[: award.winners]:
            person = persons.get(winner) or stored[winner]
            enrolment = person.enrolment_at(version.phase, event.at)
            provider = enrolment.provider if enrolment else ""
            claim = claim_for(version, winner, provider, award.amount, event.at)
            intents.append(Intent(f"{event.key}#{winner}", winner, at, claims=(claim,)))
        return intents


class _Pending:
    """Intents decided but not yet applied, with the decision each belongs to."""

    def __init__(self, decisions: list[Decision]) -> None:
        self.decisions = decisions
        self.intents: list[Intent] = []
        self.owners: list[int] = []

    def add(self, intents: list[Intent]) -> None:
        """Add the intents of the latest decision."""
        self.intents.extend(intents)
        self.owners.extend([len(self.decisions) - 1] * len(intents))

    def apply(self, store: Store) -> None:
        """Apply the pending intents in order and give each decision what its intents got."""
        if not self.intents:
            return
        for index, applied in zip(self.owners, store.apply_many(self.intents), strict=True):
            decision = self.decisions[index]
            if applied.event == decision.event.key:
                decision.applied = applied
            else:
                decision.applied.outcomes.extend(applied.outcomes)
        self.intents, self.owners = [], []


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Run the cyclic garbage collector less often (while deciding a batch, during a replay).

    A replay allocates a few dozen short-lived objects per event while the store holds
    millions of long-lived ones; with the default thresholds the collector ran so often that
    it cost about a fifth of the replay. Almost nothing the engine makes is cyclic, so
    reference counting frees it anyway.
    """
    before = gc.get_threshold()
    gc.set_threshold(100_000, 50, 1_000)
    try:
        yield
    finally:
        gc.set_threshold(*before)


FROZEN_BY_THE_INTERPRETER = gc.get_freeze_count()
"""Objects frozen before anything here ran: none on 3.11; on 3.12 the interpreter itself keeps
its immortal objects in the permanent generation (375 at startup on 3.12.1) and puts them back
there at the next full collection after an unfreeze, so only a count above this one means that
someone else froze objects."""


@contextlib.contextmanager
def frozen_between_batches() -> Iterator[Callable[[], None]]:
    """A function to call after each batch of a replay: it freezes the objects alive then
    (``gc.freeze``), so that the cyclic garbage collector no longer looks at them; the
    replay's end unfreezes them (unless something else had frozen objects before).

    The objects that outlive a batch are the store's persons, transactions and records, which
    the collector would otherwise walk again and again (about 6% of a replay). A replay makes
    no cyclic garbage (none on the generated and the adversarial streams), and what it would
    make is collected when the replay ends.
    """
    ours = gc.get_freeze_count() <= FROZEN_BY_THE_INTERPRETER
    try:
        yield gc.freeze
    finally:
        if ours:
            gc.unfreeze()


class _PlaceKeys(dict[str | int, dict[str, tuple[str, ...]]]):
    """Code → fact field → the routing keys an event with that code in that field reaches
    (``any``: every key of the code)."""

    def __missing__(self, code: str | int) -> dict[str, tuple[str, ...]]:
        text = str(code)
        person = (as_resident(text), as_place(text))
        store = (as_store(text), as_place(text))
        keys = {"residence": person, "residence_pref": person,
                "store_place": store, "store_pref": store,
                "any": (as_resident(text), as_store(text), as_place(text))}
        self[code] = keys
        return keys


def _draw_rank(seed: str, draw: str, person: str) -> str:
    """A reproducible, auditable order: anyone with the seed can recompute the draw."""
    return hashlib.sha256(f"{seed}|{draw}|{person}".encode()).hexdigest()

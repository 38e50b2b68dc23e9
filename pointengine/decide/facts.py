"""The fact: one event seen together with its person, flattened for rule matching.

Every fact holds the same fields with fixed types (str or int, never None), so that compiled
rules can compare them and negate comparisons safely: a missing string is ``""``, a missing day
or age is ``0`` or ``-1``. Days are ``YYYYMMDD`` integers in JST.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from pointengine.model.events import (
    AnyEvent,
    Charge,
    LotteryDraw,
    Participation,
    Purchase,
)
from pointengine.model.jst import JST
from pointengine.model.municipalities import registry
from pointengine.model.persons import Person

Fact = dict[str, str | int]

FIELDS: Final[dict[str, str]] = {
    "type": "the event's type",
    "day": "the event's day in JST (YYYYMMDD)",
    "provider": "the provider that reported the transaction",
    "chosen1": "the provider the person chose in phase 1",
    "chosen2": "the provider the person chose in phase 2",
    "basis1": "whether the phase-1 provider awards on charges or purchases",
    "basis2": "whether the phase-2 provider awards on charges or purchases",
    "applied1_on": "the day of the person's phase-1 Mynapoint application",
    "applied2_on": "the day of the person's phase-2 Mynapoint application",
    "card_applied_on": "the day the person applied for the My Number card",
    "phase1_applicant": "1 when the person applied for phase-1 Mynapoint",
    "residence": "the person's municipality at the event's time",
    "residence_pref": "the prefecture of the person's municipality",
    "store": "the store's id",
    "store_place": "the store's municipality (the parent city for a ward)",
    "store_pref": "the store's prefecture",
    "age": "the person's age on the event's day",
    "health_insurance": "1 when the card is registered as health-insurance card",
    "public_funds_account": "1 when a public-funds account is registered",
    "activity": "the activity taken part in",
    "place": "the municipality where the activity took place",
    "program": "the program a lottery draw is for",
}


BLANK: Final[Fact] = {  # every field's value when the event or the person does not give it
    "type": "", "day": 0, "provider": "",
    "chosen1": "", "chosen2": "", "basis1": "", "basis2": "",
    "applied1_on": 0, "applied2_on": 0, "card_applied_on": 0, "phase1_applicant": 0,
    "residence": "", "residence_pref": "",
    "store": "", "store_place": "", "store_pref": "",
    "age": -1, "health_insurance": 0, "public_funds_account": 0,
    "activity": "", "place": "", "program": "",
}
assert BLANK.keys() == FIELDS.keys()


def age_on(birth: dt.date, day: dt.date) -> int:
    """Completed years on ``day`` (a person born on 29 February ages on 1 March)."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def build_fact(event: AnyEvent, person: Person | None, bases: dict[str, str]) -> Fact:
    """The fact for ``event``; ``bases`` maps provider id to ``charge`` or ``purchase``."""
    at = event.at
    local = at.astimezone(JST)
    fact = BLANK.copy()
    fact["type"] = event.type
    fact["day"] = local.year * 10_000 + local.month * 100 + local.day
    places = registry().places
    if isinstance(event, _TRANSACTIONS):
        fact["provider"] = event.provider
        fact["store"] = event.store or ""
        if event.store_municipality is not None:
            fact["store_place"], fact["store_pref"] = places(event.store_municipality)
    else:
        fact["provider"] = getattr(event, "provider", "")
        if isinstance(event, Participation):
            fact["activity"] = event.activity
            fact["place"] = places(event.municipality)[0]
        elif isinstance(event, LotteryDraw):
            fact["program"] = event.program
    if person is None:
        return fact
    # Inlined Person.enrolment_at and residence_at, and the registrations' times: this runs
    # for every event.
    enrolments = person.enrolments
    for phase, chosen, basis, applied in _PHASE_FIELDS:
        enrolment = enrolments.get(phase)
        if enrolment is not None and enrolment.applied_at <= at:
            fact[chosen] = enrolment.provider
            fact[basis] = bases.get(enrolment.provider, "")
            fact[applied] = enrolment.applied_day
            fact["card_applied_on"] = enrolment.card_day
    fact["phase1_applicant"] = int(person.phase1_applicant or 1 in enrolments)
    residences = person.residences
    if residences:
        residence = residences[0][1] if len(residences) == 1 else person.residence_at(at)
        if residence:
            fact["residence"], fact["residence_pref"] = places(residence)
    birth = person.birth_date
    if birth is not None:
        fact["age"] = age_on(birth, local.date())
    registrations = person.registrations
    if registrations:
        when = registrations.get("health_insurance")
        fact["health_insurance"] = int(when is not None and when <= at)
        when = registrations.get("public_funds_account")
        fact["public_funds_account"] = int(when is not None and when <= at)
    return fact


_TRANSACTIONS = (Purchase, Charge)
_PHASE_FIELDS = ((1, "chosen1", "basis1", "applied1_on"), (2, "chosen2", "basis2", "applied2_on"))

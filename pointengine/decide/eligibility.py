"""From a program version to the ordered checks that decide whether an event qualifies.

The checks are the program's conditions in the order ``explain`` reports them: the first that
fails is the reason an event earned nothing. They are compiled into one durable_rules ruleset
per program version (see :mod:`pointengine.decide.matching`).
"""

from __future__ import annotations

import datetime as dt

from pointengine.catalog.programs import ProgramVersion
from pointengine.decide.conditions import (
    AllOf,
    AnyOf,
    Check,
    Compare,
    Condition,
    FieldRef,
    one_of,
)
from pointengine.model.events import day_number
from pointengine.model.municipalities import registry

TRANSACTIONS = ("purchase", "charge")


def checks_for(program: ProgramVersion) -> tuple[Check, ...]:
    """The ordered checks of ``program``; an event that passes them all earns its award."""
    phase = program.phase
    chosen = f"chosen{phase}"
    checks: list[Check] = [
        Check("event", one_of("type", program.on), f"the event is one of {', '.join(program.on)}"),
    ]
    cond = program.conditions
    if cond.period is not None:
        checks.append(_period(cond.period.from_, cond.period.to))
    checks.append(
        Check("enrolled", Compare(chosen, "!=", ""), f"the person applied for phase-{phase} "
              "Mynapoint before the event")
    )
    if cond.application_period is not None:
        window = cond.application_period
        checks.append(Check(
            "application_period",
            AllOf((Compare(f"applied{phase}_on", ">=", day_number(window.from_)),
                   Compare(f"applied{phase}_on", "<=", day_number(window.to)))),
            f"the person applied for Mynapoint within {window.from_.isoformat()}.."
            f"{window.to.isoformat()}"))
    if program.providers:
        names = [p.provider for p in program.providers]
        checks.append(
            Check("partner", one_of(chosen, names), f"the chosen provider is a partner: "
                  f"{', '.join(names)}")
        )
    if any(t in TRANSACTIONS for t in program.on):
        checks.append(
            Check("chosen_provider", _transaction_via_chosen(chosen),
                  "the transaction was made with the provider the person chose")
        )
    if cond.provider_basis:
        checks.append(
            Check("basis", _basis(phase), "the chosen provider awards on this kind of "
                  "transaction (charges or purchases)")
        )
    if cond.card_applied_by is not None:
        deadline = day_number(cond.card_applied_by)
        checks.append(
            Check("card_deadline",
                  AllOf((Compare("card_applied_on", ">", 0),
                         Compare("card_applied_on", "<=", deadline))),
                  f"the card was applied for by {cond.card_applied_by.isoformat()}")
        )
    if cond.exclude_phase1_applicants:
        checks.append(
            Check("phase1_excluded", Compare("phase1_applicant", "==", 0),
                  "the person did not apply for phase-1 Mynapoint")
        )
    checks.extend(_jurisdiction_checks(program))
    if cond.min_age is not None:
        checks.append(
            Check("min_age", Compare("age", ">=", cond.min_age),
                  f"the person is {cond.min_age} or older on the event's day")
        )
    for what in cond.registered:
        label = what.replace("_", "-")
        checks.append(Check(f"registered_{what}", Compare(what, "==", 1),
                            f"the person has made the {label} registration"))
    if program.award.kind == "per_activity":
        activities = sorted(program.award.points)
        checks.append(Check("activity", one_of("activity", activities),
                            f"the activity is one of {', '.join(activities)}"))
    return tuple(checks)


def _period(start: dt.date, end: dt.date) -> Check:
    return Check(
        "period",
        AllOf((Compare("day", ">=", day_number(start)), Compare("day", "<=", day_number(end)))),
        f"the event's day (JST) is within {start.isoformat()}..{end.isoformat()}",
    )


def _transaction_via_chosen(chosen: str) -> Condition:
    not_transaction = AllOf(tuple(Compare("type", "!=", t) for t in TRANSACTIONS))
    return AnyOf((not_transaction, Compare("provider", "==", FieldRef(chosen))))


def _basis(phase: int) -> Condition:
    not_transaction = AllOf(tuple(Compare("type", "!=", t) for t in TRANSACTIONS))
    return AnyOf((not_transaction, Compare("type", "==", FieldRef(f"basis{phase}"))))


def _jurisdiction_checks(program: ProgramVersion) -> list[Check]:
    if program.jurisdiction == "national":
        return []
    codes = registry()
    place = codes.get(program.jurisdiction)
    is_pref = place.kind == "prefecture"
    own, pref = ("residence_pref", "store_pref") if is_pref else ("residence", "store_place")
    where = place.label
    out: list[Check] = []
    restriction = program.restriction
    if restriction.persons == "residents":
        out.append(Check("resident", Compare(own, "==", program.jurisdiction),
                         f"the person lives in {where} at the event's time"))
    if restriction.stores == "in_region":
        out.append(Check("in_region", Compare(pref, "==", program.jurisdiction),
                         f"the store is in {where}"))
    elif restriction.stores == "target_stores":
        out.append(Check("target_store", one_of("store", restriction.target_stores),
                         "the store is one of the program's target stores"))
    if "participation" in program.on and not is_pref:
        out.append(Check("venue", AnyOf((Compare("type", "!=", "participation"),
                                         Compare("place", "==", program.jurisdiction))),
                         f"the activity took place in {where}"))
    return out

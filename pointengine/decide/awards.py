"""What an eligible event asks for: the points of each award kind, and the caps they count in.

Pure arithmetic, no I/O. Rounding is floor per transaction (``amount * rate // 10_000``), the
only rounding the national rules and the seeds' municipal programs use. The store later clips
the points to the room left under every cap (see :mod:`pointengine.store.contract`).

Cap and counter keys are built here and nowhere else:

- ``pp|{program}|{person}``: a person's points in a program (the award's cap);
- ``pp|{program}|household:{household}|{birth date}``: what a per-child grant paid for a known
  household's children born on that date (ISO ``YYYY-MM-DD``), whichever parent applied;
- ``pm|{program}|{person}|{YYYY-MM}``: a person's points in a program in one calendar month
  (JST), for a program with a monthly cap (``period_caps``);
- ``pg|{group}|{person}``: a person's points in a group of programs (national 20,000);
- ``bu|{program}``: the program's budget in yen;
- ``ad|{program}``, ``al|{program}|{provider}``: persons admitted, overall and per provider;
- ``in|{program}|{person}``: marks a person as admitted;
- ``ht|{program}|{person}``: health points towards a lottery;
- ``dr|{program}|``: 1 once the program's lottery is drawn.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import NamedTuple

from pointengine.catalog.programs import PerActivity, PerChild, Premium, ProgramVersion
from pointengine.errors import IntegrityError
from pointengine.model.events import (
    AnyEvent,
    Charge,
    MynapointApplication,
    Participation,
    Purchase,
    in_jst,
)
from pointengine.model.persons import Person
from pointengine.store.contract import Admission, Cap, Claim

UNCAPPED = 10**15


def requested_points(program: ProgramVersion, event: AnyEvent, person: Person) -> int:
    """The points ``event`` asks from ``program`` before any cap (0 when it asks nothing)."""
    award = program.award
    if isinstance(award, Premium):
        if isinstance(event, Purchase | Charge):
            return event.amount * award.rate // 10_000
        return 0
    if isinstance(award, PerChild):
        return award.amount * len(eligible_children(award, event, person))
    if isinstance(award, PerActivity):
        return award.points.get(event.activity, 0) if isinstance(event, Participation) else 0
    if award.kind == "grant":
        return award.amount
    return 0


def eligible_children(award: PerChild, event: AnyEvent, person: Person) -> list[dt.date]:
    """The birth dates of the children a per-child grant pays for (twins: the date twice)."""
    children = event.children_birth_dates if isinstance(event, MynapointApplication) \
        else person.children
    born = award.born
    return [c for c in children if born.from_ <= c <= born.to]


def person_cap(program: ProgramVersion, requested: int) -> int:
    """The most one person may receive from ``program``."""
    award = program.award
    if isinstance(award, Premium):
        return award.cap
    if isinstance(award, PerActivity):
        return award.cap if award.cap is not None else UNCAPPED
    if isinstance(award, PerChild):
        return requested
    return award.amount


PERSON = "person"
"""A cap template's scope: one counter per person (the key is the template's and the person's)."""
GROUP = "group"
"""One counter per person, shared by the programs of a group (national phase 2's 20,000)."""
PROGRAM = "program"
"""One counter for the whole program, whoever claims (a budget in yen)."""
MONTH = "month"
"""A cap template's period: one counter per calendar month (JST) of the event."""


class CapTemplate(NamedTuple):
    """A cap of a program's claims before the person and the event are known.

    The counter's key is ``key`` (``PROGRAM`` scope) or ``key`` followed by the person's id,
    then, with a ``period``, ``|`` and the event's period (``2021-07`` for a month). A
    ``limit`` of None is the claim's own points (a per-child grant: the most it may pay).
    """

    scope: str
    key: str
    period: str | None
    limit: int | None
    label: str


class ClaimTemplate(NamedTuple):
    """Everything of a program's claims that does not depend on the person or the points:
    the caps in the order the store clips them (the person's first), and the admissions."""

    version: ProgramVersion  # held so that its id() is not reused while cached
    caps: tuple[CapTemplate, ...]
    admissions: tuple[Admission, ...]


_TEMPLATES: dict[tuple[int, str | None], ClaimTemplate] = {}
# (id(version), None): the template for no provider in particular, which every provider's
# shares but for its partner's allocation of persons


def claim_template(program: ProgramVersion, provider: str) -> ClaimTemplate:
    """The caps and admissions of ``program``'s claims paid to ``provider`` (cached).

    Every cap a program's claims count in is made here, and every compiled path reads these
    templates: a path that meets a scope or a period it does not know leaves the program to
    the Python path, which knows them all. Only a partner's allocation of persons depends on
    the provider: the caps (one tuple) and the other admissions are made once per version.
    """
    found = _TEMPLATES.get((id(program), provider))
    if found is not None and found.version is program:
        return found
    shared = _TEMPLATES.get((id(program), None))
    if shared is None or shared.version is not program:
        shared = _TEMPLATES[(id(program), None)] = _shared_template(program)
    pid = program.id
    allocations = tuple(Admission(f"al|{pid}|{provider}", partner.persons,
                                  f"{provider}'s allocation of persons")
                        for partner in program.providers
                        if partner.provider == provider and partner.persons is not None)
    found = (ClaimTemplate(program, shared.caps, shared.admissions + allocations)
             if allocations else shared)
    _TEMPLATES[(id(program), provider)] = found
    return found


def _shared_template(program: ProgramVersion) -> ClaimTemplate:
    """What every provider's claim template of ``program`` holds: the caps and the budget's
    admission."""
    pid = program.id
    limit = None if isinstance(program.award, PerChild) else person_cap(program, 0)
    caps = [CapTemplate(PERSON, f"pp|{pid}|", None, limit, "person cap")]
    for period_cap in program.period_caps:
        caps.append(CapTemplate(PERSON, f"pm|{pid}|", period_cap.per, period_cap.cap,
                                f"person cap per {period_cap.per}"))
    if program.person_total is not None:
        total = program.person_total
        caps.append(CapTemplate(GROUP, f"pg|{total.group}|", None, total.cap,
                                f"{total.group} total per person"))
    admissions: list[Admission] = []
    budget = program.budget
    if budget is not None and budget.yen is not None:
        caps.append(CapTemplate(PROGRAM, f"bu|{pid}", None, budget.yen, "program budget"))
    if budget is not None and budget.persons is not None:
        admissions.append(Admission(f"ad|{pid}", budget.persons, "program budget in persons"))
    return ClaimTemplate(program, tuple(caps), tuple(admissions))


def period_of(period: str, at: dt.datetime) -> str:
    """The part of a cap's key that names the period of an event at ``at``: ``2021-07``."""
    if period != MONTH:
        raise IntegrityError(f"no cap period {period!r}")
    day = in_jst(at)
    return f"{day.year:04d}-{day.month:02d}"


def cap_of(template: CapTemplate, person_id: str, at: dt.datetime, points: int) -> Cap:
    """The cap that ``template`` makes for ``person_id``'s claim of ``points`` at ``at``."""
    key = template.key if template.scope == PROGRAM else template.key + person_id
    if template.period is not None:
        key += "|" + period_of(template.period, at)
    return Cap(key, points if template.limit is None else template.limit, template.label)


def claim_for(program: ProgramVersion, person_id: str, provider: str, points: int,
              at: dt.datetime) -> Claim:
    """The claim of ``points`` for ``person_id`` at ``at``, with every cap and admission of
    the program (:func:`claim_template`)."""
    template = claim_template(program, provider)
    return Claim(
        program=program.id,
        version=program.version,
        points=points,
        provider=provider,
        caps=tuple(cap_of(t, person_id, at, points) for t in template.caps),
        member_key=f"in|{program.id}|{person_id}" if template.admissions else "",
        admissions=template.admissions,
    )


def claims_for(program: ProgramVersion, event: AnyEvent, person: Person, provider: str,
               points: int) -> tuple[Claim, ...]:
    """The claims of the ``points`` that ``event`` asks from ``program`` for ``person``.

    One claim (:func:`claim_for`), except for a per-child grant to a person whose household is
    known, which pays each child of the household once, whichever parent applies. Children are
    known by their birth date only, so there is one claim per distinct birth date that the
    application lists, in date order: ``amount × n`` where n is how many times the date is
    listed (twins: twice), capped at ``amount × n`` per household and date instead of per
    person. A parent who lists a child the other parent was paid for gets nothing for it; one
    who lists twins where the other listed one child of that date is paid for the second. The
    program's other caps (a group total per person, the budget) count every claim in turn.
    """
    award = program.award
    household = person.household
    if not household or not isinstance(award, PerChild):
        return (claim_for(program, person.id, provider, points, event.at),)
    key = f"pp|{program.id}|household:{household}|"
    claims = []
    for born, n in sorted(Counter(eligible_children(award, event, person)).items()):
        wanted = award.amount * n
        claim = claim_for(program, person.id, provider, wanted, event.at)
        own = Cap(key + born.isoformat(), wanted, "paid for the household's children")
        claims.append(claim._replace(caps=(own, *claim.caps[1:])))
    return tuple(claims)


def health_points_key(program: str, person: str) -> str:
    """The tally of a person's health points towards a program's lottery."""
    return f"ht|{program}|{person}"


def drawn_key(program: str) -> str:
    """The tally that marks a program's lottery drawn (once, whatever the version)."""
    return f"dr|{program}|"

"""What an eligible event asks for: the points of each award kind, and the caps they count in.

Pure arithmetic, no I/O. Rounding is floor per transaction (``amount * rate // 10_000``), the
only rounding the national rules and the seeds' municipal programs use. The store later clips
the points to the room left under every cap (see :mod:`pointengine.store`).

Cap and counter keys are built here and nowhere else:

- ``pp|{program}|{person}``: a person's points in a program (the award's cap);
- ``pp|{program}|household:{household}|{birth date}``: what a per-child grant paid for a known
  household's children born on that date (ISO ``YYYY-MM-DD``), whichever parent applied;
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

from pointengine.events import AnyEvent, Charge, MynapointApplication, Participation, Purchase
from pointengine.persons import Person
from pointengine.programs import PerActivity, PerChild, Premium, ProgramVersion
from pointengine.store import Admission, Cap, Claim

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


class ClaimTemplate(NamedTuple):
    """Everything of a program's claims that does not depend on the person or the points."""

    version: ProgramVersion  # held so that its id() is not reused while cached
    person_key: str
    person_limit: int | None  # None: the claim's own points (a per-child grant)
    group: Cap | None  # key without the person
    shared_caps: tuple[Cap, ...]
    admissions: tuple[Admission, ...]


_TEMPLATES: dict[tuple[int, str], ClaimTemplate] = {}


def claim_template(program: ProgramVersion, provider: str) -> ClaimTemplate:
    """The caps and admissions of ``program``'s claims paid to ``provider`` (cached)."""
    found = _TEMPLATES.get((id(program), provider))
    if found is not None and found.version is program:
        return found
    pid = program.id
    group = None
    if program.person_total is not None:
        total = program.person_total
        group = Cap(f"pg|{total.group}|", total.cap, f"{total.group} total per person")
    shared: list[Cap] = []
    admissions: list[Admission] = []
    budget = program.budget
    if budget is not None and budget.yen is not None:
        shared.append(Cap(f"bu|{pid}", budget.yen, "program budget"))
    if budget is not None and budget.persons is not None:
        admissions.append(Admission(f"ad|{pid}", budget.persons, "program budget in persons"))
    for partner in program.providers:
        if partner.provider == provider and partner.persons is not None:
            admissions.append(Admission(f"al|{pid}|{provider}", partner.persons,
                                        f"{provider}'s allocation of persons"))
    limit = None if isinstance(program.award, PerChild) else person_cap(program, 0)
    found = ClaimTemplate(program, f"pp|{pid}|", limit, group, tuple(shared),
                           tuple(admissions))
    _TEMPLATES[(id(program), provider)] = found
    return found


def claim_for(program: ProgramVersion, person_id: str, provider: str, points: int) -> Claim:
    """The claim of ``points`` for ``person_id``, with every cap and admission of the program.

    The person's own cap is ``pp|{program}|{person}``; a per-child grant's limit is the claim's
    own points, so that a second application pays only for children the first did not.
    """
    template = claim_template(program, provider)
    limit = template.person_limit
    caps: tuple[Cap, ...] = (Cap(template.person_key + person_id,
                                 points if limit is None else limit, "person cap"),)
    group = template.group
    if group is not None:
        caps += (Cap(group.key + person_id, group.limit, group.label),)
    return Claim(
        program=program.id,
        version=program.version,
        points=points,
        provider=provider,
        caps=caps + template.shared_caps,
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
        return (claim_for(program, person.id, provider, points),)
    key = f"pp|{program.id}|household:{household}|"
    claims = []
    for born, n in sorted(Counter(eligible_children(award, event, person)).items()):
        wanted = award.amount * n
        claim = claim_for(program, person.id, provider, wanted)
        own = Cap(key + born.isoformat(), wanted, "paid for the household's children")
        claims.append(claim._replace(caps=(own, *claim.caps[1:])))
    return tuple(claims)


def health_points_key(program: str, person: str) -> str:
    """The tally of a person's health points towards a program's lottery."""
    return f"ht|{program}|{person}"


def drawn_key(program: str) -> str:
    """The tally that marks a program's lottery drawn (once, whatever the version)."""
    return f"dr|{program}|"

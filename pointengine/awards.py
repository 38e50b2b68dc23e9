"""What an eligible event asks for: the points of each award kind, and the caps they count in.

Pure arithmetic, no I/O. Rounding is floor per transaction (``amount * rate // 10_000``), the
only rounding the national rules and the seeds' municipal programs use. The store later clips
the points to the room left under every cap (see :mod:`pointengine.store`).

Cap and counter keys are built here and nowhere else:

- ``pp|{program}|{person}``: a person's points in a program (the award's cap);
  ``pp|{program}|household:{household}`` for a per-child grant to a known household;
- ``pg|{group}|{person}``: a person's points in a group of programs (national 20,000);
- ``bu|{program}``: the program's budget in yen;
- ``ad|{program}``, ``al|{program}|{provider}``: persons admitted, overall and per provider;
- ``in|{program}|{person}``: marks a person as admitted;
- ``ht|{program}|{person}``: health points towards a lottery;
- ``dr|{program}|``: 1 once the program's lottery is drawn.
"""

from __future__ import annotations

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
        children = event.children_birth_dates if isinstance(event, MynapointApplication) \
            else person.children
        born = award.born
        return award.amount * sum(1 for c in children if born.from_ <= c <= born.to)
    if isinstance(award, PerActivity):
        return award.points.get(event.activity, 0) if isinstance(event, Participation) else 0
    if award.kind == "grant":
        return award.amount
    return 0


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


class _ClaimTemplate(NamedTuple):
    """Everything of a program's claims that does not depend on the person or the points."""

    version: ProgramVersion  # held so that its id() is not reused while cached
    person_key: str
    person_limit: int | None  # None: the claim's own points (a per-child grant)
    group: Cap | None  # key without the person
    shared_caps: tuple[Cap, ...]
    admissions: tuple[Admission, ...]


_TEMPLATES: dict[tuple[int, str], _ClaimTemplate] = {}


def _template(program: ProgramVersion, provider: str) -> _ClaimTemplate:
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
    found = _ClaimTemplate(program, f"pp|{pid}|", limit, group, tuple(shared),
                           tuple(admissions))
    _TEMPLATES[(id(program), provider)] = found
    return found


def claim_for(program: ProgramVersion, person_id: str, provider: str, points: int, *,
              household: str | None = None) -> Claim:
    """The claim of ``points`` for ``person_id``, with every cap and admission of the program.

    A per-child grant is capped per household when the person's is known: two parents of the
    same children, applying each, are paid once for each child.
    """
    template = _template(program, provider)
    limit = template.person_limit
    if limit is None and household:
        own = Cap(f"{template.person_key}household:{household}", points,
                  "paid for the household's children")
    else:
        own = Cap(template.person_key + person_id, points if limit is None else limit,
                  "person cap")
    caps: tuple[Cap, ...] = (own,)
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


def health_points_key(program: str, person: str) -> str:
    """The tally of a person's health points towards a program's lottery."""
    return f"ht|{program}|{person}"


def drawn_key(program: str) -> str:
    """The tally that marks a program's lottery drawn (once, whatever the version)."""
    return f"dr|{program}|"

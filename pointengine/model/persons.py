"""A person as the engine knows them: enrolments, residence history, registrations.

State is kept with the time each fact became true, so that eligibility is judged at the
event's time: a fact that arrived before an event is read as of that event's time, whatever
their dates. An event decided before a fact arrived is not decided again (docs/events.md,
"Order"). Nothing here is a My Number: ``id`` is a
MyKey ID, checked at the boundary.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from dataclasses import dataclass, field

from pointengine.model.events import day_number
from pointengine.model.jst import JST


@dataclass(frozen=True, slots=True)
class Enrolment:
    """A Mynapoint application: the chosen provider for one phase."""

    provider: str
    applied_at: dt.datetime
    card_applied_on: dt.date
    # Both days as YYYYMMDD integers in JST, as facts hold them; every event's fact needs them.
    applied_day: int = field(init=False, repr=False, compare=False)
    card_day: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "applied_day", day_number(self.applied_at.astimezone(JST)))
        object.__setattr__(self, "card_day", day_number(self.card_applied_on))


@dataclass(slots=True)
class Person:
    """Everything eligibility needs to know about one MyKey ID."""

    id: str
    enrolments: dict[int, Enrolment] = field(default_factory=dict)
    residences: list[tuple[dt.datetime, str]] = field(default_factory=list)
    registrations: dict[str, dt.datetime] = field(default_factory=dict)
    birth_date: dt.date | None = None
    children: tuple[dt.date, ...] = ()
    household: str | None = None  # the resident registry's household, when known
    phase1_applicant: bool = False

    def enrolment_at(self, phase: int, at: dt.datetime) -> Enrolment | None:
        """The enrolment of ``phase`` if the person had applied by ``at``."""
        enrolment = self.enrolments.get(phase)
        if enrolment is None or enrolment.applied_at > at:
            return None
        return enrolment

    def residence_at(self, at: dt.datetime) -> str | None:
        """The municipality code the person lived in at ``at``, if known."""
        if not self.residences:
            return None
        index = bisect_right(self.residences, at, key=lambda r: r[0])
        # Before the first known residence we assume the first one: applications state the
        # residence as of the application, and an earlier purchase is judged by it.
        return self.residences[max(index - 1, 0)][1]

    def move(self, at: dt.datetime, code: str) -> None:
        """Record a residence from ``at`` on (kept sorted; the same instant replaces)."""
        self.residences = [r for r in self.residences if r[0] != at]
        self.residences.append((at, code))
        self.residences.sort(key=lambda r: r[0])

    def copy(self) -> Person:
        """An independent copy, so a rejected change leaves the stored person untouched."""
        return Person(
            id=self.id,
            enrolments=dict(self.enrolments),
            residences=list(self.residences),
            registrations=dict(self.registrations),
            birth_date=self.birth_date,
            children=self.children,
            household=self.household,
            phase1_applicant=self.phase1_applicant,
        )

"""An independent reference calculation of the national programs, to check the engine's ledger.

It shares no code with ``pointengine`` (it must not import it): it reads the event file with
orjson, validates lines by its own reading of the event format and hard-codes the national
parameters below. Only data is shared: ``rules/providers.yaml`` (each provider's basis) and the
code list ``pointengine/data/municipalities.csv``.

It decides by EVENT TIME, so a person's outcome does not depend on the order of the lines: every
line is validated, the first valid line of each key ``source/id`` in file order is kept (a later
one is a duplicate, refused as it arrives), and the kept events are decided in order of ``at``
(an instant: offsets do not matter), ties broken by the key as a string. Every rule below reads
"first", "earlier" and "later" in that order. Limits shared between persons (budgets, a
provider's allocation) are handed out in that order too, while the engine hands them out in
order of arrival (first come first served): the two agree to the yen on a stream whose shared
limits do not bind, which :func:`shared_limits` tells.

Rules, as the project's brief states them:

- phase 2 ① ``national-phase2-card``: 25% of each transaction, floored per transaction, only the
  chosen provider's, only on its basis (charges or purchases), the event's JST day and the
  Mynapoint application's day within 2022-01-01..2023-02-28, application not after the
  transaction, card applied by the deadline in force at the transaction (2022-09-30 until
  2022-09-30T23:59:59+09:00, then 2022-12-31 until 2022-12-31T23:59:59+09:00, then 2023-02-28),
  phase-1 recipients excluded; cap 5,000 per person, the crossing transaction earns the remainder;
- ② ``national-phase2-health-insurance`` and ③ ``national-phase2-public-funds-account``: 7,500
  once when the person is registered and applied for phase 2, decided at the later of the
  registration and the application, whose JST day must lie within 2022-06-30..2023-02-28;
- ①+②+③ at most 20,000 per person;
- phase 1 ``national-phase1-premium``: 25%, cap 5,000, transaction and application days within
  2020-09-01..2021-12-31, card applied by 2021-04-30; an award makes the person a phase-1
  recipient (as does ``applied_in_phase1`` on a phase-2 application), excluded from ① only;
- a refund takes back floor(points * refunded_total / amount) - already taken back, per program,
  and frees cap room from its time on; a refund of a transaction unknown at its time (or dated
  before it, or one that earned nothing), or one taking the refunded total past the amount, is
  ignored; an event whose (source, id) was seen before is ignored; so is a malformed line, an
  application naming another provider than the person's first one of that phase (the earliest),
  and an event naming an unknown provider.

Three municipal programs, from their rule files' text (``rules/342092-miyoshi``,
``rules/452017-miyazaki``, ``rules/250007-shiga``):

- ``miyoshi-premium``: 30% of each purchase, floored, at most 6,000 per person, for persons
  living in 三次市 (342092) at the purchase, at a store in 三次市, with the phase-2 chosen
  provider (applied before the purchase), JST day within 2022-01-01..2023-02-28;
- ``miyazaki-child-grant``: on a phase-2 application within 2022-01-01..2023-02-28 by a resident
  of 宮崎市 (452017), 30,000 per child of the application born 2020-04-28..2021-04-01, once per
  child: a person whose household is unknown is paid for the children beyond those an earlier
  application of theirs was paid for; once a person's application names a household (it stays
  theirs until another names a different one), its children are counted per household and
  birth date, whichever parent applies: a parent listing n children born on a day is paid for
  those beyond the ones the household was already paid for on that day (twins are a day listed
  twice), the days in date order;
- ``shiga-purchase-premium``: 5% of each purchase, floored, at most 1,000 per person, at a store
  in 滋賀県 (codes 25xxxx), with the phase-1 chosen provider (applied before the purchase)
  when it is a partner (d-barai, paypay, rakuten-edy, rakuten-pay, au-pay, majica), JST day
  within 2020-09-01..2021-12-31.

Budgets, as the rule files set them: a yen budget per program (the award that crosses it gets
the remainder, later ones nothing; a refund gives its share back); a budget in persons and each
partner's allocation of persons (for the persons whose chosen provider of the program's phase
it is): a person is admitted, first come first served (here: first in time), by the first
award the program wants to make for them, even one the caps then clip to nothing, and stays
admitted; past the limit a person who was not admitted gets nothing from that program.

A residence is the application's, or a later ``residence_change``'s, from its time on; an event
dated before the person's first known one has none. None of these cities has wards.

A program is one small function ``(person, event) -> points wanted`` (a per-child grant's:
``(person, event) -> the birth dates of the children it pays for``); caps, what a person or a
household was paid for their children, the per-person group total and refunds are applied around
it (add programs to :data:`PROGRAMS`).
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

ROOT = Path(__file__).resolve().parents[1]
JST = dt.timezone(dt.timedelta(hours=9))
PHASE1 = (dt.date(2020, 9, 1), dt.date(2021, 12, 31))
PHASE1_CARD_BY = dt.date(2021, 4, 30)
PHASE2 = (dt.date(2022, 1, 1), dt.date(2023, 2, 28))
GRANTS = (dt.date(2022, 6, 30), dt.date(2023, 2, 28))
#: (in force until, card applied by): the ① deadline and its two extensions.
CARD_DEADLINES = (
    (dt.datetime(2022, 10, 1, tzinfo=JST), dt.date(2022, 9, 30)),
    (dt.datetime(2023, 1, 1, tzinfo=JST), dt.date(2022, 12, 31)),
    (dt.datetime(9999, 1, 1, tzinfo=JST), dt.date(2023, 2, 28)),
)
RATE, PREMIUM_CAP, GRANT, PERSON_CAP = 25, 5_000, 7_500, 20_000
P1, P2_CARD = "national-phase1-premium", "national-phase2-card"
P2_HEALTH, P2_FUNDS = "national-phase2-health-insurance", "national-phase2-public-funds-account"
GROUP2 = "national-phase2"

Event = dict[str, Any]
Expected = dict[str, dict[str, int]]


@dataclass(slots=True)
class Person:
    """What the oracle knows of one person, from the events dated up to the one decided."""

    enrolments: dict[int, tuple[str, dt.datetime, dt.date]] = field(default_factory=dict)
    residences: list[tuple[dt.datetime, str]] = field(default_factory=list)
    phase1_flag: bool = False
    registered: dict[str, dt.datetime] = field(default_factory=dict)
    net: dict[str, int] = field(default_factory=dict)
    household: str | None = None  # the last one an application named
    # per-child grants: children paid for to this person while no household was known
    children_paid: dict[str, int] = field(default_factory=dict)
    groups: dict[str, int] = field(default_factory=dict)
    awarded: set[str] = field(default_factory=set)


@dataclass(slots=True)
class Earning:
    """A transaction that earned points: what refunds of it may take back."""

    person: str
    provider: str
    amount: int
    refunded: int = 0
    points: dict[str, list[int]] = field(default_factory=dict)  # program → [earned, taken back]


@dataclass(frozen=True, slots=True)
class Program:
    """A program: which event types it looks at, how much it wants, its caps."""

    id: str
    on: frozenset[str]
    wants: Callable[[Person, Event], int] | None  # None: a per-child grant (``children``)
    cap: int | None = None
    group: str | None = None
    once: bool = False
    budget: int | None = None  # yen, over all persons
    persons: int | None = None  # persons admitted, first come first served
    allocations: tuple[tuple[str, int], ...] = ()  # (provider, persons) for its users
    phase: int = 2  # whose chosen provider an allocation counts
    # a per-child grant: the birth dates of the children an event asks it for, and yen for each
    children: Callable[[Person, Event], list[dt.date]] | None = None
    per_child: int = 0


def _premium(person: Person, event: Event, phase: int, window: tuple[dt.date, dt.date],
             card_by: dt.date) -> int:
    enrolment = person.enrolments.get(phase)
    if enrolment is None:
        return 0
    provider, applied_at, card = enrolment
    ok = (event["provider"] == provider and BASIS.get(provider) == event["type"]
          and window[0] <= event["day"] <= window[1]
          and window[0] <= applied_at.astimezone(JST).date() <= window[1]
          and applied_at <= event["at"] and card <= card_by)
    return event["amount"] * RATE // 100 if ok else 0


def phase1_premium(person: Person, event: Event) -> int:
    """Phase 1: 25% of the chosen provider's transactions on its basis."""
    return _premium(person, event, 1, PHASE1, PHASE1_CARD_BY)


def phase2_card(person: Person, event: Event) -> int:
    """Phase 2 ①: as phase 1, with the card deadline in force, phase-1 recipients excluded."""
    if person.phase1_flag or P1 in person.awarded:
        return 0
    card_by = next(by for until, by in CARD_DEADLINES if event["at"] < until)
    return _premium(person, event, 2, PHASE2, card_by)


def _grant(person: Person, registration: str) -> int:
    enrolment, registered = person.enrolments.get(2), person.registered.get(registration)
    if enrolment is None or registered is None:
        return 0
    decided = max(enrolment[1], registered).astimezone(JST).date()
    return GRANT if GRANTS[0] <= decided <= GRANTS[1] else 0


def phase2_health(person: Person, event: Event) -> int:
    """Phase 2 ②: 7,500 once, registered as health-insurance card and applied."""
    return _grant(person, "health_insurance")


def phase2_funds(person: Person, event: Event) -> int:
    """Phase 2 ③: 7,500 once, public-funds account registered and applied."""
    return _grant(person, "public_funds_account")


MIYOSHI, MIYAZAKI, SHIGA_PREFIX = "342092", "452017", "25"
MUNICIPAL_PHASE2 = (dt.date(2022, 1, 1), dt.date(2023, 2, 28))
CHILDREN_BORN = (dt.date(2020, 4, 28), dt.date(2021, 4, 1))
SHIGA_PARTNERS = frozenset({"d-barai", "paypay", "rakuten-edy", "rakuten-pay", "au-pay",
                            "majica"})


def residence_at(person: Person, at: dt.datetime) -> str:
    """The person's municipality at ``at`` (the first known one before it), or ""."""
    here = ""
    for since, code in person.residences:
        if since > at and here:
            break
        here = code
    return here


def _move(person: Person, at: dt.datetime, code: str) -> None:
    person.residences = sorted([r for r in person.residences if r[0] != at] + [(at, code)],
                               key=lambda r: r[0])


def _via_chosen(person: Person, event: Event, phase: int) -> str | None:
    """The chosen provider when the person applied by the event and used it, else None."""
    enrolment = person.enrolments.get(phase)
    if enrolment is None or enrolment[1] > event["at"] or event["provider"] != enrolment[0]:
        return None
    return enrolment[0]


def miyoshi_premium(person: Person, event: Event) -> int:
    """三次市: 30% of purchases in the city by its residents, via the phase-2 provider."""
    ok = (_via_chosen(person, event, 2) is not None
          and MUNICIPAL_PHASE2[0] <= event["day"] <= MUNICIPAL_PHASE2[1]
          and residence_at(person, event["at"]) == MIYOSHI
          and event["store_municipality"] == MIYOSHI)
    return event["amount"] * 30 // 100 if ok else 0


def miyazaki_children(person: Person, event: Event) -> list[dt.date]:
    """宮崎市: the children born in the range, on a resident's phase-2 application."""
    enrolment = person.enrolments.get(2)
    if (enrolment is None or enrolment[1] > event["at"]
            or not MUNICIPAL_PHASE2[0] <= event["day"] <= MUNICIPAL_PHASE2[1]
            or residence_at(person, event["at"]) != MIYAZAKI):
        return []
    born = [dt.date.fromisoformat(d) for d in event.get("children_birth_dates", [])]
    return [d for d in born if CHILDREN_BORN[0] <= d <= CHILDREN_BORN[1]]


def shiga_purchase_premium(person: Person, event: Event) -> int:
    """滋賀県: 5% of purchases at stores in the prefecture, via a partner phase-1 provider."""
    provider = _via_chosen(person, event, 1)
    ok = (provider in SHIGA_PARTNERS and PHASE1[0] <= event["day"] <= PHASE1[1]
          and event["store_municipality"][:2] == SHIGA_PREFIX)
    return event["amount"] * 5 // 100 if ok else 0


TRANSACTIONS = frozenset({"charge", "purchase"})
MUNICIPAL: tuple[Program, ...] = (
    Program("miyoshi-premium", frozenset({"purchase"}), miyoshi_premium, cap=6_000,
            budget=300_000_000),
    Program("miyazaki-child-grant", frozenset({"mynapoint_application"}), None,
            budget=120_000_000, children=miyazaki_children, per_child=30_000),
    Program("shiga-purchase-premium", frozenset({"purchase"}), shiga_purchase_premium,
            cap=1_000, budget=90_000_000, phase=1, allocations=(
                ("d-barai", 20_000), ("paypay", 30_000), ("rakuten-edy", 10_000),
                ("rakuten-pay", 10_000), ("au-pay", 15_000), ("majica", 5_000))),
)
PROGRAMS: tuple[Program, ...] = (
    Program(P1, TRANSACTIONS, phase1_premium, cap=PREMIUM_CAP, persons=25_340_000, phase=1),
    Program(P2_CARD, TRANSACTIONS, phase2_card, cap=PREMIUM_CAP, group=GROUP2,
            persons=69_500_000),
    Program(P2_HEALTH, frozenset({"health_insurance_registration", "mynapoint_application"}),
            phase2_health, group=GROUP2, once=True, persons=95_000_000),
    Program(P2_FUNDS, frozenset({"public_funds_account_registration", "mynapoint_application"}),
            phase2_funds, group=GROUP2, once=True, persons=95_000_000),
)
GROUP_CAPS = {GROUP2: PERSON_CAP}
#: The national programs and the three municipal ones (for a catalog of every rule file).
ALL_PROGRAMS = PROGRAMS + MUNICIPAL


def _load_basis() -> dict[str, str]:
    raw = yaml.safe_load((ROOT / "rules" / "providers.yaml").read_text(encoding="utf-8"))
    return {str(p["id"]): str(p["basis"]) for p in raw["providers"]}


def _load_codes() -> frozenset[str]:
    with (ROOT / "pointengine" / "data" / "municipalities.csv").open(encoding="utf-8") as handle:
        return frozenset(row["code6"] for row in csv.DictReader(handle))


BASIS = _load_basis()
CODES = _load_codes()
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}")
_COMMON = {"type", "source", "id", "person", "at"}
#: type → (required fields, optional fields) beyond the common ones.
_FIELDS: dict[str, tuple[set[str], set[str]]] = {
    "mynapoint_application": ({"phase", "provider", "card_applied_on", "residence"},
                              {"birth_date", "children_birth_dates", "applied_in_phase1",
                               "household"}),
    "health_insurance_registration": (set(), set()),
    "public_funds_account_registration": (set(), set()),
    "charge": ({"provider", "amount"}, {"store", "store_municipality"}),
    "purchase": ({"provider", "amount", "store", "store_municipality"}, set()),
    "refund": ({"provider", "transaction", "amount"}, set()),
    "residence_change": ({"residence"}, set()),
    "participation": ({"municipality", "activity"}, {"health_points"}),
    "lottery_draw": ({"program"}, set()),
}


def is_my_number(value: str) -> bool:
    """12 digits whose last is the My Number check digit of the first 11."""
    if len(value) != 12 or not value.isascii() or not value.isdigit():
        return False
    total = sum(int(c) * (n + 1 if n <= 6 else n - 5)
                for n, c in enumerate(reversed(value[:11]), start=1))
    r = total % 11
    return int(value[11]) == (0 if r <= 1 else 11 - r)


def _ident(value: Any) -> bool:
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def _date(value: Any) -> bool:
    try:
        dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        return False
    return len(value) == 10


def validate(line: bytes) -> Event | None:
    """The event of a line, or None when the line is not a valid canonical event."""
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(event, dict) or event.get("type") not in _FIELDS:
        return None
    required, optional = _FIELDS[event["type"]]
    keys = set(event)
    if not (_COMMON | required) <= keys <= _COMMON | required | optional:
        return None
    if any(event[k] is None for k in required):
        return None
    if not all(_ident(event[k]) for k in ("source", "id", "person")):
        return None
    if is_my_number(event["person"]) or not isinstance(event["at"], str):
        return None
    try:
        at = dt.datetime.fromisoformat(event["at"])
    except ValueError:
        return None
    if at.tzinfo is None:
        return None
    for key in ("provider", "transaction", "activity", "program"):
        if key in event and not _ident(event[key]):
            return None
    if "amount" in event:
        amount = event["amount"]
        if type(amount) is not int or not 0 < amount <= 100_000_000:
            return None
    for key in ("residence", "store_municipality", "municipality"):
        if event.get(key) is not None and event[key] not in CODES:
            return None
    if event.get("store") is not None and not _ident(event["store"]):
        return None
    if event["type"] == "mynapoint_application" and not _application_ok(event):
        return None
    event["at"] = at
    event["day"] = at.astimezone(JST).date()
    return event


def _application_ok(event: Event) -> bool:
    if type(event["phase"]) is not int or event["phase"] not in (1, 2):
        return False
    if not _date(event["card_applied_on"]):
        return False
    if event.get("birth_date") is not None and not _date(event["birth_date"]):
        return False
    kids = event.get("children_birth_dates", [])
    if not isinstance(kids, list) or not all(_date(k) for k in kids):
        return False
    household = event.get("household")
    if household is not None and not (isinstance(household, str) and _ID.fullmatch(household)):
        return False
    return isinstance(event.get("applied_in_phase1", False), bool)


@dataclass(frozen=True, slots=True)
class Limit:
    """A limit shared between persons (first come first served) and the oracle's use of it.

    ``kind`` is ``yen`` (a program's budget), ``persons`` (its budget in persons) or
    ``allocation`` (a provider's allocation of persons, ``provider`` naming it). ``peak`` is the
    most it held at any time (yen net of refunds; persons admitted), ``gross`` what was ever
    added (yen before refunds; persons admitted), ``refused`` how many awards it clipped or
    refused. Only a limit that refused something changes money, and then the order in which
    the persons came decides who got it.
    """

    program: str
    kind: str
    provider: str
    limit: int
    peak: int
    gross: int
    refused: int

    @property
    def binds(self) -> bool:
        """Whether the limit clipped or refused an award."""
        return self.refused > 0


@dataclass(slots=True)
class _Use:
    """How far a shared limit was used (see :class:`Limit`)."""

    peak: int = 0
    gross: int = 0
    refused: int = 0

    def count(self, now: int, added: int) -> None:
        """The limit holds ``now`` after ``added`` (negative: a refund gave some back)."""
        self.peak = max(self.peak, now)
        self.gross += max(added, 0)


class Oracle:
    """Keeps the valid events it is fed and decides them by event time.

    :meth:`feed` validates a line and keeps the first valid line of each key (file order decides
    which is the first, as a duplicate is refused when it arrives); the expected points are
    those of the kept events decided in ``(at, key)`` order, whatever the order of the lines.
    Events fed after a result was asked for are decided again with all the others.
    """

    def __init__(self, programs: Iterable[Program] = PROGRAMS) -> None:
        self.programs = tuple(programs)
        self.seen: set[str] = set()
        self._by_id = {p.id: p for p in self.programs}
        self._kept: list[tuple[dt.datetime, str, Event]] = []
        self._decided = 0  # how many of the kept events the decisions below are made of
        self._reset()

    def _reset(self) -> None:
        """Forget every decision (not the events kept)."""
        self.persons: dict[str, Person] = {}
        self.earnings: dict[str, Earning] = {}
        self.spent: dict[str, int] = {}  # program → yen, net of refunds
        self.admitted: dict[str, set[str]] = {}  # program → persons
        self.admitted_via: dict[tuple[str, str], int] = {}  # (program, provider) → persons
        # (household, program, birth date) → how many of the household's children born that
        # day a per-child grant paid for
        self.household_children: dict[tuple[str, str, dt.date], int] = {}
        # shared limits: (program, kind, provider) → how far they were used
        self._use: dict[tuple[str, str, str], _Use] = {}

    def feed(self, line: bytes) -> None:
        """Keep one line of the event file, to be decided in ``(at, key)`` order."""
        event = validate(line)
        if event is None:
            return
        key = f"{event['source']}/{event['id']}"
        if key in self.seen:
            return
        self.seen.add(key)
        if "provider" in event and event["provider"] not in BASIS:
            return
        self._kept.append((event["at"], key, event))

    def _settle(self) -> None:
        """Decide every kept event in ``(at, key)`` order, unless that was done since the last
        one was fed."""
        if self._decided == len(self._kept):
            return
        self._reset()
        # Aware datetimes compare as UTC instants, whatever their offsets; keys are unique.
        self._kept.sort(key=lambda item: (item[0], item[1]))
        for _, key, event in self._kept:
            self._decide(event, key)
        self._decided = len(self._kept)

    def _decide(self, event: Event, key: str) -> None:
        """Apply one kept event, every event dated before it already applied."""
        kind = event["type"]
        if kind == "refund":
            self._refund(event)
            return
        person = self.persons.get(event["person"])
        if kind == "mynapoint_application":
            person = person or self.persons.setdefault(event["person"], Person())
            earlier = person.enrolments.get(event["phase"])
            if earlier is not None and earlier[0] != event["provider"]:
                return  # the first application of the phase (in time) chose the provider
            if earlier is None:
                card = dt.date.fromisoformat(event["card_applied_on"])
                person.enrolments[event["phase"]] = (event["provider"], event["at"], card)
            person.phase1_flag |= event.get("applied_in_phase1", False)
            person.household = event.get("household") or person.household
            if residence_at(person, event["at"]) != event["residence"]:
                _move(person, event["at"], event["residence"])
        elif kind == "residence_change":
            person = person or self.persons.setdefault(event["person"], Person())
            _move(person, event["at"], event["residence"])
        elif kind in ("health_insurance_registration", "public_funds_account_registration"):
            person = person or self.persons.setdefault(event["person"], Person())
            # in time order the first registration is the earliest: later ones change nothing
            person.registered.setdefault(kind.removesuffix("_registration"), event["at"])
        if person is not None:
            self._award(person, event, key)

    def _award(self, person: Person, event: Event, key: str) -> None:
        for program in self.programs:
            if event["type"] not in program.on or (program.once and program.id in person.awarded):
                continue
            for wanted, room, children in self._asks(program, person, event):
                self._pay(program, person, event, key, wanted, room, children)

    def _asks(self, program: Program, person: Person,
              event: Event) -> list[tuple[int, int | None, tuple[str, str, dt.date] | None]]:
        """What ``event`` asks from ``program``: (yen, room before the program's caps, the
        household's children it pays for: (household, program, birth date)) per payment."""
        if program.wants is not None:
            return [(program.wants(person, event), None, None)]
        assert program.children is not None
        born = program.children(person, event)
        if not born:
            return []
        if person.household is None:
            wanted = program.per_child * len(born)
            return [(wanted, wanted - person.children_paid.get(program.id, 0), None)]
        asks: list[tuple[int, int | None, tuple[str, str, dt.date] | None]] = []
        for day in sorted(set(born)):
            listed = born.count(day)
            which = (person.household, program.id, day)
            unpaid = max(0, listed - self.household_children.get(which, 0))
            asks.append((program.per_child * listed, program.per_child * unpaid, which))
        return asks

    def _pay(self, program: Program, person: Person, event: Event, key: str, wanted: int,
             room: int | None, children: tuple[str, str, dt.date] | None) -> None:
        if wanted <= 0 or not self._admit(program, event["person"], person):
            return
        if room is not None:
            wanted = min(wanted, room)
        net = person.net.get(program.id, 0)
        if program.cap is not None:
            wanted = min(wanted, program.cap - net)
        if program.group is not None:
            wanted = min(wanted, GROUP_CAPS[program.group] - person.groups.get(program.group, 0))
        if program.budget is not None:
            left = program.budget - self.spent.get(program.id, 0)
            if wanted > left:
                self._used(program.id, "yen").refused += 1
            wanted = min(wanted, left)
        if wanted <= 0:
            return
        self._add(person, program, wanted)
        if children is not None:
            # A child counts as paid for once any of its grant is: only the payment that
            # crosses the budget pays part of one, and nothing is paid after it.
            paid = -(-wanted // program.per_child)
            self.household_children[children] = self.household_children.get(children, 0) + paid
        elif program.children is not None:
            person.children_paid[program.id] = person.children_paid.get(program.id, 0) + wanted
        if event["type"] in TRANSACTIONS:
            earning = self.earnings.setdefault(
                key, Earning(event["person"], event["provider"], event["amount"]))
            earning.points[program.id] = [wanted, 0]

    def _admit(self, program: Program, person_id: str, person: Person) -> bool:
        """Admit the person to the program unless a limit in persons is reached."""
        enrolment = person.enrolments.get(program.phase)
        provider = enrolment[0] if enrolment is not None else ""
        allocation = dict(program.allocations).get(provider)
        if program.persons is None and allocation is None:
            return True
        members = self.admitted.setdefault(program.id, set())
        if person_id in members:
            return True
        if program.persons is not None and len(members) >= program.persons:
            self._used(program.id, "persons").refused += 1
            return False
        via = (program.id, provider)
        if allocation is not None and self.admitted_via.get(via, 0) >= allocation:
            self._used(program.id, "allocation", provider).refused += 1
            return False
        members.add(person_id)
        if program.persons is not None:
            self._used(program.id, "persons").count(len(members), 1)
        if allocation is not None:
            self.admitted_via[via] = self.admitted_via.get(via, 0) + 1
            self._used(program.id, "allocation", provider).count(self.admitted_via[via], 1)
        return True

    def _used(self, program_id: str, kind: str, provider: str = "") -> _Use:
        """The use of one shared limit so far."""
        return self._use.setdefault((program_id, kind, provider), _Use())

    def _add(self, person: Person, program: Program, points: int) -> None:
        self.spent[program.id] = self.spent.get(program.id, 0) + points
        if program.budget is not None:
            self._used(program.id, "yen").count(self.spent[program.id], points)
        person.net[program.id] = person.net.get(program.id, 0) + points
        if program.group is not None:
            person.groups[program.group] = person.groups.get(program.group, 0) + points
        if points > 0:
            person.awarded.add(program.id)

    def _refund(self, event: Event) -> None:
        earning = self.earnings.get(f"{event['source']}/{event['transaction']}")
        if (earning is None or (earning.person, earning.provider)
                != (event["person"], event["provider"])
                or earning.refunded + event["amount"] > earning.amount):
            return
        earning.refunded += event["amount"]
        person = self.persons[earning.person]
        for program_id, pair in earning.points.items():
            take = pair[0] * earning.refunded // earning.amount - pair[1]
            if take > 0:
                pair[1] += take
                self._add(person, self._by_id[program_id], -take)

    def expected(self) -> Expected:
        """Net points per person and program (zeros left out), the events decided by time."""
        self._settle()
        return {pid: {prog: n for prog, n in p.net.items() if n}
                for pid, p in self.persons.items() if any(p.net.values())}

    def limits(self) -> list[Limit]:
        """Every limit the programs share between persons, and how far the events used it."""
        self._settle()
        found: list[Limit] = []
        for program in self.programs:
            shared = [("yen", "", program.budget), ("persons", "", program.persons)]
            shared += [("allocation", provider, n) for provider, n in program.allocations]
            for kind, provider, limit in shared:
                if limit is not None:
                    use = self._use.get((program.id, kind, provider), _Use())
                    found.append(Limit(program.id, kind, provider, limit, use.peak, use.gross,
                                       use.refused))
        return found


def oracle_of(events_path: Path, programs: Iterable[Program] = PROGRAMS) -> Oracle:
    """An oracle fed every line of an event file (JSON lines)."""
    oracle = Oracle(programs)
    with events_path.open("rb") as handle:
        for line in handle:
            oracle.feed(line)
    return oracle


def expected_points(events_path: Path, programs: Iterable[Program] = PROGRAMS) -> Expected:
    """The events of a file decided by time: ``{person: {program: points}}``."""
    return oracle_of(events_path, programs).expected()


def shared_limits(events_path: Path, programs: Iterable[Program] = ALL_PROGRAMS) -> list[Limit]:
    """Every limit shared between persons, and how far the events of a file used it.

    The engine hands these out in order of arrival and the oracle in order of time: on a stream
    where none binds (:attr:`Limit.binds`), the two orders give the same money.
    """
    return oracle_of(events_path, programs).limits()


def ledger_totals(ledger_path: Path) -> Expected:
    """Sum a ledger file's lines (``person``, ``program``, ``points``) per person and program."""
    totals: Expected = {}
    with ledger_path.open("rb") as handle:
        for line in handle:
            if line.strip():
                row = orjson.loads(line)
                mine = totals.setdefault(row["person"], {})
                mine[row["program"]] = mine.get(row["program"], 0) + int(row["points"])
    return totals


def compare(expected: Expected, ledger_path: Path) -> list[str]:
    """Differences between the oracle and a ledger, one line per person and program.

    An empty list means the ledger matches the oracle to the yen.
    """
    actual = ledger_totals(ledger_path)
    problems: list[str] = []
    for person in sorted(expected.keys() | actual.keys()):
        want, got = expected.get(person, {}), actual.get(person, {})
        for program in sorted(want.keys() | got.keys()):
            if want.get(program, 0) != got.get(program, 0):
                problems.append(f"{person} {program}: expected {want.get(program, 0)}, "
                                f"ledger {got.get(program, 0)}")
    return problems


def describe(limit: Limit) -> str:
    """One line on a shared limit: its use, and whether it binds."""
    what = f"{limit.program} {limit.kind}" + (f" {limit.provider}" if limit.provider else "")
    verdict = f"BINDS ({limit.refused:,} refused or clipped)" if limit.binds else "does not bind"
    return (f"{what}: limit {limit.limit:,}, peak {limit.peak:,} "
            f"({limit.peak / limit.limit:.4%}), gross {limit.gross:,}; {verdict}")


def main(argv: list[str] | None = None) -> int:
    """``python -m load.oracle EVENTS [LEDGER] [--all] [--limits]``: totals per program, the
    differences with a ledger, and the shared limits' use."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m load.oracle",
        description="The national (and municipal) programs computed independently, by event time.")
    parser.add_argument("events", type=Path, help="the event file (JSON lines)")
    parser.add_argument("ledger", type=Path, nargs="?", help="a ledger to compare")
    parser.add_argument("--all", action="store_true",
                        help="the municipal programs too (default: the national ones)")
    parser.add_argument("--limits", action="store_true",
                        help="print each limit shared between persons and whether it binds")
    args = parser.parse_args(argv)
    for path in (args.events, args.ledger):
        if path is not None and not path.is_file():
            parser.error(f"no such file: {path}")
    oracle = oracle_of(args.events, ALL_PROGRAMS if args.all else PROGRAMS)
    expected = oracle.expected()
    totals: dict[str, int] = {}
    for programs in expected.values():
        for program, points in programs.items():
            totals[program] = totals.get(program, 0) + points
    print(f"{len(expected):,} persons with points; per program: {totals}")
    if args.limits:
        print("\n".join(describe(limit) for limit in oracle.limits()))
    if args.ledger is not None:
        problems = compare(expected, args.ledger)
        print("\n".join(problems[:50]) or "ledger matches the oracle to the yen")
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

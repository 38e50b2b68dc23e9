"""Generate a load-test event file: canonical events as JSON lines, streamed to disk.

``pointengine generate OUT --persons N --events N --seed S`` runs it from the command line
(:mod:`pointengine.cli.generate`). ``generate(out, persons=..., events=..., seed=...)`` writes
exactly ``events`` canonical events (plus re-deliveries when ``duplicates`` is asked, and
lottery draws when asked) with orjson, in time order except for the adversarial mixes.
Memory depends on ``persons`` (flat arrays, about 60 bytes a person), never on ``events``: days
are generated one at a time and merged with the persons' own events.

What is written (see :mod:`pointengine.synth.population` for the synthetic assumptions):

- per applier (phase 2): ``mynapoint_application`` (source ``mykey``), for the phase-1 cohort also
  a phase-1 application in 2020-09..2021-12 and ``applied_in_phase1: true`` on phase 2;
  ``health_insurance_registration`` (~50%) and ``public_funds_account_registration`` (~40%),
  mostly after 2022-06-30; ``residence_change`` (source ``juki-net``, ~2%);
- the rest of the budget: charges and purchases (source = the provider's id) of the persons who
  applied by then, with their chosen provider (97%), mostly on the provider's basis (85% charges
  for a charge-basis provider, 95% purchases for a purchase-basis one); stores ``ST<code>-<n>``,
  80% in the person's own municipality; refunds (~1.5% of transactions, 70% full, 30% partial,
  never more than what is left) of a recent transaction of the same source;
- about 1% of events fall outside 2022-01-01..2023-02-28 JST (phase-1 events, late ones).

Participation in municipal activities and lottery draws are written only when asked for
(``activities``, see :class:`Activities`): a share of the transaction slots become
``participation`` events of active residents of the given places, and each lottery draw is
written at its time by an official.

Adversarial mixes (``adversarial``): ``duplicates`` re-delivers ~1% of lines verbatim 1-2,000
lines later; ``out_of_order`` holds back ~1% of lines by 1-5 lines; ``malformed`` replaces ~0.5%
of events by a broken line (bad JSON, float amount, missing field, unknown municipality code, a
valid My Number as ``person``): the event is lost, so later refunds of it name an unknown
transaction. Each mix has its own random stream, so the canonical content does not change.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import heapq
import itertools
import math
import random
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from pointengine.model.output import make_folder, whole_file
from pointengine.synth.population import (
    DAY,
    EPOCH,
    NONE,
    Persons,
    Population,
    build_persons,
    children_days,
    day_index,
    load_population,
    to_date,
    write_person_names,
)

ADVERSARIAL = frozenset({"duplicates", "out_of_order", "malformed"})
DUPLICATE_RATE = 0.01
OUT_OF_ORDER_RATE = 0.01
MALFORMED_RATE = 0.005
REFUND_RATE = 0.015

WINDOW = (day_index(dt.date(2022, 1, 1)), day_index(dt.date(2023, 2, 28)))
_NEVER = 1 << 62
_OPEN, _CLOSE = WINDOW[0] * DAY, (WINDOW[1] + 1) * DAY
PHASE1_FIRST = day_index(dt.date(2020, 9, 1))
LAST_DAY = day_index(dt.date(2023, 3, 31))
PHASE1_SLOTS = 0.002  # share of transactions in the phase-1 window (phase-1 cohort)
LATE_SLOTS = 0.002  # share of transactions in March 2023, after the window

_APP1, _APP2, _HEALTH, _FUNDS, _MOVE = range(5)
_HOURS = list(itertools.accumulate(
    (0.3, 0.2, 0.1, 0.1, 0.1, 0.2, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 3.0, 2.5, 2.5, 2.5, 3.0,
     3.5, 3.5, 3.0, 2.0, 1.2, 0.6)))
_CHARGES = (1000, 1000, 2000, 3000, 3000, 5000, 5000, 5000, 10000, 10000, 20000, 30000, 50000)
Event = dict[str, Any]
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Activities:
    """Participation in municipal activities, for programs triggered by it (off by default).

    Participants are persons living in ``places`` (local government codes; a prefecture's code
    means its municipalities) who applied for phase 2, of whom ``active_share`` take part at
    all; ``share`` of the transaction slots become a participation of one of them, after their
    application, in one of ``names``, with health points drawn from ``health_points``.
    ``draws`` are lottery draws, (program id, time), written in time order by an official.
    Draws use their own random stream (``{seed}:activities``).
    """

    places: tuple[str, ...]
    names: tuple[str, ...]
    health_points: tuple[int, ...] = (0,)
    share: float = 0.05
    active_share: float = 0.3
    draws: tuple[tuple[str, dt.datetime], ...] = ()


OFFICIAL = "MK-OFFICIAL"
"""The MyKey ID of the official who draws a lottery in generated streams."""


@dataclass(slots=True)
class GenerateReport:
    """What :func:`generate` wrote."""

    path: Path
    seed: int
    persons: int
    appliers: int
    events: int
    lines: int = 0
    sha256: str = ""
    by_type: dict[str, int] = field(default_factory=dict)
    outside_window: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    malformed: dict[str, int] = field(default_factory=dict)
    malformed_lines: int = 0
    seconds: float = 0.0

    @property
    def events_per_second(self) -> float:
        """Canonical events generated per second of wall time."""
        return self.events / self.seconds if self.seconds > 0 else 0.0


def my_number(rng: random.Random) -> str:
    """A random 12-digit number with a valid My Number check digit (for malformed lines).

    For the 11 digits P_n counted from the right (n = 1..11) the weights are Q_n = n + 1 for
    n <= 6 and n - 5 for 7 <= n <= 11; r = sum(P_n * Q_n) mod 11; the check digit is 0 when
    r <= 1, else 11 - r.
    """
    digits = f"{rng.randrange(1, 10)}{rng.randrange(10**10):010d}"
    total = sum(int(c) * (n + 1 if n <= 6 else n - 5)
                for n, c in enumerate(reversed(digits), start=1))
    r = total % 11
    return digits + str(0 if r <= 1 else 11 - r)


def _stamp(seconds: int, days: dict[int, str]) -> str:
    day, rest = divmod(seconds, DAY)
    text = days.get(day)
    if text is None:
        text = days[day] = to_date(day).isoformat()
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    return f"{text}T{h:02d}:{m:02d}:{s:02d}+09:00"


class _Writer:
    """The last stage: buffered writes, sha256, line counts."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()
        self.chunk: list[bytes] = []
        self.lines = 0
        self.bad = 0

    def write(self, line: bytes, bad: bool = False) -> None:
        self.chunk.append(line)
        self.lines += 1
        if bad:
            self.bad += 1
        if len(self.chunk) >= 8192:
            self.flush()

    def flush(self) -> None:
        data = b"".join(self.chunk)
        self.digest.update(data)
        self.handle.write(data)
        self.chunk.clear()


class _Adversary:
    """Malformed lines, then out-of-order holds, then duplicates, then the writer."""

    def __init__(self, kinds: frozenset[str], seed: int, writer: _Writer,
                 report: GenerateReport) -> None:
        self.plain = not kinds
        unknown = kinds - ADVERSARIAL
        if unknown:
            raise ValueError(f"unknown adversarial mixes {sorted(unknown)}; "
                             f"choose from {sorted(ADVERSARIAL)}")
        self.malformed = "malformed" in kinds
        self.shuffle = "out_of_order" in kinds
        self.dupes = "duplicates" in kinds
        self.rng_bad = random.Random(f"{seed}:malformed")
        self.rng_order = random.Random(f"{seed}:out_of_order")
        self.rng_dup = random.Random(f"{seed}:duplicates")
        self.writer = writer
        self.report = report
        self.held: list[list[Any]] = []
        self.later: list[tuple[int, int, bytes, bool]] = []
        self.tick = 0

    def emit(self, event: Event) -> None:
        if self.plain:
            self.writer.write(orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE))
            return
        bad = False
        if self.malformed and self.rng_bad.random() < MALFORMED_RATE:
            line, kind = self._break(event)
            self.report.malformed[kind] = self.report.malformed.get(kind, 0) + 1
            bad = True
        else:
            line = orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE)
        if self.shuffle and self.rng_order.random() < OUT_OF_ORDER_RATE:
            self.report.out_of_order += 1
            self.held.append([self.rng_order.randint(1, 5), line, bad])
            return
        self._pass(line, bad)
        if self.held:
            for item in self.held:
                item[0] -= 1
            due = [item for item in self.held if item[0] <= 0]
            self.held = [item for item in self.held if item[0] > 0]
            for _, held_line, held_bad in due:
                self._pass(held_line, held_bad)

    def _pass(self, line: bytes, bad: bool) -> None:
        while self.later and self.later[0][0] <= self.writer.lines:
            _, _, again, again_bad = heapq.heappop(self.later)
            self.writer.write(again, again_bad)
        self.writer.write(line, bad)
        if self.dupes and self.rng_dup.random() < DUPLICATE_RATE:
            self.report.duplicates += 1
            self.tick += 1
            due = self.writer.lines + self.rng_dup.randint(1, 2000)
            heapq.heappush(self.later, (due, self.tick, line, bad))

    def close(self) -> None:
        for _, line, bad in self.held:
            self._pass(line, bad)
        self.held.clear()
        while self.later:
            _, _, again, again_bad = heapq.heappop(self.later)
            self.writer.write(again, again_bad)

    def _break(self, event: Event) -> tuple[bytes, str]:
        rng = self.rng_bad
        places = [k for k in ("residence", "store_municipality") if event.get(k)]
        kinds = ["bad_json", "missing_field", "my_number"]
        if "amount" in event:
            kinds.append("float_amount")
        if places:
            kinds.append("unknown_municipality")
        kind = rng.choice(kinds)
        broken = dict(event)
        if kind == "bad_json":
            text = orjson.dumps(event)
            return text[: rng.randrange(1, len(text) - 1)] + b"\n", kind
        if kind == "float_amount":
            broken["amount"] = float(event["amount"]) + rng.choice((0.0, 0.5))
        elif kind == "missing_field":
            required = ["source", "id", "person", "at", "type"]
            required += [k for k in ("provider", "amount", "residence", "phase", "transaction",
                                     "card_applied_on", "store") if k in event]
            del broken[rng.choice(required)]
        elif kind == "unknown_municipality":
            key = rng.choice(places)
            code = str(event[key])
            broken[key] = code[:5] + str((int(code[5]) + rng.randint(1, 9)) % 10)
        else:
            broken["person"] = my_number(rng)
        return orjson.dumps(broken, option=orjson.OPT_APPEND_NEWLINE), kind


def _fixed_events(people: Persons) -> array[int]:
    """Every person's own events, encoded ``time << 32 | person << 3 | kind``, sorted."""
    encoded: list[int] = []
    columns = ((people.phase1, _APP1), (people.applied, _APP2), (people.health, _HEALTH),
               (people.funds, _FUNDS), (people.moved, _MOVE))
    for column, kind in columns:
        encoded.extend((t << 32) | (i << 3) | kind for i, t in enumerate(column) if t != NONE)
    encoded.sort()
    return array("q", encoded)


def _split(total: int, weights: list[float]) -> list[int]:
    """``total`` over ``weights`` by largest remainder (deterministic)."""
    whole = sum(weights)
    if total <= 0 or whole <= 0:
        return [0] * len(weights)
    exact = [total * w / whole for w in weights]
    shares = [int(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (shares[i] - exact[i], i))
    for i in order[: total - sum(shares)]:
        shares[i] += 1
    return shares


def _slots_per_day(people: Persons, first: int, last: int, total: int) -> list[int]:
    """How many transaction slots each day from ``first`` to ``last`` gets."""
    ndays = last - first + 1
    p1 = [0.0] * ndays
    p2 = [0.0] * ndays
    for column, target in ((people.phase1, p1), (people.applied, p2)):
        for t in column:
            if t != NONE and first <= t // DAY <= last:
                target[t // DAY - first] += 1
    p1 = list(itertools.accumulate(p1))
    p2 = list(itertools.accumulate(p2))
    lo, hi = WINDOW[0] - first, WINDOW[1] - first
    phase1_days = [p1[d] if PHASE1_FIRST - first <= d < lo else 0.0 for d in range(ndays)]
    base = max(p2[hi], 1.0) * 0.02
    main_days = [p2[d] + base if lo <= d <= hi else 0.0 for d in range(ndays)]
    late_days = [1.0 if hi < d <= LAST_DAY - first else 0.0 for d in range(ndays)]
    n1 = round(total * PHASE1_SLOTS) if sum(phase1_days) else 0
    n_late = round(total * LATE_SLOTS)
    parts = (_split(n1, phase1_days), _split(n_late, late_days),
             _split(total - n1 - n_late, main_days))
    return [sum(col) for col in zip(*parts, strict=True)]


class _Simulation:
    """The state that evolves while days are written."""

    def __init__(self, pop: Population, people: Persons, seed: int, emit: Callable[[Event], None],
                 report: GenerateReport, activities: Activities | None = None) -> None:
        self.pop = pop
        self.activities = activities
        self.arng = random.Random(f"{seed}:activities")
        self.participants: list[int] = []
        if activities is not None:
            units = {i for code in activities.places for i in _units_of(pop, code)}
            self.participants = [
                p for p in range(len(people))
                if people.residence[p] in units and people.applied[p] != NONE
                and self.arng.random() < activities.active_share]
        self.people = people
        self.rng = random.Random(f"{seed}:events")
        self.emit_raw = emit
        self.report = report
        self.days: dict[int, str] = {}
        self.pool1: array[int] = array("I")
        self.pool2: array[int] = array("I")
        self.ring: list[list[Any]] = []
        self.ring_at = 0
        self.seq = 0
        self.bases = [pop.providers[p] for p in pop.provider_ids]
        self.stores = [max(2, min(9999, u.population // 3000)) for u in pop.units]

    def emit(self, event: Event, seconds: int) -> None:
        by_type = self.report.by_type
        by_type[event["type"]] = by_type.get(event["type"], 0) + 1
        if not _OPEN <= seconds < _CLOSE:
            self.report.outside_window += 1
        self.emit_raw(event)

    def next_id(self, prefix: str) -> str:
        self.seq += 1
        return f"{prefix}{self.seq}"

    def person_event(self, code: int) -> None:
        seconds, person, kind = code >> 32, (code >> 3) & 0x1FFFFFFF, code & 7
        people, rng = self.people, self.rng
        event: Event = {"type": "", "source": "mykey", "id": "", "person": people.mykey(person),
                        "at": _stamp(seconds, self.days)}
        if kind in (_APP1, _APP2):
            event.update(type="mynapoint_application", id=self.next_id("a"),
                         phase=1 if kind == _APP1 else 2,
                         provider=self.pop.provider_ids[people.provider[person]],
                         card_applied_on=to_date(people.card[person]).isoformat(),
                         residence=self.pop.units[people.residence[person]].code,
                         birth_date=to_date(people.birth[person]).isoformat())
            if kind == _APP2:
                kids = children_days(rng, people.birth[person], seconds // DAY)
                event["children_birth_dates"] = [to_date(d).isoformat() for d in kids]
                event["applied_in_phase1"] = people.phase1[person] != NONE
            pool = self.pool1 if kind == _APP1 else self.pool2
            pool.append(person)
            if rng.random() < 0.3:  # heavy users transact twice as often
                pool.append(person)
        elif kind == _HEALTH:
            event.update(type="health_insurance_registration", id=self.next_id("h"))
        elif kind == _FUNDS:
            event.update(type="public_funds_account_registration", id=self.next_id("f"))
        else:
            here = people.residence[person]
            unit = here
            while unit == here:
                pp = self.pop.units[here].prefecture_code
                unit = (self.pop.draw_in_prefecture(rng, pp) if rng.random() < 0.6
                        else self.pop.draw(rng))
            people.residence[person] = unit
            event.update(type="residence_change", source="juki-net", id=self.next_id("m"),
                         residence=self.pop.units[unit].code)
        self.emit(event, seconds)

    def slot(self, seconds: int) -> None:
        rng = self.rng
        activities = self.activities
        if (activities is not None and self.participants
                and self.arng.random() < activities.share and self._participation(seconds)):
            return
        if rng.random() < REFUND_RATE / (1 + REFUND_RATE) and self._refund(seconds):
            return
        pool = self.pool1 if seconds // DAY < WINDOW[0] else self.pool2
        if pool and rng.random() >= 0.02:
            person = pool[int(rng.random() * len(pool))]
        else:
            person = int(rng.random() * len(self.people))
        provider = self.people.provider[person]
        if rng.random() < 0.03:
            provider = int(rng.random() * len(self.bases))
        basis = self.bases[provider]
        charge = rng.random() < (0.85 if basis == "charge" else 0.05)
        pid = self.pop.provider_ids[provider]
        event: Event = {"type": "charge" if charge else "purchase", "source": pid,
                        "id": self.next_id("c" if charge else "p"),
                        "person": self.people.mykey(person), "at": _stamp(seconds, self.days),
                        "provider": pid}
        if charge:
            amount = (rng.choice(_CHARGES) if rng.random() >= 0.05
                      else rng.randint(100, 20000))
        else:
            amount = max(10, min(300_000, int(math.exp(rng.gauss(7.2, 1.1)))))
        event["amount"] = amount
        if not charge or rng.random() < 0.5:
            unit = self._store_unit(person)
            code = self.pop.units[unit].code
            event["store"] = f"ST{code}-{int(rng.random() * self.stores[unit]):04d}"
            event["store_municipality"] = code
        entry = [pid, event["id"], event["person"], amount]
        if len(self.ring) < 8192:
            self.ring.append(entry)
        else:
            self.ring[self.ring_at] = entry
            self.ring_at = (self.ring_at + 1) % 8192
        self.emit(event, seconds)

    def _participation(self, seconds: int) -> bool:
        activities, rng = self.activities, self.arng
        assert activities is not None
        person = self.participants[int(rng.random() * len(self.participants))]
        if self.people.applied[person] > seconds:
            return False
        event: Event = {"type": "participation", "source": "municipality",
                        "id": self.next_id("k"), "person": self.people.mykey(person),
                        "at": _stamp(seconds, self.days),
                        "municipality": self.pop.units[self.people.residence[person]].code,
                        "activity": rng.choice(activities.names)}
        points = rng.choice(activities.health_points)
        if points:
            event["health_points"] = points
        self.emit(event, seconds)
        return True

    @staticmethod
    def seconds_of(at: dt.datetime) -> int:
        """``at`` as seconds since :data:`pointengine.synth.population.EPOCH`."""
        return int((at - EPOCH).total_seconds())

    def draw(self, seconds: int, program: str) -> None:
        """Write the lottery draw of ``program`` at ``seconds``."""
        self.emit({"type": "lottery_draw", "source": "municipality",
                   "id": self.next_id(f"draw-{program}-"), "person": OFFICIAL,
                   "at": _stamp(seconds, self.days), "program": program}, seconds)

    def _store_unit(self, person: int) -> int:
        rng = self.rng
        here = self.people.residence[person]
        x = rng.random()
        if x < 0.80:
            return here
        if x < 0.92:
            return self.pop.draw_in_prefecture(rng, self.pop.units[here].prefecture_code)
        return self.pop.draw(rng)

    def _refund(self, seconds: int) -> bool:
        rng = self.rng
        for _ in range(3):
            if not self.ring:
                return False
            entry = self.ring[rng.randrange(len(self.ring))]
            left = entry[3]
            if left <= 0:
                continue
            amount = left if left == 1 or rng.random() < 0.7 else rng.randint(1, left - 1)
            entry[3] = left - amount
            self.emit({"type": "refund", "source": entry[0], "id": self.next_id("r"),
                       "person": entry[2], "at": _stamp(seconds, self.days),
                       "provider": entry[0], "transaction": entry[1], "amount": amount},
                      seconds)
            return True
        return False


def concentrate(pop: Population, people: Persons, focus: Sequence[str], share: float,
                seed: int) -> int:
    """Move about ``share`` of the persons to the ``focus`` places; return how many moved.

    A moved person's residence is drawn among the focus municipalities by population and the
    provider is drawn again from that place's mix (so local currencies appear); everything else
    is kept. The draws use their own random stream (``{seed}:focus``), so the other streams do
    not change. Their stores follow, as 80% of purchases are made where a person lives. Raises
    ``ValueError`` for a share outside 0..1 or when no focus code names a municipality.
    """
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"focus_share must be within 0..1, got {share}")
    units = sorted({i for code in focus for i in _units_of(pop, code)})
    if not units:
        raise ValueError(f"no municipality of the population is in {list(focus)}")
    cum = list(itertools.accumulate(max(pop.units[i].population, 1) for i in units))
    rng = random.Random(f"{seed}:focus")
    moved = 0
    for person in range(len(people)):
        if rng.random() >= share:
            continue
        unit = units[bisect.bisect_right(cum, rng.random() * cum[-1])]
        people.residence[person] = unit
        mix = pop.provider_mix(unit)
        people.provider[person] = bisect.bisect_right(mix, rng.random() * mix[-1])
        moved += 1
    return moved


def _units_of(pop: Population, code: str) -> list[int]:
    """Unit indexes of a municipality's code, or of every municipality of a prefecture's code."""
    if code in pop.index:
        return [pop.index[code]]
    if len(code) == 6 and code[2:5] == "000":
        return list(pop.pref_units.get(code[:2], ()))
    return []


def generate(out: Path, *, persons: int, events: int, seed: int, data_dir: Path | None = None,
             adversarial: set[str] | frozenset[str] = frozenset(),
             progress: Progress | None = None, names_out: Path | None = None,
             focus: Sequence[str] = (), focus_share: float = 0.25,
             activities: Activities | None = None,
             residents_of: Sequence[str] = ()) -> GenerateReport:
    """Write ``events`` canonical events for ``persons`` persons to ``out`` (JSON lines).

    Same arguments, same bytes. ``data_dir`` holds ``prefectures.csv`` and
    ``municipalities.csv`` (default ``pointengine/synth/data``). ``progress(done, events)`` is
    called after each simulated day once 65,536 more events are done, and at the end.
    ``names_out``, when given, receives a CSV of faker ``ja_JP`` names per MyKey ID (slow: about
    30 µs a person).
    ``focus``, local government codes (a prefecture's code means all its municipalities),
    moves about ``focus_share`` of the persons there (see :func:`concentrate`); without it the
    output is unchanged. ``activities`` adds participations and lottery draws (see
    :class:`Activities`); without it the output is unchanged. ``residents_of``, local
    government codes (a prefecture's code means all its municipalities), draws every person's
    residence among those places, by population and with their own card and application rates
    (a sample of their residents, for a forecast scaled to their real size); without it the
    output is unchanged. Raises ``ValueError`` when no code of ``residents_of`` names a
    municipality, and when the persons' own events
    (applications, registrations, moves) alone exceed ``events``, and
    :class:`~pointengine.errors.OutputError` when ``out`` cannot be written: ``out`` is written
    whole or not at all (``out.partial`` is renamed over it at the end), so a file that exists
    is a whole stream.
    """
    started = time.perf_counter()
    if not 0 <= persons < 1 << 29:
        raise ValueError("persons must be between 0 and 2**29")
    pop = load_population(data_dir)
    homes = sorted({i for code in residents_of for i in _units_of(pop, code)})
    if residents_of and not homes:
        raise ValueError(f"no municipality of the population is in {list(residents_of)}")
    people = build_persons(pop, persons, seed, homes)
    if focus:
        concentrate(pop, people, focus, focus_share, seed)
    if names_out is not None:
        write_person_names(names_out, people, pop)
    fixed = _fixed_events(people)
    budget = events - len(fixed)
    if budget < 0:
        raise ValueError(f"{persons} persons have {len(fixed)} events of their own "
                         f"(applications, registrations, moves): ask for at least that many events "
                         f"or fewer persons")
    report = GenerateReport(out, seed, persons, people.appliers(), events)
    first = min(PHASE1_FIRST, (fixed[0] >> 32) // DAY if fixed else PHASE1_FIRST)
    last = max(LAST_DAY, (fixed[-1] >> 32) // DAY if fixed else LAST_DAY)
    slots = _slots_per_day(people, first, last, budget)
    make_folder(out.parent)
    with whole_file(out) as handle:
        writer = _Writer(handle)
        adversary = _Adversary(frozenset(adversarial), seed, writer, report)
        sim = _Simulation(pop, people, seed, adversary.emit, report, activities)
        draws = sorted((sim.seconds_of(at), program)
                       for program, at in (activities.draws if activities else ()))
        rng = sim.rng
        nxt = 0
        upcoming = fixed[0] >> 32 if fixed else _NEVER
        done = 0
        tell = 65_536
        for day in range(first, last + 1):
            n = slots[day - first]
            rnd = rng.random
            times = sorted(bisect.bisect_right(_HOURS, rnd() * _HOURS[-1]) * 3600
                           + int(rnd() * 3600) for _ in range(n))
            start = day * DAY
            for t in itertools.chain(times, (DAY,)):
                moment = start + t
                while upcoming < moment:
                    sim.person_event(fixed[nxt])
                    nxt += 1
                    done += 1
                    upcoming = fixed[nxt] >> 32 if nxt < len(fixed) else _NEVER
                while draws and draws[0][0] < moment:
                    sim.draw(*draws.pop(0))
                if t < DAY:
                    sim.slot(moment)
                    done += 1
            if progress is not None and done >= tell:
                progress(done, events)
                tell = done + 65_536
        for seconds, program in draws:  # after the last day
            sim.draw(seconds, program)
        adversary.close()
        writer.flush()
    report.lines, report.malformed_lines = writer.lines, writer.bad
    report.sha256 = writer.digest.hexdigest()
    report.seconds = time.perf_counter() - started
    if progress is not None:
        progress(events, events)
    return report

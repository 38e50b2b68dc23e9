"""A synthetic population for load tests: residents, their cards, Mynapoint choices and names.

Residence is drawn from the real local government codes, weighted by the seeds' populations
(``pointengine/synth/data``, see its ``SOURCE.md``):

- a municipality listed in ``municipalities.csv`` (designated cities, Tokyo's special wards, core
  cities) gets its listed population; a designated city is one unit under the city's own code,
  its wards (``designated_city_ward``) are never a residence;
- the rest of each prefecture (``population`` minus the listed cities) is spread over its other
  municipalities by kind, as SOURCE.md §5 proposes: a ``city`` (or unlisted ``ward``) weighs
  80,076, a ``town`` or ``village`` 11,820, rounded by largest remainder so that each prefecture
  sums to its seed population exactly;
- card holders follow the listed city's ``card_application_rate``, elsewhere the prefecture's
  remainder rate (``remainder_card_application_rate``, or the same formula when the column is
  absent).

Everything below marked *synthetic* is our assumption, not seed data: the age pyramid, card and
application dates, the provider mix, and P(Mynapoint application | card) = 0.4764 (SOURCE.md §1,
the national April 2022 ratio) wherever ``mynapoint_application_rate`` is empty. A non-empty
``mynapoint_application_rate`` is read as a share of the population, like the card rate.

Persons are stored in flat arrays (about 40 bytes each), so millions fit; their MyKey IDs are
computed from (seed, index) on demand. Names come from faker ``ja_JP`` for a side file only:
events never carry a name or a My Number.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import hashlib
import itertools
import random
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pointengine.catalog.shipped import SHIPPED_RULES

DATA_DIR = Path(__file__).resolve().parent / "data"
CODES_PATH = Path(__file__).resolve().parents[1] / "data" / "municipalities.csv"
PROVIDERS_PATH = SHIPPED_RULES / "providers.yaml"

JST = dt.timezone(dt.timedelta(hours=9))
#: Time origin of every ``int`` timestamp in this package: 2020-01-01T00:00:00+09:00.
EPOCH = dt.datetime(2020, 1, 1, tzinfo=JST)
DAY = 86_400
EPOCH_ORDINAL = EPOCH.date().toordinal()

#: SOURCE.md §5: weights per kind for spreading a prefecture's remainder population.
KIND_WEIGHT = {"city": 80_076, "ward": 80_076, "town": 11_820, "village": 11_820}
#: Synthetic: P(Mynapoint application | card applicant) when the data gives no rate.
DEFAULT_APPLY_GIVEN_CARD = 0.4764
#: Synthetic: share of phase-2 appliers who took part in phase 1.
PHASE1_SHARE = 0.25
HEALTH_SHARE = 0.50
PUBLIC_FUNDS_SHARE = 0.40
MOVER_SHARE = 0.02
NONE = -1

#: Synthetic age pyramid (Japan, 2022, rough shares per 5-year band 0-4 ... 90-95).
AGE_BANDS = (3.9, 4.2, 4.4, 4.6, 5.0, 5.1, 5.3, 5.9, 6.4, 7.7, 7.4, 6.4, 6.0, 6.4, 7.7, 5.6,
             4.7, 3.2, 1.9)
_AGE_CUM = list(itertools.accumulate(AGE_BANDS))

#: Synthetic provider mix (weights per provider id); regional and local ones get boosts below.
PROVIDER_WEIGHT = {
    "paypay": 30.0, "d-barai": 14.0, "rakuten-pay": 12.0, "au-pay": 10.0, "waon": 9.0,
    "rakuten-edy": 7.0, "j-coin-pay": 3.0, "majica": 2.0, "cogca": 0.3, "hop-money": 0.2,
    "yumeca": 0.2,
}
#: Regional providers: prefecture code → extra weight.
REGIONAL = {
    "hop-money": {"25": 8.0},
    "cogca": {"25": 6.0, "36": 6.0},
    "yumeca": {"33": 4.0, "34": 8.0, "35": 4.0, "36": 6.0},
}
#: Local currencies: only residents of their town choose them (about a fifth of appliers there).
LOCAL = {"aqua-coin": "122068", "sunset-coin": "223069", "toron": "454052"}
LOCAL_WEIGHT = 25.0

#: Synthetic card-application dates: (first day, last day, share of card holders).
CARD_PERIODS = (
    (dt.date(2016, 1, 4), dt.date(2019, 12, 31), 0.20),
    (dt.date(2020, 1, 1), dt.date(2021, 4, 30), 0.25),
    (dt.date(2021, 5, 1), dt.date(2021, 12, 31), 0.10),
    (dt.date(2022, 1, 1), dt.date(2022, 9, 30), 0.25),
    (dt.date(2022, 10, 1), dt.date(2022, 12, 31), 0.17),
    (dt.date(2023, 1, 1), dt.date(2023, 2, 28), 0.03),
)
#: Synthetic phase-2 applications per month (万件 for 2022-01..04 from 001:812; the rest ours).
APPLY_MONTHS = (
    ((2022, 1), 73), ((2022, 2), 56), ((2022, 3), 62), ((2022, 4), 47), ((2022, 5), 45),
    ((2022, 6), 60), ((2022, 7), 300), ((2022, 8), 250), ((2022, 9), 250), ((2022, 10), 300),
    ((2022, 11), 300), ((2022, 12), 400), ((2023, 1), 350), ((2023, 2), 450), ((2023, 3), 8),
)


def day_index(day: dt.date) -> int:
    """Days from :data:`EPOCH` to ``day``."""
    return (day - EPOCH.date()).days


def to_date(days: int) -> dt.date:
    """Inverse of :func:`day_index`."""
    return EPOCH.date() + dt.timedelta(days=days)


@dataclass(frozen=True, slots=True)
class Unit:
    """A municipality that persons live in."""

    code: str
    prefecture_code: str
    kind: str
    population: int
    card_rate: float
    apply_given_card: float
    listed: bool


def _rate(text: str | None) -> float | None:
    return float(text) if text not in (None, "") else None


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _largest_remainder(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights``, exactly, by largest remainder."""
    whole = sum(weights)
    if total <= 0 or whole <= 0:
        return [0] * len(weights)
    shares = [total * w // whole for w in weights]
    rests = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in rests[: total - sum(shares)]:
        shares[i] += 1
    return shares


def _given_card(myna: float | None, card: float) -> float:
    if myna is None or card <= 0:
        return DEFAULT_APPLY_GIVEN_CARD
    return min(1.0, myna / card)


def load_units(data_dir: Path | None = None, codes_path: Path | None = None) -> list[Unit]:
    """Every municipality with a synthetic population, per the rules in the module docstring."""
    data_dir = data_dir or DATA_DIR
    codes = _read_csv(codes_path or CODES_PATH)
    prefectures = {r["prefecture_code"].zfill(2): r
                   for r in _read_csv(data_dir / "prefectures.csv")}
    listed = {r["code6"]: r for r in _read_csv(data_dir / "municipalities.csv")}
    by_pref: dict[str, list[dict[str, str]]] = {}
    for row in codes:
        if row["kind"] in KIND_WEIGHT:
            by_pref.setdefault(row["prefecture_code"], []).append(row)
    units: list[Unit] = []
    for pp, rows in sorted(by_pref.items()):
        pref = prefectures.get(pp)
        if pref is None:
            continue
        p_pop = int(pref["population"])
        p_card = _rate(pref.get("card_application_rate")) or 0.0
        p_myna = _rate(pref.get("mynapoint_application_rate"))
        mine = [r for r in rows if r["code6"] in listed]
        rest = [r for r in rows if r["code6"] not in listed]
        listed_pop = 0
        listed_cards = 0.0
        for row in mine:
            src = listed[row["code6"]]
            pop = int(src["population"])
            card = _rate(src.get("card_application_rate"))
            card = p_card if card is None else card
            myna = _rate(src.get("mynapoint_application_rate"))
            listed_pop += pop
            listed_cards += pop * card
            units.append(Unit(row["code6"], pp, row["kind"], pop, card,
                              _given_card(myna if myna is not None else p_myna, card), True))
        remainder = max(0, p_pop - listed_pop)
        rest_card = _rate(pref.get("remainder_card_application_rate"))
        if rest_card is None:
            rest_card = (p_pop * p_card - listed_cards) / remainder if remainder else p_card
        rest_card = min(1.0, max(0.0, rest_card))
        pops = _largest_remainder(remainder, [KIND_WEIGHT[r["kind"]] for r in rest])
        for row, pop in zip(rest, pops, strict=True):
            units.append(Unit(row["code6"], pp, row["kind"], pop, rest_card,
                              _given_card(p_myna, rest_card), False))
    units.sort(key=lambda u: u.code)
    return units


class Population:
    """The units with cumulative weights for drawing a residence or a store's municipality."""

    def __init__(self, units: list[Unit], providers: dict[str, str]) -> None:
        self.units = units
        self.index = {u.code: i for i, u in enumerate(units)}
        self.cum = list(itertools.accumulate(u.population for u in units))
        self.pref_units: dict[str, list[int]] = {}
        for i, u in enumerate(units):
            self.pref_units.setdefault(u.prefecture_code, []).append(i)
        self.pref_cum = {
            pp: list(itertools.accumulate(units[i].population for i in idx))
            for pp, idx in self.pref_units.items()
        }
        #: provider id → basis ("charge" or "purchase"), in the YAML's order.
        self.providers = providers
        self.provider_ids = list(providers)
        self._mix: dict[tuple[str, str], list[float]] = {}

    def draw(self, rng: random.Random) -> int:
        """A unit index, weighted by population."""
        return bisect.bisect_right(self.cum, rng.random() * self.cum[-1])

    def draw_in_prefecture(self, rng: random.Random, pp: str) -> int:
        """A unit index of prefecture ``pp``, weighted by population."""
        cum = self.pref_cum[pp]
        return self.pref_units[pp][bisect.bisect_right(cum, rng.random() * cum[-1])]

    def provider_mix(self, unit: int) -> list[float]:
        """Cumulative weights over :attr:`provider_ids` for an applier living in ``unit``."""
        u = self.units[unit]
        key = (u.prefecture_code, u.code if u.code in LOCAL.values() else "")
        mix = self._mix.get(key)
        if mix is None:
            weights = []
            for pid in self.provider_ids:
                w = (PROVIDER_WEIGHT.get(pid, 0.0)
                     + REGIONAL.get(pid, {}).get(u.prefecture_code, 0.0))
                if LOCAL.get(pid) == u.code:
                    w += LOCAL_WEIGHT
                weights.append(w)
            mix = list(itertools.accumulate(weights))
            self._mix[key] = mix
        return mix


def load_population(data_dir: Path | None = None, providers_path: Path | None = None,
                    codes_path: Path | None = None) -> Population:
    """Units from ``data_dir`` and providers from ``rules/providers.yaml``."""
    raw = yaml.safe_load((providers_path or PROVIDERS_PATH).read_text(encoding="utf-8"))
    providers = {str(p["id"]): str(p["basis"]) for p in raw["providers"]}
    return Population(load_units(data_dir, codes_path), providers)


_M50 = (1 << 50) - 1
_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # RFC 4648 base32
_PAIRS = [a + b for a in _B32 for b in _B32]


def _mix_keys(seed: int) -> tuple[int, int, int]:
    digest = hashlib.blake2b(f"mykey:{seed}".encode(), digest_size=24).digest()
    a, b, c = (int.from_bytes(digest[i : i + 8], "big") for i in (0, 8, 16))
    return a | 1, b | 1, c & _M50


def mykey_id(seed: int, index: int, keys: tuple[int, int, int] | None = None) -> str:
    """``MK`` + 10 base32 characters: a bijection of ``index`` (below 2**50) for this seed.

    Odd multipliers and xor-shifts are invertible modulo 2**50, so two indexes never collide.
    """
    a, b, c = keys or _mix_keys(seed)
    x = (index ^ c) & _M50
    x = (x * a) & _M50
    x ^= x >> 23
    x = (x * b) & _M50
    x ^= x >> 29
    pairs = _PAIRS
    return (f"MK{pairs[x >> 40]}{pairs[(x >> 30) & 1023]}{pairs[(x >> 20) & 1023]}"
            f"{pairs[(x >> 10) & 1023]}{pairs[x & 1023]}")


def _draw_day(rng: random.Random, first: dt.date, last: dt.date) -> int:
    return day_index(first) + rng.randrange((last - first).days + 1)


def _card_day(rng: random.Random, early_only: bool = False) -> int:
    periods = CARD_PERIODS[:2] if early_only else CARD_PERIODS
    total = sum(p[2] for p in periods)
    x = rng.random() * total
    for first, last, share in periods:
        if x < share:
            return _draw_day(rng, first, last)
        x -= share
    first, last, _ = periods[-1]
    return _draw_day(rng, first, last)


LAST_CARD_DAY = day_index(CARD_PERIODS[-1][1])
_APPLY_CUM = list(itertools.accumulate(w for _, w in APPLY_MONTHS))


def _month_second(rng: random.Random, cum: Sequence[float],
                  months: Sequence[tuple[int, int]]) -> int:
    i = bisect.bisect_right(cum, rng.random() * cum[-1])
    year, month = months[i]
    first = dt.date(year, month, 1)
    nxt = dt.date(year + month // 12, month % 12 + 1, 1)
    return day_index(first) * DAY + rng.randrange((nxt - first).days * DAY)


def _between(rng: random.Random, first: dt.date, last: dt.date) -> int:
    return _draw_day(rng, first, last) * DAY + rng.randrange(DAY)


def birth_day(rng: random.Random) -> int:
    """A synthetic birth date (as :func:`day_index`): ages 0-95 on 2022-01-01."""
    band = bisect.bisect_right(_AGE_CUM, rng.random() * _AGE_CUM[-1])
    age_days = int((band * 5 + rng.random() * 5) * 365.25)
    return day_index(dt.date(2022, 1, 1)) - age_days - 1


@dataclass(slots=True)
class Persons:
    """Flat arrays, one slot per person; times are seconds and days since :data:`EPOCH`."""

    seed: int
    residence: array[int] = field(default_factory=lambda: array("H"))
    birth: array[int] = field(default_factory=lambda: array("i"))
    card: array[int] = field(default_factory=lambda: array("i"))
    provider: array[int] = field(default_factory=lambda: array("B"))
    applied: array[int] = field(default_factory=lambda: array("q"))
    phase1: array[int] = field(default_factory=lambda: array("q"))
    health: array[int] = field(default_factory=lambda: array("q"))
    funds: array[int] = field(default_factory=lambda: array("q"))
    moved: array[int] = field(default_factory=lambda: array("q"))
    _keys: tuple[int, int, int] = (1, 1, 0)

    def __len__(self) -> int:
        return len(self.residence)

    def mykey(self, index: int) -> str:
        """The person's MyKey ID."""
        return mykey_id(self.seed, index, self._keys)

    def appliers(self) -> int:
        """How many persons apply for phase 2."""
        return sum(1 for t in self.applied if t != NONE)


def build_persons(pop: Population, n: int, seed: int,
                  homes: Sequence[int] = ()) -> Persons:
    """``n`` persons drawn with ``random.Random(f"{seed}:persons")`` (deterministic).

    A person's residence is drawn among every unit by population, or among ``homes`` (unit
    indexes) only when given: a sample of those places' residents, whose cards and applications
    follow their own places' rates (not the rates of wherever they would have been drawn).
    """
    rng = random.Random(f"{seed}:persons")
    home_cum = list(itertools.accumulate(max(pop.units[i].population, 1) for i in homes))
    people = Persons(seed, _keys=_mix_keys(seed))
    hi_start = dt.date(2021, 10, 20)  # health-insurance use of the card started (synthetic)
    pf_start = dt.date(2022, 3, 28)  # public-funds account registration opened (synthetic)
    switch = dt.date(2022, 6, 30)
    end = dt.date(2023, 2, 28)
    months = [m for m, _ in APPLY_MONTHS]
    for _ in range(n):
        # one draw either way, so the persons' other draws keep their order
        unit = (homes[bisect.bisect_right(home_cum, rng.random() * home_cum[-1])] if homes
                else pop.draw(rng))
        u = pop.units[unit]
        people.residence.append(unit)
        people.birth.append(birth_day(rng))
        mix = pop.provider_mix(unit)
        people.provider.append(bisect.bisect_right(mix, rng.random() * mix[-1]))
        has_card = rng.random() < u.card_rate
        applies = has_card and rng.random() < u.apply_given_card
        in_phase1 = applies and rng.random() < PHASE1_SHARE
        card = _card_day(rng, early_only=in_phase1) if has_card else NONE
        born = people.birth[-1]
        if has_card and card < born + 30:  # nobody applies for a card before birth
            card = born + 30 + rng.randrange(365)
            in_phase1 = in_phase1 and card <= CARD_PERIODS[1][1].toordinal() - EPOCH_ORDINAL
            if card > LAST_CARD_DAY:
                card, applies, in_phase1 = NONE, False, False
        people.card.append(card)
        ready = (card + rng.randint(14, 60)) * DAY + rng.randrange(DAY)  # card in hand
        applied = phase1 = health = funds = moved = NONE
        if applies:
            applied = max(_month_second(rng, _APPLY_CUM, months), ready)
            if in_phase1:
                start = max(ready, day_index(dt.date(2020, 9, 1)) * DAY)
                stop = day_index(dt.date(2022, 1, 1)) * DAY
                phase1 = start + rng.randrange(max(1, stop - start))
            if rng.random() < HEALTH_SHARE:
                early = rng.random() < 0.3
                health = max(ready, _between(rng, hi_start, switch - dt.timedelta(days=1))
                             if early else _month_second(rng, _APPLY_CUM[6:14], months[6:14]))
                if rng.random() < 0.01:
                    health = _between(rng, end + dt.timedelta(days=1), dt.date(2023, 3, 31))
            if rng.random() < PUBLIC_FUNDS_SHARE:
                early = rng.random() < 0.25
                funds = max(ready, _between(rng, pf_start, switch - dt.timedelta(days=1))
                            if early else _month_second(rng, _APPLY_CUM[6:14], months[6:14]))
            if rng.random() < MOVER_SHARE:
                moved = applied + rng.randrange(max(1, (day_index(end) + 1) * DAY - applied))
        people.applied.append(applied)
        people.phase1.append(phase1)
        people.health.append(health)
        people.funds.append(funds)
        people.moved.append(moved)
    return people


def children_days(rng: random.Random, birth: int, before: int) -> tuple[int, ...]:
    """Synthetic children (as :func:`day_index`) for a parent born on ``birth``, born before
    ``before``: about 40% of persons aged 22-55 have one to three."""
    age_days = before - birth
    if not 22 * 365 <= age_days <= 55 * 365 or rng.random() >= 0.4:
        return ()
    first = birth + 22 * 365
    span = min(before, birth + 45 * 365) - first
    if span <= 0:
        return ()
    return tuple(sorted(first + rng.randrange(span) for _ in range(rng.choice((1, 1, 2, 2, 3)))))


def names(seed: int, count: int) -> Iterator[tuple[str, str]]:
    """(name, kana) pairs from faker ``ja_JP``, seeded; for a side file or a demo only."""
    from faker import Faker

    fake = Faker("ja_JP")
    fake.seed_instance(seed)
    for _ in range(count):
        yield fake.name(), fake.kana_name()


def write_person_names(path: Path, people: Persons, pop: Population) -> None:
    """A CSV side file: MyKey ID, faker name and kana, birth date, first residence.

    It links names to MyKey IDs for demos; it is never an input of the engine.
    """
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["mykey_id", "name", "kana", "birth_date", "residence"])
        for i, (name, kana) in enumerate(names(people.seed, len(people))):
            out.writerow([people.mykey(i), name, kana, to_date(people.birth[i]).isoformat(),
                          pop.units[people.residence[i]].code])

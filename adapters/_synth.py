"""What synthetic traffic contains, before a provider module writes it in its native format.

:func:`plan` draws, from one ``random.Random``, a time-ordered list of :class:`Planned`
transactions: purchases, charges and refunds of earlier ones. Amounts are realistic: most
purchases a few hundred to a few thousand yen with an occasional large one, charges in round
amounts, about 1.5% refunds. Each provider module decides the mix and renders ids and fields.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from pointengine.model.municipalities import registry
from pointengine.model.privacy import carries_my_number

Kind = Literal["purchase", "charge", "refund"]
CHARGE_AMOUNTS = (1_000, 3_000, 5_000, 10_000, 20_000)
_CHARGE_WEIGHTS = (25, 25, 20, 20, 10)
REFUND_RATE = 0.015
_TRADES = ("商店", "食堂", "薬局", "書店", "酒店", "電器", "青果", "精肉店", "鮮魚店", "ベーカリー")


@dataclass(frozen=True, slots=True)
class Planned:
    """One synthetic transaction; ``original`` is the plan index a refund takes back."""

    kind: Kind
    person: str
    at: dt.datetime
    amount: int
    store: tuple[str, str] | None = None
    original: int | None = None


def purchase_amount(rng: random.Random) -> int:
    """A purchase in yen: log-normal around 1,200, 3% large ones of 10,000 to 100,000."""
    if rng.random() < 0.03:
        return rng.randrange(10_000, 100_001, 10)
    return max(100, min(9_999, round(math.exp(rng.gauss(math.log(1_200), 0.8)))))


def charge_amount(rng: random.Random) -> int:
    """A charge in yen: 1,000, 3,000, 5,000, 10,000 or 20,000."""
    return rng.choices(CHARGE_AMOUNTS, weights=_CHARGE_WEIGHTS)[0]


def instants(
    rng: random.Random, n: int, start: dt.datetime, end: dt.datetime, resolution: dt.timedelta
) -> list[dt.datetime]:
    """``n`` sorted instants in ``[start, end)`` (UTC), truncated to ``resolution``."""
    span = max(1, (end - start) // resolution)
    return sorted(
        (start + rng.randrange(span) * resolution).astimezone(dt.UTC) for _ in range(n)
    )


def plan(
    rng: random.Random,
    persons: Sequence[str],
    stores: Sequence[tuple[str, str]],
    n: int,
    start: dt.datetime,
    end: dt.datetime,
    *,
    charge_share: float,
    storeless_charge_share: float = 0.0,
    refund: Callable[[random.Random, int], int] = lambda _rng, amount: amount,
    resolution: dt.timedelta = dt.timedelta(seconds=1),
) -> list[Planned]:
    """``n`` transactions in time order; ``refund`` picks a refund's amount from the original's.

    A refund takes back an earlier, not yet refunded transaction of the same person.
    """
    out: list[Planned] = []
    open_: list[int] = []
    for at in instants(rng, n, start, end, resolution):
        if open_ and rng.random() < REFUND_RATE:
            index = open_.pop(rng.randrange(len(open_)))
            original = out[index]
            amount = refund(rng, original.amount)
            out.append(Planned("refund", original.person, at, amount, original.store, index))
            continue
        person = rng.choice(persons)
        if rng.random() < charge_share:
            store = None if rng.random() < storeless_charge_share else rng.choice(stores)
            out.append(Planned("charge", person, at, charge_amount(rng), store))
        else:
            out.append(Planned("purchase", person, at, purchase_amount(rng), rng.choice(stores)))
        open_.append(len(out) - 1)
    return out


def partial(rng: random.Random, amount: int) -> int:
    """A partial refund: 10% to 90% of ``amount``, at least 1 yen and less than ``amount``."""
    if amount < 2:
        return amount
    return max(1, min(amount - 1, round(amount * rng.uniform(0.1, 0.9))))


def unique_id(rng: random.Random, make: Callable[[random.Random], str], seen: set[str]) -> str:
    """A fresh id from ``make``: never one in ``seen``, nor one the engine takes for a My Number.

    The engine treats any standalone 12-digit run with a valid check digit as a My Number
    wherever it appears, so generated ids never hold such a run.
    """
    while True:
        value = make(rng)
        if value not in seen and not carries_my_number(value.encode()):
            seen.add(value)
            return value


def store_names(seed: int, stores: Sequence[tuple[str, str]]) -> dict[str, str]:
    """A Japanese store name for each store id, with its branch (支店) named after its place.

    Faker ``ja_JP`` draws the name (a company, or a family name and a trade); the branch is the
    municipality of the store's code. The same seed gives the same names.
    """
    from faker import Faker  # imported here: converting traffic never needs it

    fake = Faker("ja_JP")
    fake.seed_instance(seed)
    places = registry()
    names: dict[str, str] = {}
    for store, municipality in stores:
        if store in names:
            continue
        if fake.pybool():
            name = fake.company()
        else:
            name = f"{fake.last_name()}{fake.random_element(_TRADES)}"
        place = places.get(municipality).name if municipality in places else fake.city()
        names[store] = f"{name} {place}店"
    return names

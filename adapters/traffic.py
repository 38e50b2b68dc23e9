"""Synthetic native traffic for every mock provider, deterministic for a seed.

:func:`generate` writes what a provider would send: a list of webhook bodies (QuickPay,
TransitCard, CarrierPay) or one daily CSV file (TownCoin). Each provider module's own
``generate`` has the same parameters and a precise return type.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from pointengine.adapters import carrierpay, quickpay, towncoin, transitcard

TrafficGenerator = Callable[
    [Sequence[str], Sequence[tuple[str, str]], int, int, dt.datetime, dt.datetime],
    bytes | list[bytes],
]

GENERATORS: dict[str, TrafficGenerator] = {
    quickpay.PROVIDER_ID: quickpay.generate,
    transitcard.PROVIDER_ID: transitcard.generate,
    carrierpay.PROVIDER_ID: carrierpay.generate,
    towncoin.PROVIDER_ID: towncoin.generate,
}


def generate(
    provider_id: str,
    persons: Sequence[str],
    stores: Sequence[tuple[str, str]],
    n: int,
    seed: int,
    start: dt.datetime,
    end: dt.datetime,
) -> bytes | list[bytes]:
    """``n`` native records of ``provider_id`` between ``start`` and ``end``.

    ``persons`` are MyKey IDs; ``stores`` are (store id, local government code) pairs. Amounts
    are realistic (purchases mostly a few hundred to a few thousand yen, charges of 1,000 to
    20,000), about 1.5% of records refund earlier ones. The same arguments give the same bytes.
    Raises ValueError on an empty ``persons`` or ``stores``, a negative ``n``, naive datetimes
    or ``start`` not before ``end``; KeyError for a provider without a generator.
    """
    if provider_id not in GENERATORS:
        known = ", ".join(sorted(GENERATORS))
        raise KeyError(f"no traffic generator for provider {provider_id!r} (known: {known})")
    if not persons or not stores:
        raise ValueError("persons and stores must not be empty")
    if n < 0:
        raise ValueError("n must not be negative")
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be aware datetimes")
    if start >= end:
        raise ValueError("start must be before end")
    return GENERATORS[provider_id](persons, stores, n, seed, start, end)

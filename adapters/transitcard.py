"""TransitCard: a mock prepaid e-money card (basis: charge) whose terminals report charges.

Native format, ``application/json``, UTF-8, snake_case. Terminals upload in deliveries, so one
request body holds one or more records::

    {"delivery_id": "DLV-4F2A9C01B7E3D5A8", "sent_at_ms": 1646105700000,
     "records": [
       {"record_id": "TC-7D1E0A9B3C5F2E48", "record_type": "charge",
        "holder_mykey_id": "MKA7Q2X9", "amount": "3000", "charged_at_ms": 1646105696000,
        "terminal_id": "S0001", "terminal_municipality_code": "131016",
        "original_record_id": null}
     ]}

``amount`` is a string of yen; ``charged_at_ms`` milliseconds since the epoch (UTC);
``record_type`` is ``charge`` (the only type reported). A positive amount is a canonical
:class:`~pointengine.model.events.Charge` at the terminal (``store`` = ``terminal_id``); a negative
amount is a refund of the charge named by ``original_record_id`` (a canonical
:class:`~pointengine.model.events.Refund` of the absolute amount). A zero amount, a negative one
without ``original_record_id`` or a positive one with it is malformed, and so is a record that gives
a field twice (``"amount"`` twice, say: which value is meant is unknowable); a delivery that gives
one of its own fields twice (``records``, say) is refused whole. Each record is converted on its
own: :meth:`~pointengine.adapters.base.RecordAdapter.to_events_lenient` keeps the good records of a
delivery.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator, Mapping, Sequence
from typing import ClassVar

import orjson

from pointengine.adapters import _fields as f
from pointengine.adapters import _synth
from pointengine.adapters.base import NativeAdapter, NativeRecord, json_records, refuse_my_number
from pointengine.errors import MalformedEvent

PROVIDER_ID = "transitcard"
_MS = dt.timedelta(milliseconds=1)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class TransitCardAdapter(NativeAdapter):
    """TransitCard deliveries to canonical charges and refunds."""

    provider_id = PROVIDER_ID
    content_type = "application/json"
    id_field = "record_id"
    native_fields: ClassVar[Mapping[str, str]] = {
        "id": "record_id",
        "person": "holder_mykey_id",
        "at": "charged_at_ms",
        "amount": "amount",
        "store": "terminal_id",
        "store_municipality": "terminal_municipality_code",
        "transaction": "original_record_id",
    }

    def records(self, payload: bytes) -> Iterator[NativeRecord]:
        """Each entry of the delivery's ``records`` array, numbered from 1."""
        what = f"{PROVIDER_ID} delivery"
        body, records = json_records(payload, what, "records")
        if records is None or not isinstance(body, dict):
            refuse_my_number(what, body)
            raise MalformedEvent(f"{what}: records: missing or not an array")
        refuse_my_number(what, {name: value for name, value in body.items() if name != "records"})
        for position, record in enumerate(records, start=1):
            if record.problem is not None:
                yield NativeRecord(position, problem=record.problem, rest=record.text)
            elif isinstance(record.value, dict):
                yield NativeRecord(position, record.value)
            else:
                yield NativeRecord(position, problem="the record is not a JSON object",
                                   rest=record.value)

    def canonical(self, fields: Mapping[str, object]) -> dict[str, object]:
        """One charge record (positive or negative) as a canonical event dict."""
        f.choice(fields, "record_type", ("charge",))
        amount = f.digits(fields, "amount", signed=True)
        original = f.optional_text(fields, "original_record_id")
        data: dict[str, object] = {
            "id": f.text(fields, "record_id"),
            "person": f.text(fields, "holder_mykey_id"),
            "at": f.epoch_ms(fields, "charged_at_ms"),
        }
        if amount == 0:
            raise f.FieldProblem("amount", "a charge of 0 yen")
        if amount < 0:
            if original is None:
                raise f.FieldProblem("original_record_id", "missing on a negative charge")
            return data | {"type": "refund", "amount": -amount, "transaction": original}
        if original is not None:
            raise f.FieldProblem("original_record_id", "set on a positive charge")
        return data | {
            "type": "charge",
            "amount": amount,
            "store": f.text(fields, "terminal_id"),
            "store_municipality": f.text(fields, "terminal_municipality_code"),
        }


def generate(
    persons: Sequence[str],
    stores: Sequence[tuple[str, str]],
    n: int,
    seed: int,
    start: dt.datetime,
    end: dt.datetime,
) -> list[bytes]:
    """``n`` TransitCard records in deliveries of 1 to 5, the same bytes for the same seed.

    Charges of round amounts at the terminals ``stores`` (terminal id, municipality code);
    about 1.5% are full refunds (negative charges) of earlier charges.
    """
    rng = random.Random(seed)
    planned = _synth.plan(
        rng, persons, stores, n, start, end, charge_share=1.0, resolution=_MS
    )
    seen: set[str] = set()
    ids = [_synth.unique_id(rng, _record_id, seen) for _ in planned]
    records = [_record(item, ids[i], ids) for i, item in enumerate(planned)]
    bodies = []
    i = 0
    while i < len(records):
        size = rng.randint(1, 5)
        batch = records[i : i + size]
        last = planned[min(i + size, len(planned)) - 1].at
        delivery = {
            "delivery_id": _synth.unique_id(rng, _delivery_id, seen),
            "sent_at_ms": (last - _EPOCH) // _MS + rng.randrange(500, 60_000),
            "records": batch,
        }
        bodies.append(orjson.dumps(delivery))
        i += size
    return bodies


def _record(item: _synth.Planned, record_id: str, ids: list[str]) -> dict[str, object]:
    terminal, municipality = item.store or ("", "")
    refund = item.kind == "refund"
    return {
        "record_id": record_id,
        "record_type": "charge",
        "holder_mykey_id": item.person,
        "amount": str(-item.amount if refund else item.amount),
        "charged_at_ms": (item.at - _EPOCH) // _MS,
        "terminal_id": terminal,
        "terminal_municipality_code": municipality,
        "original_record_id": ids[item.original] if item.original is not None else None,
    }


def _record_id(rng: random.Random) -> str:
    return f"TC-{rng.getrandbits(64):016X}"


def _delivery_id(rng: random.Random) -> str:
    return f"DLV-{rng.getrandbits(64):016X}"

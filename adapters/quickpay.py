"""QuickPay: a mock QR-code payment app (basis: purchase) that posts one JSON webhook per event.

Native format, ``application/json``, UTF-8, one object per request body, camelCase::

    {"eventType": "PAYMENT", "transactionId": "QP-9f1c0d3e5b7a4c2e8d6f0a1b2c3d4e5f",
     "userMyKeyId": "MKA7Q2X9", "amount": 1280, "currency": "JPY",
     "occurredAt": "2022-03-01T12:34:56+09:00", "storeCode": "S0001",
     "storeName": "株式会社山田 千代田区店", "storeMunicipalityCode": "131016"}

    {"eventType": "REFUND", "transactionId": "QP-...", "originalTransactionId": "QP-...",
     "userMyKeyId": "MKA7Q2X9", "amount": 500, "currency": "JPY",
     "occurredAt": "2022-03-02T09:00:00+09:00"}

``transactionId`` is ``QP-`` and a UUID4 in hex; ``amount`` a JSON integer of yen (a float or
string is refused); ``occurredAt`` an RFC 3339 timestamp, whose offset is required (QuickPay
sends +09:00; other ISO 8601 forms such as week dates are refused); ``currency`` may be left
out, and is ``JPY`` when present. A PAYMENT becomes a canonical
:class:`~pointengine.model.events.Purchase` (``storeCode`` and ``storeMunicipalityCode`` required,
``storeName`` informational); a REFUND, full or partial, a :class:`~pointengine.model.events.Refund`
whose ``transaction`` is ``originalTransactionId``. Unknown fields are ignored, but a body that
carries a My Number anywhere, in any field at any depth, is rejected, and so is a body that gives
a field twice in one object (``"amount"`` twice, say): which value is meant is unknowable.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import ClassVar

import orjson

from pointengine.adapters import _fields as f
from pointengine.adapters import _synth
from pointengine.adapters.base import NativeAdapter, NativeRecord, json_body, refuse_my_number
from pointengine.errors import MalformedEvent

PROVIDER_ID = "quickpay"


class QuickPayAdapter(NativeAdapter):
    """QuickPay webhook bodies to canonical purchases and refunds."""

    provider_id = PROVIDER_ID
    content_type = "application/json"
    record_noun = "webhook"
    id_field = "transactionId"
    native_fields: ClassVar[Mapping[str, str]] = {
        "id": "transactionId",
        "person": "userMyKeyId",
        "at": "occurredAt",
        "amount": "amount",
        "store": "storeCode",
        "store_municipality": "storeMunicipalityCode",
        "transaction": "originalTransactionId",
    }

    def records(self, payload: bytes) -> Iterator[NativeRecord]:
        """The body's one JSON object; a body that gives a key twice is refused whole."""
        body = json_body(payload, f"{PROVIDER_ID} webhook")
        if not isinstance(body, dict):
            refuse_my_number(f"{PROVIDER_ID} webhook", body)
            raise MalformedEvent(f"{PROVIDER_ID} webhook: the body is not a JSON object")
        yield NativeRecord(1, body)

    def canonical(self, fields: Mapping[str, object]) -> dict[str, object]:
        """One PAYMENT or REFUND object as a canonical event dict."""
        kind = f.choice(fields, "eventType", ("PAYMENT", "REFUND"))
        if f.optional_text(fields, "currency") not in (None, "JPY"):
            raise f.FieldProblem("currency", "only JPY is supported")
        data: dict[str, object] = {
            "id": f.text(fields, "transactionId"),
            "person": f.text(fields, "userMyKeyId"),
            "at": f.iso_datetime(fields, "occurredAt"),
            "amount": f.json_int(fields, "amount"),
        }
        if kind == "REFUND":
            data["type"] = "refund"
            data["transaction"] = f.text(fields, "originalTransactionId")
        else:
            data["type"] = "purchase"
            data["store"] = f.text(fields, "storeCode")
            data["store_municipality"] = f.text(fields, "storeMunicipalityCode")
        return data


def generate(
    persons: Sequence[str],
    stores: Sequence[tuple[str, str]],
    n: int,
    seed: int,
    start: dt.datetime,
    end: dt.datetime,
) -> list[bytes]:
    """``n`` QuickPay webhook bodies in time order, the same bytes for the same seed.

    Purchases at ``stores`` (store id, municipality code) by ``persons``; about 1.5% are
    refunds of earlier payments, seven in ten of them full, the rest partial.
    """
    rng = random.Random(seed)
    names = _synth.store_names(seed, stores)
    planned = _synth.plan(rng, persons, stores, n, start, end, charge_share=0.0, refund=_refund)
    seen: set[str] = set()
    ids = [_synth.unique_id(rng, _transaction_id, seen) for _ in planned]
    bodies = []
    for i, item in enumerate(planned):
        body: dict[str, object] = {
            "eventType": "REFUND" if item.kind == "refund" else "PAYMENT",
            "transactionId": ids[i],
        }
        if item.original is not None:
            body["originalTransactionId"] = ids[item.original]
        body |= {
            "userMyKeyId": item.person,
            "amount": item.amount,
            "currency": "JPY",
            "occurredAt": item.at.astimezone(f.JST).isoformat(),
        }
        if item.kind == "purchase" and item.store is not None:
            store, municipality = item.store
            body |= {
                "storeCode": store,
                "storeName": names[store],
                "storeMunicipalityCode": municipality,
            }
        bodies.append(orjson.dumps(body))
    return bodies


def _transaction_id(rng: random.Random) -> str:
    return f"QP-{uuid.UUID(int=rng.getrandbits(128), version=4).hex}"


def _refund(rng: random.Random, amount: int) -> int:
    return amount if rng.random() < 0.7 else _synth.partial(rng, amount)

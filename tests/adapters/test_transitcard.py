"""TransitCard: JSON deliveries of snake_case charge records, string yen, epoch milliseconds."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from pointengine.adapters.transitcard import TransitCardAdapter, generate
from pointengine.errors import MalformedEvent, MyNumberRejected, UnknownMunicipality
from pointengine.model.events import Charge, Refund, parse_event

CHARGE = {
    "record_id": "TC-7D1E0A9B3C5F2E48",
    "record_type": "charge",
    "holder_mykey_id": "MKA7Q2X9",
    "amount": "3000",
    "charged_at_ms": 1646105696123,  # 2022-03-01T03:34:56.123Z
    "terminal_id": "S0001",
    "terminal_municipality_code": "131016",
    "original_record_id": None,
}
NEGATIVE = CHARGE | {
    "record_id": "TC-00000000000000FF",
    "amount": "-3000",
    "charged_at_ms": 1646190000000,  # 2022-03-02T03:00:00Z
    "original_record_id": "TC-7D1E0A9B3C5F2E48",
}


def delivery(*records: object) -> bytes:
    body = {"delivery_id": "DLV-1", "sent_at_ms": 1646190001000, "records": list(records)}
    return json.dumps(body).encode()


def test_charge_record_becomes_a_charge_with_every_field() -> None:
    [event] = TransitCardAdapter().to_events(delivery(CHARGE))
    assert event == Charge(
        source="transitcard",
        id="TC-7D1E0A9B3C5F2E48",
        person="MKA7Q2X9",
        at=dt.datetime(2022, 3, 1, 3, 34, 56, 123000, tzinfo=dt.UTC),
        provider="transitcard",
        amount=3000,
        store="S0001",
        store_municipality="131016",
    )
    assert isinstance(event, Charge)
    assert event.at.utcoffset() == dt.timedelta(hours=9)  # the same instant, held in JST


def test_negative_charge_becomes_a_refund_of_the_original() -> None:
    events = TransitCardAdapter().to_events(delivery(CHARGE, NEGATIVE))
    assert events[1] == Refund(
        source="transitcard",
        id="TC-00000000000000FF",
        person="MKA7Q2X9",
        at=dt.datetime(2022, 3, 2, 3, 0, tzinfo=dt.UTC),
        provider="transitcard",
        transaction="TC-7D1E0A9B3C5F2E48",
        amount=3000,
    )


def test_adapter_declares_provider_and_content_type() -> None:
    assert TransitCardAdapter.provider_id == "transitcard"
    assert TransitCardAdapter.content_type == "application/json"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amount": 3000}, "amount"),
        ({"amount": "3,000"}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"amount": "-3000"}, "original_record_id"),
        ({"original_record_id": "TC-1"}, "original_record_id"),
        ({"charged_at_ms": "1646105696123"}, "charged_at_ms"),
        ({"charged_at_ms": -1}, "charged_at_ms"),
        ({"record_type": "payment"}, "record_type"),
        ({"terminal_municipality_code": None}, "terminal_municipality_code"),
        ({"holder_mykey_id": ""}, "holder_mykey_id"),
    ],
)
def test_malformed_record_names_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(MalformedEvent, match=rf"transitcard record 1 .*{field}"):
        TransitCardAdapter().to_events(delivery(CHARGE | changes))


@pytest.mark.parametrize("payload", [b"{", b"[]", b'{"records": {}}', b'{"delivery_id": "x"}'])
def test_a_body_without_a_records_array_is_malformed(payload: bytes) -> None:
    with pytest.raises(MalformedEvent, match="transitcard delivery"):
        TransitCardAdapter().to_events(payload)


def test_my_number_as_holder_is_rejected_without_echo(my_number: str) -> None:
    with pytest.raises(MyNumberRejected) as caught:
        TransitCardAdapter().to_events(delivery(CHARGE | {"holder_mykey_id": my_number}))
    assert my_number not in str(caught.value)


def test_my_number_in_a_nested_unknown_field_rejects_only_its_record(my_number: str) -> None:
    carrying = CHARGE | {"record_id": "TC-2", "terminal": {"notes": [f"holder {my_number}"]}}
    events, rejects = TransitCardAdapter().to_events_lenient(delivery(CHARGE, carrying, "x"))
    assert [e.id for e in events] == ["TC-7D1E0A9B3C5F2E48"]
    assert [position for position, _ in rejects] == [2, 3]
    assert "terminal.notes[0] carries a My Number" in rejects[0][1]
    assert my_number not in rejects[0][1]


def test_a_record_that_is_only_a_my_number_is_rejected_as_one(my_number: str) -> None:
    with pytest.raises(MyNumberRejected, match="transitcard record 1"):
        TransitCardAdapter().to_events(delivery(my_number))


def test_my_number_outside_the_records_refuses_the_delivery(my_number: str) -> None:
    body = json.loads(delivery(CHARGE)) | {"sender": {"contact": my_number}}
    with pytest.raises(MyNumberRejected, match=r"transitcard delivery: sender\.contact") as caught:
        TransitCardAdapter().to_events_lenient(json.dumps(body).encode())
    assert my_number not in str(caught.value)


def test_unknown_municipality_names_the_native_field() -> None:
    with pytest.raises(UnknownMunicipality, match="terminal_municipality_code"):
        TransitCardAdapter().to_events(delivery(CHARGE | {"terminal_municipality_code": "999999"}))


def test_lenient_conversion_keeps_the_good_records_of_a_delivery() -> None:
    payload = delivery(CHARGE, CHARGE | {"record_id": "TC-2", "amount": "x"}, "oops", NEGATIVE)
    events, rejects = TransitCardAdapter().to_events_lenient(payload)
    assert [e.id for e in events] == ["TC-7D1E0A9B3C5F2E48", "TC-00000000000000FF"]
    assert [position for position, _ in rejects] == [2, 3]
    assert "amount" in rejects[0][1]
    with pytest.raises(MalformedEvent, match="record 2"):
        TransitCardAdapter().to_events(payload)


def test_generated_deliveries_round_trip(
    persons: tuple[str, ...], stores: tuple[tuple[str, str], ...],
    window: tuple[dt.datetime, dt.datetime],
) -> None:
    bodies = generate(persons, stores, 600, 11, *window)
    assert 120 <= len(bodies) < 600  # deliveries of 1 to 5 records
    events = [event for b in bodies for event in TransitCardAdapter().to_events(b)]
    assert len(events) == 600
    assert all(parse_event(e.model_dump_json()) == e for e in events)
    charges = {e.id: e for e in events if isinstance(e, Charge)}
    assert {c.amount for c in charges.values()} <= {1_000, 3_000, 5_000, 10_000, 20_000}
    for refund in (e for e in events if isinstance(e, Refund)):
        assert refund.amount == charges[refund.transaction].amount
        assert refund.person == charges[refund.transaction].person
    record = json.loads(bodies[0])["records"][0]
    assert isinstance(record["amount"], str) and isinstance(record["charged_at_ms"], int)


def test_generation_is_deterministic_for_a_seed(
    persons: tuple[str, ...], stores: tuple[tuple[str, str], ...],
    window: tuple[dt.datetime, dt.datetime],
) -> None:
    assert generate(persons, stores, 50, 3, *window) == generate(persons, stores, 50, 3, *window)
    assert generate(persons, stores, 50, 3, *window) != generate(persons, stores, 50, 4, *window)

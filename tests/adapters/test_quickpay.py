"""QuickPay: JSON webhooks, camelCase, integer yen, ISO 8601 timestamps with +09:00."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from pointengine.adapters.quickpay import QuickPayAdapter, generate
from pointengine.errors import MalformedEvent, MyNumberRejected, UnknownMunicipality
from pointengine.model.events import Purchase, Refund, parse_event
from tests.adapters.conftest import in_json

JST = dt.timezone(dt.timedelta(hours=9))
PAYMENT = {
    "eventType": "PAYMENT",
    "transactionId": "QP-9f1c0d3e5b7a4c2e8d6f0a1b2c3d4e5f",
    "userMyKeyId": "MKA7Q2X9",
    "amount": 1280,
    "currency": "JPY",
    "occurredAt": "2022-03-01T12:34:56+09:00",
    "storeCode": "S0001",
    "storeName": "株式会社山田 千代田区店",
    "storeMunicipalityCode": "131016",
}
REFUND = {
    "eventType": "REFUND",
    "transactionId": "QP-0a1b2c3d4e5f40718293a4b5c6d7e8f9",
    "originalTransactionId": "QP-9f1c0d3e5b7a4c2e8d6f0a1b2c3d4e5f",
    "userMyKeyId": "MKA7Q2X9",
    "amount": 500,
    "occurredAt": "2022-03-02T09:00:00+09:00",
}


def body(record: dict[str, object], **changes: object) -> bytes:
    return json.dumps(record | changes, ensure_ascii=False).encode()


def convert(payload: bytes) -> list[object]:
    with QuickPayAdapter() as adapter:
        return list(adapter.to_events(payload))


def test_payment_becomes_a_purchase_with_every_field() -> None:
    [event] = convert(body(PAYMENT))
    assert event == Purchase(
        source="quickpay",
        id="QP-9f1c0d3e5b7a4c2e8d6f0a1b2c3d4e5f",
        person="MKA7Q2X9",
        at=dt.datetime(2022, 3, 1, 12, 34, 56, tzinfo=JST),
        provider="quickpay",
        amount=1280,
        store="S0001",
        store_municipality="131016",
    )
    assert isinstance(event, Purchase)
    assert event.at.utcoffset() == dt.timedelta(hours=9)


def test_refund_names_the_original_transaction() -> None:
    [event] = convert(body(REFUND))
    assert event == Refund(
        source="quickpay",
        id="QP-0a1b2c3d4e5f40718293a4b5c6d7e8f9",
        person="MKA7Q2X9",
        at=dt.datetime(2022, 3, 2, 9, 0, tzinfo=JST),
        provider="quickpay",
        transaction="QP-9f1c0d3e5b7a4c2e8d6f0a1b2c3d4e5f",
        amount=500,
    )


def test_adapter_declares_provider_and_content_type() -> None:
    assert QuickPayAdapter.provider_id == "quickpay"
    assert QuickPayAdapter.content_type == "application/json"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amount": 1280.0}, "amount"),
        ({"amount": "1280"}, "amount"),
        ({"amount": 0}, "amount"),
        ({"occurredAt": "2022-03-01T12:34:56"}, "occurredAt"),
        ({"occurredAt": "yesterday"}, "occurredAt"),
        ({"occurredAt": "2022-W09-2T12:00:00+09:00"}, "occurredAt: not an RFC 3339"),
        ({"occurredAt": "2022-03-01 12:34:56+09:00"}, "occurredAt: not an RFC 3339"),
        ({"occurredAt": "0001-01-01T00:00:00+09:00"}, "occurredAt: .* out of range"),
        ({"storeCode": None}, "storeCode"),
        ({"eventType": "CHARGEBACK"}, "eventType"),
        ({"currency": "USD"}, "currency"),
        ({"transactionId": "QP 1"}, "transactionId"),
    ],
)
def test_malformed_payment_names_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(MalformedEvent, match=rf"quickpay webhook 1 .*{field}"):
        convert(body(PAYMENT, **changes))


def test_refund_without_original_names_the_field() -> None:
    record = {k: v for k, v in REFUND.items() if k != "originalTransactionId"}
    with pytest.raises(MalformedEvent, match="originalTransactionId: missing"):
        convert(body(record))


@pytest.mark.parametrize("payload", [b"", b"not json", b"[1, 2]", b'"PAYMENT"'])
def test_a_body_that_is_not_a_json_object_is_malformed(payload: bytes) -> None:
    with pytest.raises(MalformedEvent, match="quickpay webhook"):
        convert(payload)


def test_my_number_as_person_is_rejected_without_echo(my_number: str) -> None:
    with pytest.raises(MyNumberRejected) as caught:
        convert(body(PAYMENT, userMyKeyId=my_number))
    assert my_number not in str(caught.value)
    assert "userMyKeyId" in str(caught.value)


def test_my_number_in_any_other_field_is_rejected_too(my_number: str) -> None:
    with pytest.raises(MyNumberRejected, match="storeCode") as caught:
        convert(body(PAYMENT, storeCode=my_number))
    assert my_number not in str(caught.value)


def full_width(digits: str) -> str:
    return digits.translate(str.maketrans("0123456789", "０１２３４５６７８９"))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"storeName": "yamada {n}"}, "storeName"),
        ({"storeName": "yamada {fw}"}, "storeName"),
        ({"meta": {"n": "{n}"}}, r"meta\.n"),
        ({"meta": {"items": [{"note": "tel {n}"}]}}, r"meta\.items\[0\]\.note"),
        ({"memo": "{n}"}, "memo"),
        ({"{n}": "x"}, "a field name"),
    ],
)
def test_my_number_anywhere_in_the_webhook_is_rejected_without_echo(
    my_number: str, changes: dict[str, object], field: str
) -> None:
    payload = body(PAYMENT, **changes).decode()
    payload = payload.replace("{n}", in_json(my_number))
    payload = payload.replace("{fw}", in_json(full_width(my_number)))
    with pytest.raises(MyNumberRejected, match=rf"quickpay webhook 1 .*{field} carries") as caught:
        convert(payload.encode())
    assert my_number not in str(caught.value)
    assert full_width(my_number) not in str(caught.value)


def test_my_number_behind_json_escapes_is_rejected(my_number: str) -> None:
    escaped = "".join(f"\\u{ord(c):04x}" for c in my_number)
    payload = body(PAYMENT).replace(b'"storeCode"', f'"memo":"{escaped}","storeCode"'.encode())
    with pytest.raises(MyNumberRejected, match="memo"):
        convert(payload)


def test_my_number_written_as_a_number_the_decoder_changes_is_rejected(
    plain_my_number: str,
) -> None:
    my_number = plain_my_number
    # decoded, 123456789018.9999999999999999 becomes 123456789019.0: the body is searched too
    written = f"{my_number}.9999999999999999"
    payload = body(PAYMENT).replace(b'"storeCode"', f'"memo":{written},"storeCode"'.encode())
    with pytest.raises(MyNumberRejected) as caught:
        convert(payload)
    assert my_number not in str(caught.value)


def test_a_body_that_is_only_a_my_number_is_rejected_as_one(my_number: str) -> None:
    with pytest.raises(MyNumberRejected) as caught:
        convert(f'["{in_json(my_number)}"]'.encode())
    assert my_number not in str(caught.value)


def test_twelve_digits_that_are_not_a_my_number_are_accepted() -> None:
    [event] = convert(body(PAYMENT, storeName="yamada 123456789012", meta={"tel": "0312345678"}))
    assert isinstance(event, Purchase)


def test_unknown_municipality_names_the_native_field() -> None:
    with pytest.raises(UnknownMunicipality, match=r"storeMunicipalityCode: .*131016"):
        convert(body(PAYMENT, storeMunicipalityCode="131019"))


def test_generated_webhooks_round_trip(
    persons: tuple[str, ...], stores: tuple[tuple[str, str], ...],
    window: tuple[dt.datetime, dt.datetime],
) -> None:
    bodies = generate(persons, stores, 600, 7, *window)
    assert len(bodies) == 600
    events = [event for b in bodies for event in QuickPayAdapter().to_events(b)]
    assert len(events) == 600
    assert {e.type for e in events} == {"purchase", "refund"}
    assert all(parse_event(e.model_dump_json()) == e for e in events)
    purchases = {e.id: e for e in events if isinstance(e, Purchase)}
    for refund in (e for e in events if isinstance(e, Refund)):
        original = purchases[refund.transaction]
        assert (original.person, original.at <= refund.at) == (refund.person, True)
        assert refund.amount <= original.amount
    first = json.loads(bodies[0])
    assert first["occurredAt"].endswith("+09:00") and first["storeName"].endswith("店")


def test_generation_is_deterministic_for_a_seed(
    persons: tuple[str, ...], stores: tuple[tuple[str, str], ...],
    window: tuple[dt.datetime, dt.datetime],
) -> None:
    assert generate(persons, stores, 50, 3, *window) == generate(persons, stores, 50, 3, *window)
    assert generate(persons, stores, 50, 3, *window) != generate(persons, stores, 50, 4, *window)

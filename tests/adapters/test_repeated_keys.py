"""A key, element or column given twice is refused, never read as one of its values.

JSON decoders keep the last value of a repeated key, ElementTree's ``find`` the first of two
elements, a CSV line read into a mapping the last of two columns: each would silently pick one
of two values the provider sent, so ``"amount"`` given as 5000 and then 5 would be a 5-yen
purchase. A value the decoder left out is still searched for a My Number.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import orjson
import pytest

from pointengine.adapters.base import json_body, json_records
from pointengine.adapters.carrierpay import CarrierPayAdapter
from pointengine.adapters.quickpay import QuickPayAdapter
from pointengine.adapters.towncoin import TownCoinAdapter
from pointengine.adapters.transitcard import TransitCardAdapter
from pointengine.errors import MalformedEvent, MyNumberRejected, NestedTooDeeply
from tests.adapters.conftest import in_json
from tests.adapters.test_carrierpay import REFUND as CARRIER_REFUND
from tests.adapters.test_carrierpay import notification, payment
from tests.adapters.test_quickpay import PAYMENT, body
from tests.adapters.test_towncoin import HEADER, LINES, csv_file
from tests.adapters.test_transitcard import CHARGE, delivery

TWICE = "is given more than once; which value is meant cannot be known"


def full_width(digits: str) -> str:
    return digits.translate(str.maketrans("0123456789", "０１２３４５６７８９"))


def escaped(digits: str) -> str:
    return "".join(f"\\u{ord(c):04x}" for c in digits)


def with_member(raw: bytes, member: str) -> bytes:
    """``raw``, a JSON object, with ``member`` (``"key":value``) added at its end."""
    assert raw.endswith(b"}")
    return raw[:-1] + b"," + member.encode() + b"}"


# QuickPay: one webhook, one record; a repeat anywhere refuses the body.


def test_a_webhook_giving_the_amount_twice_is_refused_naming_the_key() -> None:
    payload = with_member(body(PAYMENT), '"amount":5')
    with pytest.raises(MalformedEvent) as caught:
        QuickPayAdapter().to_events(payload)
    assert caught.value.reason_code == "malformed"
    assert str(caught.value) == (f"quickpay webhook: the key 'amount' {TWICE}; "
                                 "nothing was stored")


@pytest.mark.parametrize(
    ("member", "key"),
    [
        ('"meta":{"n":1,"n":2}', "n"),
        ('"meta":[{"x":{"tel":"1","tel":"2"}}]', "tel"),
        ('"\\u0061mount":5', "amount"),  # the same key, written with an escape
        ('"currency":"JPY"', "currency"),  # the same value twice is still two values
    ],
)
def test_a_key_given_twice_at_any_depth_is_named(member: str, key: str) -> None:
    with pytest.raises(MalformedEvent, match=f"^quickpay webhook: the key '{key}' {TWICE}"):
        QuickPayAdapter().to_events_lenient(with_member(body(PAYMENT), member))


def test_one_key_in_two_objects_is_no_repeat() -> None:
    payload = with_member(body(PAYMENT), '"meta":{"amount":1,"items":[{"amount":2}]}')
    [event] = QuickPayAdapter().to_events(payload)
    assert event.amount == 1280  # type: ignore[union-attr]


@pytest.mark.parametrize("written", [str, full_width, escaped])
def test_a_my_number_in_the_value_the_decoder_left_out_is_rejected(
    my_number: str, written: Callable[[str], str]
) -> None:
    # orjson keeps the last "memo": the first, with the number, is in no decoded field.
    memo = in_json(written(my_number))
    payload = body(PAYMENT).replace(
        b'"storeCode"', f'"memo":"tel {memo}","memo":"x","storeCode"'.encode())
    with pytest.raises(MyNumberRejected) as caught:
        QuickPayAdapter().to_events(payload)
    assert caught.value.reason_code == "my_number"
    assert str(caught.value) == "quickpay webhook: the body carries a My Number; nothing was stored"


def test_a_my_number_as_the_repeated_key_is_never_repeated(my_number: str) -> None:
    key = in_json(my_number)
    payload = with_member(body(PAYMENT), f'"{key}":1,"{key}":2')
    with pytest.raises(MyNumberRejected) as caught:
        QuickPayAdapter().to_events(payload)
    assert my_number not in str(caught.value)


@pytest.mark.parametrize("levels", [65, 255, 256, 1_000, 1_025])
def test_a_body_nested_too_deeply_is_refused_before_it_is_parsed(levels: int) -> None:
    # 256-1,024 levels once met orjson's writer (TypeError: a 500), more the standard parser's
    # recursion (a body too deep to check for a key given twice).
    payload = b'{"a":' * levels + b'"x\\n"' + b"}" * levels
    with pytest.raises(NestedTooDeeply) as caught:
        QuickPayAdapter().to_events(payload)
    assert str(caught.value) == ("quickpay webhook: arrays and objects nested more than 64 "
                                 "levels deep; nothing was stored")


# TransitCard: a repeat in one record rejects that record; in the delivery, the delivery.


def record(**changes: object) -> str:
    return json.dumps(CHARGE | changes)


def records_delivery(*records: str, extra: str = "") -> bytes:
    return (f'{{"delivery_id":"DLV-1","sent_at_ms":1646190001000{extra},'
            f'"records":[{",".join(records)}]}}').encode()


def test_a_record_giving_the_amount_twice_is_rejected_alone() -> None:
    repeated = record(record_id="TC-2")[:-1] + ', "amount": "5"}'
    payload = records_delivery(record(record_id="TC-1"), repeated, record(record_id="TC-3"))
    message = f"transitcard record 2: the key 'amount' {TWICE}"
    with pytest.raises(MalformedEvent) as caught:
        TransitCardAdapter().to_events(payload)
    assert caught.value.reason_code == "malformed" and str(caught.value) == message
    events, rejects = TransitCardAdapter().to_events_lenient(payload)
    assert [e.id for e in events] == ["TC-1", "TC-3"]
    assert rejects == [(2, message)]


def test_a_record_giving_a_nested_key_twice_names_the_key() -> None:
    nested = record()[:-1] + ', "meta": {"terminal": {"id": 1, "id": 2}}}'
    _, rejects = TransitCardAdapter().to_events_lenient(records_delivery(record(), nested))
    assert rejects == [(2, f"transitcard record 2: the key 'id' {TWICE}")]


@pytest.mark.parametrize("written", [str, full_width, escaped])
def test_a_my_number_in_a_records_left_out_value_is_rejected_with_it(
    my_number: str, written: Callable[[str], str]
) -> None:
    note = in_json(written(my_number))
    repeated = record(record_id="TC-2")[:-1] + f', "note": "{note}", "note": "x"}}'
    payload = records_delivery(record(record_id="TC-1"), repeated)
    events, rejects = TransitCardAdapter().to_events_lenient(payload)
    assert [e.id for e in events] == ["TC-1"]
    assert rejects == [(2, "transitcard record 2: the record carries a My Number; the record "
                           "was rejected, not stored")]


@pytest.mark.parametrize(
    ("extra", "key"),
    [(',"records":[]', "records"), (',"delivery_id":"DLV-2"', "delivery_id"),
     (',"meta":{"a":1,"a":2}', "a")],
)
def test_a_delivery_giving_its_own_key_twice_is_refused_whole(extra: str, key: str) -> None:
    payload = records_delivery(record(), extra=extra)
    with pytest.raises(MalformedEvent) as caught:
        TransitCardAdapter().to_events_lenient(payload)
    assert caught.value.reason_code == "malformed"
    assert str(caught.value) == f"transitcard delivery: the key '{key}' {TWICE}; nothing was stored"


def test_a_my_number_left_out_of_the_delivery_is_rejected(my_number: str) -> None:
    payload = records_delivery(record(), extra=f',"delivery_id":"DLV {in_json(my_number)}"')
    with pytest.raises(MyNumberRejected) as caught:
        TransitCardAdapter().to_events_lenient(payload)
    assert my_number not in str(caught.value)


def test_a_delivery_without_repeats_converts_as_before() -> None:
    payload = delivery(CHARGE, CHARGE | {"record_id": "TC-2", "meta": {"record_id": "x"}})
    assert [e.id for e in TransitCardAdapter().to_events(payload)] == [
        "TC-7D1E0A9B3C5F2E48", "TC-2"]


# The helpers themselves.


def test_json_records_reports_each_records_repeat() -> None:
    payload = b'{"d":1,"records":[{"a":1},{"a":1,"a":2},[{"b":[],"b":{}}],3]}'
    body, records = json_records(payload, "test body", "records")
    assert body == {"d": 1, "records": [{"a": 1}, {"a": 2}, [{"b": {}}], 3]}
    assert records is not None
    assert [(r.repeated, r.text) for r in records] == [
        (None, None), ("a", '{"a":1,"a":2}'), ("b", '[{"b":[],"b":{}}]'), (None, None)]
    assert records[1].problem == f"the key 'a' {TWICE}"


def test_a_records_text_keeps_its_numbers_as_written() -> None:
    # orjson reads the first as a float: 123456789019.0, no longer the digits written.
    payload = b'{"records":[{"n":123456789018.9999999999999999,"n":1e2,"n":-0}]}'
    _, records = json_records(payload, "test body", "records")
    assert records is not None
    assert records[0].text == '{"n":123456789018.9999999999999999,"n":1e2,"n":-0}'


@pytest.mark.parametrize("payload", [b"[1]", b'{"records":{}}', b'{"other":[]}'])
def test_json_records_has_no_records_for_other_json(payload: bytes) -> None:
    assert json_records(payload, "test body", "records") == (orjson.loads(payload), None)


def test_json_body_refuses_what_it_cannot_read() -> None:
    with pytest.raises(MalformedEvent, match=r"^test body: not JSON"):
        json_body(b"{", "test body")
    with pytest.raises(MalformedEvent, match=f"^test body: the key 'k' {TWICE}"):
        json_body(b'[{"k":1,"k":1}]', "test body")
    assert json_body(b'{"k":{"k":1}}', "test body") == {"k": {"k": 1}}


# CarrierPay: an element the adapter reads once, given twice.


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ("<Total>1640</Total>", "<Total>1640</Total><Total>5</Total>", "Amount/Total"),
        ("<Subtotal>1500</Subtotal>", "<Subtotal>1500</Subtotal><Subtotal>1</Subtotal>",
         "Amount/Subtotal"),
        ("<ProcessedAt>", "<ProcessedAt>2022-03-02T00:00:00+09:00</ProcessedAt><ProcessedAt>",
         "ProcessedAt"),
        ("<MyKeyId>", "<MyKeyId>MKB4K8P1</MyKeyId><MyKeyId>", "Subscriber/MyKeyId"),
        ("<Subscriber>", "<Subscriber><MyKeyId>MKB4K8P1</MyKeyId></Subscriber><Subscriber>",
         "Subscriber"),
        ("<LocalGovernmentCode>", "<LocalGovernmentCode>271276</LocalGovernmentCode>"
         "<LocalGovernmentCode>", "Merchant/LocalGovernmentCode"),
        ('<Merchant code="S0001">', '<Merchant code="S0002"></Merchant><Merchant code="S0001">',
         "Merchant"),
        ('<Amount currency="JPY">', '<Amount currency="JPY"><Total>5</Total></Amount>'
         '<Amount currency="JPY">', "Amount"),
    ],
)
def test_an_element_read_once_given_twice_rejects_its_record(old: str, new: str,
                                                             path: str) -> None:
    repeated = payment().replace(old, new, 1)
    assert repeated != payment()
    events, rejects = CarrierPayAdapter().to_events_lenient(notification(repeated, CARRIER_REFUND))
    assert [e.id for e in events] == ["CP0000012399"]
    assert rejects == [(1, f"carrierpay record 1 (@id CP0000012345): {path} is given more than "
                           "once; which one is meant cannot be known")]
    with pytest.raises(MalformedEvent, match=f"^carrierpay record 1 .*: {path} is given"):
        CarrierPayAdapter().to_events(notification(repeated))


def test_tax_lines_and_unread_elements_may_repeat() -> None:
    two_names = payment().replace("<Name>", "<Name>本店</Name><Name>", 1)
    [event] = CarrierPayAdapter().to_events(notification(two_names))
    assert event.amount == 1640  # type: ignore[union-attr]


def test_a_my_number_in_the_second_of_two_elements_is_rejected(my_number: str) -> None:
    repeated = payment().replace("<Total>1640</Total>", f"<Total>1640</Total><Total>{my_number}"
                                                        "</Total>")
    with pytest.raises(MyNumberRejected) as caught:
        CarrierPayAdapter().to_events(notification(repeated))
    assert my_number not in str(caught.value)


# TownCoin: a column named twice refuses the file, which has no line without it.


@pytest.mark.parametrize("column", ["金額", "備考"])
def test_a_column_named_twice_refuses_the_file_naming_it(column: str) -> None:
    payload = csv_file(*LINES, header=f"{HEADER},備考,{column}")
    with pytest.raises(MalformedEvent) as caught:
        TownCoinAdapter().to_events_lenient(payload)
    assert caught.value.reason_code == "malformed"
    assert str(caught.value) == (f"towncoin file: line 1 (header): the column '{column}' is "
                                 "given more than once; which one is meant cannot be known")

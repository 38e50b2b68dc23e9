"""CarrierPay: XML notifications; the tax-included Total is what counts; partial refunds."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET

import pytest

from pointengine.adapters.carrierpay import CarrierPayAdapter, generate
from pointengine.errors import MalformedEvent, MyNumberRejected, UnknownMunicipality
from pointengine.model.events import Purchase, Refund, parse_event

JST = dt.timezone(dt.timedelta(hours=9))
PAYMENT = """
  <Payment id="CP0000012345">
    <Subscriber><MyKeyId>{person}</MyKeyId></Subscriber>
    <ProcessedAt>{at}</ProcessedAt>
    <Merchant code="S0001">
      <Name>株式会社山田 千代田区店</Name>
      <LocalGovernmentCode>{code}</LocalGovernmentCode>
    </Merchant>
    <Amount currency="JPY">
      <Subtotal>1500</Subtotal>
      <Tax rate="10">100</Tax>
      <Tax rate="8">40</Tax>
      <Total>{total}</Total>
    </Amount>
  </Payment>"""
REFUND = """
  <Refund id="CP0000012399" paymentId="CP0000012345">
    <Subscriber><MyKeyId>MKA7Q2X9</MyKeyId></Subscriber>
    <ProcessedAt>2022-03-02T10:00:00+09:00</ProcessedAt>
    <Amount currency="JPY"><Subtotal>400</Subtotal><Tax rate="10">40</Tax>
      <Total>440</Total></Amount>
  </Refund>"""


def notification(*records: str) -> bytes:
    inner = "".join(records)
    return f"<?xml version='1.0' encoding='utf-8'?>\n<CarrierPayNotification version=\"1.0\">" \
           f"{inner}</CarrierPayNotification>".encode()


def payment(person: str = "MKA7Q2X9", at: str = "2022-03-01T12:34:56+09:00",
            code: str = "131016", total: str = "1640") -> str:
    return PAYMENT.format(person=person, at=at, code=code, total=total)


def test_payment_becomes_a_purchase_of_the_tax_included_total() -> None:
    [event] = CarrierPayAdapter().to_events(notification(payment()))
    assert event == Purchase(
        source="carrierpay",
        id="CP0000012345",
        person="MKA7Q2X9",
        at=dt.datetime(2022, 3, 1, 12, 34, 56, tzinfo=JST),
        provider="carrierpay",
        amount=1640,
        store="S0001",
        store_municipality="131016",
    )


def test_partial_refund_becomes_a_refund_of_its_total() -> None:
    events = CarrierPayAdapter().to_events(notification(payment(), REFUND))
    assert events[1] == Refund(
        source="carrierpay",
        id="CP0000012399",
        person="MKA7Q2X9",
        at=dt.datetime(2022, 3, 2, 10, 0, tzinfo=JST),
        provider="carrierpay",
        transaction="CP0000012345",
        amount=440,
    )


def test_total_alone_is_enough() -> None:
    xml = REFUND.replace("<Subtotal>400</Subtotal><Tax rate=\"10\">40</Tax>", "")
    [event] = CarrierPayAdapter().to_events(notification(xml))
    assert event.amount == 440  # type: ignore[union-attr]


def test_adapter_declares_provider_and_content_type() -> None:
    assert CarrierPayAdapter.provider_id == "carrierpay"
    assert CarrierPayAdapter.content_type == "application/xml"


@pytest.mark.parametrize(
    ("record", "field"),
    [
        (payment(total="1500"), r"Amount/Total: 1500 is not Subtotal \+ Tax \(1640\)"),
        (payment(total="1,640"), "Amount/Total"),
        (payment(total=""), "Amount/Total: missing"),
        (payment(at="2022-03-01 12:34"), "ProcessedAt"),
        (payment(at="2022-W09-2T12:00:00+09:00"), "ProcessedAt: not an RFC 3339"),
        (payment(at="0001-01-01T00:00:00+09:00"), "ProcessedAt: .* out of range"),
        (payment(person=""), "Subscriber/MyKeyId: missing"),
        (payment().replace('code="S0001"', ""), "Merchant@code: missing"),
        (payment().replace('currency="JPY"', 'currency="USD"'), "Amount@currency"),
        (REFUND.replace(' paymentId="CP0000012345"', ""), "@paymentId: missing"),
        ("<Chargeback id='CP1'/>", "unknown element <Chargeback>"),
    ],
)
def test_malformed_record_names_the_field(record: str, field: str) -> None:
    with pytest.raises(MalformedEvent, match=rf"carrierpay record 1\b.*{field}"):
        CarrierPayAdapter().to_events(notification(record))


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"<CarrierPayNotification>",
        b"<Other/>",
        b'<!DOCTYPE x [<!ENTITY a "aaaa">]><CarrierPayNotification>&a;</CarrierPayNotification>',
    ],
)
def test_a_body_that_is_not_a_notification_is_malformed(payload: bytes) -> None:
    with pytest.raises(MalformedEvent, match="carrierpay notification"):
        CarrierPayAdapter().to_events(payload)


def doctype_notification(declared: str) -> str:
    """A notification whose MyKeyId is an entity defined in its DOCTYPE."""
    return (f'<?xml version="1.0" encoding="{declared}"?>\n'
            '<!DOCTYPE CarrierPayNotification [<!ENTITY p "MKZZZZZZ">]>\n'
            f'<CarrierPayNotification version="1.0">{payment(person="&p;")}'
            '</CarrierPayNotification>')


@pytest.mark.parametrize("ascii_only", [False, True])
@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_a_doctype_in_another_encoding_is_refused(encoding: str, ascii_only: bool) -> None:
    document = doctype_notification(encoding.upper())
    if ascii_only:  # then UTF-16 without a byte order mark is valid UTF-8, NULs and all
        document = document.replace("株式会社山田 千代田区店", "Yamada")
    payload = document.encode(encoding)
    with pytest.raises(MalformedEvent, match="carrierpay notification: not UTF-8"):
        CarrierPayAdapter().to_events(payload)


def test_a_doctype_in_utf8_is_refused_whatever_the_declaration() -> None:
    with pytest.raises(MalformedEvent, match="carrierpay notification: a DOCTYPE"):
        CarrierPayAdapter().to_events(doctype_notification("utf-8").encode())
    with pytest.raises(MalformedEvent, match=r"carrierpay notification: .* another encoding"):
        CarrierPayAdapter().to_events(doctype_notification("UTF-16").encode())


def test_a_document_in_another_encoding_is_refused() -> None:
    latin = notification(payment()).replace(b"utf-8", b"iso-8859-1")
    with pytest.raises(MalformedEvent, match="another encoding than UTF-8"):
        CarrierPayAdapter().to_events(latin)
    shift_jis = notification(payment()).decode().replace("utf-8", "shift_jis")
    with pytest.raises(MalformedEvent, match="not UTF-8"):
        CarrierPayAdapter().to_events(shift_jis.encode("cp932"))


def test_utf8_with_a_byte_order_mark_or_without_declaration_is_read() -> None:
    expected = CarrierPayAdapter().to_events(notification(payment()))
    assert CarrierPayAdapter().to_events(b"\xef\xbb\xbf" + notification(payment())) == expected
    bare = notification(payment()).split(b"\n", 1)[1]
    assert CarrierPayAdapter().to_events(bare) == expected


def test_my_number_as_subscriber_is_rejected_without_echo(my_number: str) -> None:
    with pytest.raises(MyNumberRejected) as caught:
        CarrierPayAdapter().to_events(notification(payment(person=my_number)))
    assert my_number not in str(caught.value)
    assert "Subscriber/MyKeyId" in str(caught.value)


def full_width(digits: str) -> str:
    return digits.translate(str.maketrans("0123456789", "０１２３４５６７８９"))


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ("株式会社山田 千代田区店", "{n}", "Merchant/Name"),
        ("株式会社山田 千代田区店", "山田 {n}", "Merchant/Name"),
        ("株式会社山田 千代田区店", "山田 {fw}", "Merchant/Name"),
        ("株式会社山田 千代田区店", "&#49;&#x32;3456789018", "Merchant/Name"),
        ("</Merchant>", "</Merchant><Memo>会員 {n}</Memo>", "Memo"),
        ("</Merchant>", "</Merchant><Memo><Line>a</Line>tel {n}</Memo>", "Memo"),
        ('code="S0001"', 'code="S0001" contact="{n}"', "Merchant@contact"),
        ('<Payment id="CP0000012345"', '<Payment id="CP0000012345" ref="{fw}"', "@ref"),
        ("<Tax rate=\"8\">40</Tax>", "<Tax rate=\"8\" note=\"{n}\">40</Tax>", "Amount/Tax@note"),
        ("</Merchant>", "</Merchant><X{n}/>", "a field name"),
    ],
)
def test_my_number_anywhere_in_a_record_is_rejected_without_echo(
    my_number: str, old: str, new: str, path: str
) -> None:
    new = new.replace("{n}", my_number).replace("{fw}", full_width(my_number))
    if path == "a field name" and not f"X{my_number}".replace("-", "").replace(".", "").replace(
            "_", "").isalnum():
        pytest.skip("not a character of an XML name")
    record = payment().replace(old, new)
    with pytest.raises(MyNumberRejected, match="carrierpay record 1 ") as caught:
        CarrierPayAdapter().to_events(notification(record))
    message = str(caught.value)
    assert f"{path} carries a My Number" in message
    assert my_number not in message and full_width(my_number) not in message


def test_my_number_in_an_unknown_element_is_a_my_number_rejection(my_number: str) -> None:
    events, rejects = CarrierPayAdapter().to_events_lenient(
        notification(f"<Chargeback id='CP1'><Note>{my_number}</Note></Chargeback>", payment()))
    assert len(events) == 1
    assert [position for position, _ in rejects] == [1]
    assert "Note carries a My Number" in rejects[0][1] and my_number not in rejects[0][1]


def test_my_number_outside_the_records_refuses_the_notification(my_number: str) -> None:
    sender = f'version="1.0" sender="{my_number}">'.encode()
    payload = notification(payment()).replace(b'version="1.0">', sender)
    with pytest.raises(MyNumberRejected, match="carrierpay notification: @sender") as caught:
        CarrierPayAdapter().to_events_lenient(payload)
    assert my_number not in str(caught.value)
    payload = notification(payment(), f"\n  note {full_width(my_number)}\n")
    with pytest.raises(MyNumberRejected, match="carrierpay notification: text"):
        CarrierPayAdapter().to_events_lenient(payload)


def test_unknown_municipality_names_the_native_field() -> None:
    with pytest.raises(UnknownMunicipality, match="Merchant/LocalGovernmentCode"):
        CarrierPayAdapter().to_events(notification(payment(code="131010")))


def test_generated_notifications_round_trip(
    persons: tuple[str, ...], stores: tuple[tuple[str, str], ...],
    window: tuple[dt.datetime, dt.datetime],
) -> None:
    bodies = generate(persons, stores, 600, 5, *window)
    assert len(bodies) == 600
    events = [event for b in bodies for event in CarrierPayAdapter().to_events(b)]
    assert all(parse_event(e.model_dump_json()) == e for e in events)
    purchases = {e.id: e for e in events if isinstance(e, Purchase)}
    refunds = [e for e in events if isinstance(e, Refund)]
    assert refunds and all(e.id.startswith("CP") and e.id[2:].isdigit() for e in events)
    for refund in refunds:
        assert refund.amount < purchases[refund.transaction].amount  # partial
    root = ET.fromstring(bodies[0])
    assert root.find("Payment/Merchant/Name") is not None


def test_generation_is_deterministic_for_a_seed(
    persons: tuple[str, ...], stores: tuple[tuple[str, str], ...],
    window: tuple[dt.datetime, dt.datetime],
) -> None:
    assert generate(persons, stores, 50, 3, *window) == generate(persons, stores, 50, 3, *window)
    assert generate(persons, stores, 50, 3, *window) != generate(persons, stores, 50, 4, *window)

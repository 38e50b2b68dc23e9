"""CarrierPay: a mock carrier payment service (basis: purchase) that posts XML notifications.

Native format, ``application/xml``, UTF-8. A notification holds one or more ``Payment`` and
``Refund`` elements (one per request in practice)::

    <?xml version='1.0' encoding='utf-8'?>
    <CarrierPayNotification version="1.0">
      <Payment id="CP0000012345">
        <Subscriber><MyKeyId>MKA7Q2X9</MyKeyId></Subscriber>
        <ProcessedAt>2022-03-01T12:34:56+09:00</ProcessedAt>
        <Merchant code="S0001">
          <Name>株式会社山田 千代田区店</Name>
          <LocalGovernmentCode>131016</LocalGovernmentCode>
        </Merchant>
        <Amount currency="JPY">
          <Subtotal>1500</Subtotal>
          <Tax rate="10">100</Tax>
          <Tax rate="8">40</Tax>
          <Total>1640</Total>
        </Amount>
      </Payment>
      <Refund id="CP0000012399" paymentId="CP0000012345">
        <Subscriber><MyKeyId>MKA7Q2X9</MyKeyId></Subscriber>
        <ProcessedAt>2022-03-02T10:00:00+09:00</ProcessedAt>
        <Amount currency="JPY"><Subtotal>400</Subtotal><Tax rate="10">40</Tax>
          <Total>440</Total></Amount>
      </Refund>
    </CarrierPayNotification>

Ids are ``CP`` and ten digits; ``ProcessedAt`` is an RFC 3339 timestamp with its offset.
**``Amount/Total`` is what counts**: the tax-included amount (税込) the subscriber paid or got
back, in yen. ``Subtotal`` (税抜) and the ``Tax`` lines (one per consumption-tax rate, 10% or
the reduced 8%) are optional; when ``Subtotal`` is present the adapter checks that Subtotal +
Taxes = Total. A ``Payment`` becomes a canonical :class:`~pointengine.model.events.Purchase` at the
merchant; a ``Refund`` (CarrierPay refunds are usually partial: some items of a basket) a
:class:`~pointengine.model.events.Refund` of ``paymentId``.
A document in another encoding (a byte order mark or an XML declaration naming one included)
or with a DOCTYPE is refused: no entity is ever expanded; nor is one that nests elements more
than 64 levels deep. Elements and attributes the adapter
does not read are ignored, but a record that carries a My Number anywhere, in any text or
attribute, is rejected, and so is a record that gives an element the adapter reads more than
once (two ``Amount/Total``, say): which one is meant is unknowable. Only ``Tax`` repeats.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from typing import ClassVar

from pointengine.adapters import _fields as f
from pointengine.adapters import _synth
from pointengine.adapters.base import NativeAdapter, NativeRecord, refuse_my_number
from pointengine.errors import MalformedEvent, NestedTooDeeply
from pointengine.model.bounds import MAX_NESTING

PROVIDER_ID = "carrierpay"
_ROOT = "CarrierPayNotification"
_TAX = "Amount/Tax"
# The elements read once, by parent ("" for the Payment or Refund itself): each may be given
# at most once. ElementTree's find would silently take the first of two.
_ONCE = {
    "": ("Subscriber", "ProcessedAt", "Merchant", "Amount"),
    "Subscriber": ("MyKeyId",),
    "Merchant": ("LocalGovernmentCode",),
    "Amount": ("Subtotal", "Total"),
}
_DECLARED_ENCODING = re.compile(r"<\?xml\s[^>]*?\bencoding\s*=\s*[\"']([^\"']*)[\"']")


class CarrierPayAdapter(NativeAdapter):
    """CarrierPay XML notifications to canonical purchases and refunds."""

    provider_id = PROVIDER_ID
    content_type = "application/xml"
    id_field = "@id"
    native_fields: ClassVar[Mapping[str, str]] = {
        "id": "@id",
        "person": "Subscriber/MyKeyId",
        "at": "ProcessedAt",
        "amount": "Amount/Total",
        "store": "Merchant@code",
        "store_municipality": "Merchant/LocalGovernmentCode",
        "transaction": "@paymentId",
    }

    def records(self, payload: bytes) -> Iterator[NativeRecord]:
        """Each ``Payment`` or ``Refund`` child of the notification, numbered from 1."""
        root = _parsed(_document(payload))
        if root.tag != _ROOT:
            raise MalformedEvent(f"{PROVIDER_ID} notification: the root is not <{_ROOT}>")
        envelope: dict[str, object] = {f"@{name}": value for name, value in root.attrib.items()}
        envelope["text"] = [root.text, *(element.tail for element in root)]
        refuse_my_number(f"{PROVIDER_ID} notification", envelope)
        for position, element in enumerate(root, start=1):
            rest = _everything(element)
            if element.tag not in ("Payment", "Refund"):
                yield NativeRecord(position, problem=f"unknown element <{element.tag}>", rest=rest)
            elif (twice := _given_twice(element)) is not None:
                yield NativeRecord(position, _flatten(element), rest=rest, problem=(
                    f"{twice} is given more than once; which one is meant cannot be known"))
            else:
                yield NativeRecord(position, _flatten(element), rest=rest)

    def canonical(self, fields: Mapping[str, object]) -> dict[str, object]:
        """One ``Payment`` or ``Refund`` as a canonical event dict."""
        if f.optional_text(fields, "Amount@currency") not in (None, "JPY"):
            raise f.FieldProblem("Amount@currency", "only JPY is supported")
        data: dict[str, object] = {
            "id": f.text(fields, "@id"),
            "person": f.text(fields, "Subscriber/MyKeyId"),
            "at": f.iso_datetime(fields, "ProcessedAt"),
            "amount": _total(fields),
        }
        if fields["element"] == "Refund":
            return data | {"type": "refund", "transaction": f.text(fields, "@paymentId")}
        return data | {
            "type": "purchase",
            "store": f.text(fields, "Merchant@code"),
            "store_municipality": f.text(fields, "Merchant/LocalGovernmentCode"),
        }


def _document(payload: bytes) -> str:
    """The notification's text: UTF-8, without a DOCTYPE, or MalformedEvent.

    Decoded here and handed to the parser as text, which the parser reads as it is: given
    bytes, it follows a byte order mark or the declared encoding, and a DOCTYPE in UTF-16 never
    shows as the bytes ``<!DOCTYPE``.
    """
    document: str | None
    try:
        document = payload.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        document = None
    # UTF-16 or UTF-32 of ASCII text is valid UTF-8, but with NULs, which XML never holds.
    if document is None or "\x00" in document:
        raise MalformedEvent(
            f"{PROVIDER_ID} notification: not UTF-8; CarrierPay notifications are UTF-8 XML")
    declared = _DECLARED_ENCODING.match(document)
    if declared and declared.group(1).lower() not in ("utf-8", "utf8"):
        raise MalformedEvent(f"{PROVIDER_ID} notification: the XML declaration names another "
                             "encoding than UTF-8; CarrierPay notifications are UTF-8 XML")
    if "<!DOCTYPE" in document or "<!ENTITY" in document:
        raise MalformedEvent(f"{PROVIDER_ID} notification: a DOCTYPE is not accepted")
    return document


def _parsed(document: str) -> ET.Element:
    """The notification's root element, or MalformedEvent; a document that nests elements
    more than :data:`~pointengine.model.bounds.MAX_NESTING` deep is refused as soon as the
    parser meets the element too many, before the rest is read."""
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start", "end"))
    depth = 0
    root: ET.Element | None = None
    try:
        for start in range(0, len(document), _PIECE):
            parser.feed(document[start:start + _PIECE])
            for event in parser.read_events():  # ("start" | "end", element) only
                depth += 1 if event[0] == "start" else -1
                if depth > MAX_NESTING:
                    raise NestedTooDeeply(f"{PROVIDER_ID} notification: elements nested more "
                                          f"than {MAX_NESTING} levels deep; nothing was stored")
                if root is None and isinstance(event[-1], ET.Element):
                    root = event[-1]
        parser.close()
    except ET.ParseError as exc:
        raise MalformedEvent(f"{PROVIDER_ID} notification: not XML ({exc})") from exc
    assert root is not None  # a document without a root element is a ParseError
    return root


_PIECE = 64 * 1024


def _flatten(element: ET.Element) -> dict[str, object]:
    """The fields the adapter reads, by path; the Tax lines are ``Amount/Tax[1]``, ``[2]``..."""
    fields: dict[str, object] = {
        "element": element.tag,
        "@id": element.get("id"),
        "@paymentId": element.get("paymentId"),
        "Merchant@code": _attr(element, "Merchant", "code"),
        "Amount@currency": _attr(element, "Amount", "currency"),
    }
    for path in ("Subscriber/MyKeyId", "ProcessedAt", "Merchant/LocalGovernmentCode",
                 "Amount/Subtotal", "Amount/Total"):
        fields[path] = _text(element.find(path))
    for i, tax in enumerate(element.iterfind(_TAX), start=1):
        fields[f"{_TAX}[{i}]"] = _text(tax)
    return fields


def _given_twice(element: ET.Element) -> str | None:
    """The path of the first element in :data:`_ONCE` that ``element`` holds twice, or None."""
    for parent, names in _ONCE.items():
        node = element.find(parent) if parent else element
        if node is None:
            continue
        tags = [child.tag for child in node]
        for name in names:
            if tags.count(name) > 1:
                return f"{parent}/{name}" if parent else name
    return None


def _everything(element: ET.Element) -> dict[str, object]:
    """Every text and attribute in ``element`` by path, as in :func:`_flatten` (the element's
    own text under its tag), with the tag and attribute names in the keys: what the adapter does
    not read is searched for a My Number all the same. Whitespace between elements is left out.
    """
    found: dict[str, list[str]] = {element.tag: []}
    pending = deque([(element, "")])
    while pending:
        node, path = pending.popleft()
        for name, value in node.attrib.items():
            found.setdefault(f"{path}@{name}", []).append(value)
        texts = found.setdefault(path or element.tag, [])
        if node.text and not node.text.isspace():
            texts.append(node.text)
        for child in node:
            if child.tail and not child.tail.isspace():
                texts.append(child.tail)
            pending.append((child, f"{path}/{child.tag}" if path else child.tag))
    return {path: texts[0] if len(texts) == 1 else texts for path, texts in found.items()}


def _attr(element: ET.Element, child: str, name: str) -> str | None:
    found = element.find(child)
    return None if found is None else found.get(name)


def _text(element: ET.Element | None) -> str | None:
    return None if element is None or element.text is None else element.text.strip()


def _total(fields: Mapping[str, object]) -> int:
    """``Amount/Total``, checked against Subtotal + Taxes when the Subtotal is given."""
    total = f.digits(fields, "Amount/Total")
    if fields.get("Amount/Subtotal") is None:
        return total
    parts = f.digits(fields, "Amount/Subtotal") + sum(
        f.digits(fields, name) for name in fields if name.startswith(_TAX)
    )
    if parts != total:
        raise f.FieldProblem("Amount/Total", f"{total} is not Subtotal + Tax ({parts})")
    return total


def generate(
    persons: Sequence[str],
    stores: Sequence[tuple[str, str]],
    n: int,
    seed: int,
    start: dt.datetime,
    end: dt.datetime,
) -> list[bytes]:
    """``n`` CarrierPay notifications, one transaction each, the same bytes for the same seed.

    Purchases taxed at 10%, 8% (food) or both; about 1.5% are partial refunds of earlier
    payments (some items of the basket, at the rate of its first tax line).
    """
    rng = random.Random(seed)
    names = _synth.store_names(seed, stores)
    planned = _synth.plan(rng, persons, stores, n, start, end, charge_share=0.0)
    seen: set[str] = set()
    ids = [_synth.unique_id(rng, _payment_id, seen) for _ in planned]
    baskets: dict[int, dict[int, int]] = {}
    bodies = []
    for i, item in enumerate(planned):
        root = ET.Element(_ROOT, version="1.0")
        if item.original is None:
            baskets[i] = basket = _basket(rng, item.amount)
            element = ET.SubElement(root, "Payment", id=ids[i])
        else:
            rate, taxable = next(iter(baskets[item.original].items()))
            basket = {rate: _synth.partial(rng, taxable)}
            element = ET.SubElement(root, "Refund", id=ids[i], paymentId=ids[item.original])
        ET.SubElement(ET.SubElement(element, "Subscriber"), "MyKeyId").text = item.person
        ET.SubElement(element, "ProcessedAt").text = item.at.astimezone(f.JST).isoformat()
        if item.original is None and item.store is not None:
            merchant = ET.SubElement(element, "Merchant", code=item.store[0])
            ET.SubElement(merchant, "Name").text = names[item.store[0]]
            ET.SubElement(merchant, "LocalGovernmentCode").text = item.store[1]
        _amount(element, basket)
        ET.indent(root)
        bodies.append(ET.tostring(root, encoding="utf-8", xml_declaration=True))
    return bodies


def _basket(rng: random.Random, subtotal: int) -> dict[int, int]:
    """Taxable amounts by rate: all 10%, all 8%, or a mixed basket."""
    draw = rng.random()
    if draw < 0.55 or subtotal < 200:
        return {10: subtotal}
    if draw < 0.8:
        return {8: subtotal}
    food = rng.randrange(100, subtotal, 10) if subtotal > 110 else subtotal // 2
    return {10: subtotal - food, 8: food}


def _amount(element: ET.Element, basket: Mapping[int, int]) -> None:
    amount = ET.SubElement(element, "Amount", currency="JPY")
    ET.SubElement(amount, "Subtotal").text = str(sum(basket.values()))
    taxes = {rate: taxable * rate // 100 for rate, taxable in basket.items()}
    for rate, tax in taxes.items():
        ET.SubElement(amount, "Tax", rate=str(rate)).text = str(tax)
    ET.SubElement(amount, "Total").text = str(sum(basket.values()) + sum(taxes.values()))


def _payment_id(rng: random.Random) -> str:
    return f"CP{rng.randrange(10**10):010d}"

"""Canonical events: validation, the My Number guard, JST days."""

from __future__ import annotations

import datetime as dt
import warnings

import orjson
import pytest

from pointengine.errors import MalformedEvent, MyNumberRejected, UnknownMunicipality
from pointengine.model.events import Purchase, parse_event
from pointengine.model.fastparse import FastParser
from pointengine.model.privacy import is_my_number, my_number_check_digit, redact

PURCHASE = {"type": "purchase", "source": "paypay", "id": "t1", "person": "MK-1",
            "at": "2022-02-01T10:00:00+09:00", "provider": "paypay", "amount": 1200,
            "store": "S1", "store_municipality": "131016"}


def line(**changes: object) -> bytes:
    return orjson.dumps({**PURCHASE, **changes})


def test_a_valid_purchase_parses() -> None:
    event = parse_event(line())
    assert isinstance(event, Purchase)
    assert (event.amount, event.key, event.day) == (1200, "paypay/t1", dt.date(2022, 2, 1))


def test_the_day_is_the_jst_day() -> None:
    assert parse_event(line(at="2022-01-31T15:00:00+00:00")).day == dt.date(2022, 2, 1)


def test_a_timestamp_without_offset_is_refused() -> None:
    with pytest.raises(MalformedEvent, match="at"):
        parse_event(line(at="2022-02-01T10:00:00"))


@pytest.mark.parametrize("amount", [12.5, 1200.0, "1200", 0, -5])
def test_amounts_are_positive_integer_yen(amount: object) -> None:
    with pytest.raises(MalformedEvent, match="amount"):
        parse_event(line(amount=amount))


def test_unknown_fields_and_types_are_refused() -> None:
    with pytest.raises(MalformedEvent, match="colour"):
        parse_event(line(colour="red"))
    with pytest.raises(MalformedEvent):
        parse_event(line(type="teleport"))
    with pytest.raises(MalformedEvent):
        parse_event(b"{not json")


def test_unknown_municipality_is_its_own_error_with_a_suggestion() -> None:
    with pytest.raises(UnknownMunicipality, match="did you mean 131016"):
        parse_event(line(store_municipality="131017"))


def test_my_number_check_digit() -> None:
    # Worked example: 12345678901 -> check digit 8.
    assert my_number_check_digit("12345678901") == 8
    assert is_my_number("123456789018")
    assert not is_my_number("123456789017")
    assert not is_my_number("12345678901")


def test_a_my_number_as_person_is_rejected_and_not_repeated() -> None:
    with pytest.raises(MyNumberRejected) as caught:
        parse_event(line(person="123456789018"))
    assert "123456789018" not in str(caught.value)


def test_a_my_number_anywhere_in_the_input_is_rejected() -> None:
    with pytest.raises(MyNumberRejected):
        parse_event(line(store="123456789018"))


def test_twelve_digits_without_a_valid_check_digit_are_a_valid_mykey_id() -> None:
    assert parse_event(line(person="123456789017")).person == "123456789017"


@pytest.mark.parametrize("field, value", [
    ("person", "MK7Q2X9\n"), ("id", "t1\n"), ("source", "paypay\n"), ("store", "S1\n"),
    ("person", "-MK"), ("id", "t 1"), ("id", "x" * 65),
])
def test_an_id_of_the_wrong_form_is_refused_by_both_paths(field: str, value: str) -> None:
    raw = line(**{field: value})
    assert FastParser().parse(raw) is None
    with pytest.raises(MalformedEvent, match=f"{field}.*starting with a letter or digit"):
        parse_event(raw)


def test_redact_masks_every_twelve_digit_run() -> None:
    assert redact(b'{"person":"123456789018"}') == b'{"person":"************"}'


APPLY = {"type": "mynapoint_application", "source": "mykey", "id": "a1", "person": "MK-1",
         "at": "2022-01-10T09:30:00+09:00", "phase": 2, "provider": "paypay",
         "card_applied_on": "2021-12-01", "residence": "131016"}


def application(**changes: object) -> bytes:
    return orjson.dumps({**APPLY, **changes})


@pytest.mark.parametrize("at", [
    1643684400, 1643684400.0, "1643684400", "2022-02-01", "2022-02-01T12:00:00",
    "2022-02-01 12:00:00+09:00", "2022-02-01t12:00:00+09:00", "2022-02-01T12:00:00z",
    "2022-02-01T12:00+09:00", "2022-02-01T12:00:00+0900", "2022-02-01T12:00:00+09",
    "2022-02-01T12:00:00.1234567+09:00", "2022-02-01T12:00:00-00:00", "2022-02-30T12:00:00Z",
    "2022-02-01T24:00:00Z", "2022-02-01T12:00:00+24:00", "0001-01-01T00:00:00+09:00",
    "9999-12-31T23:59:59-09:00", " 2022-02-01T12:00:00Z", None, True, ["2022-02-01T12:00:00Z"],
])
def test_a_timestamp_is_exactly_rfc_3339_with_an_offset(at: object) -> None:
    for raw in (line(at=at), application(at=at)):
        with pytest.raises(MalformedEvent, match=r"\.at: "):
            parse_event(raw)


@pytest.mark.parametrize(("at", "jst"), [
    ("2022-02-01T03:00:00Z", "2022-02-01T12:00:00+09:00"),
    ("2022-02-01T12:00:00.5+09:00", "2022-02-01T12:00:00.500000+09:00"),
    ("2022-01-31T22:00:00-05:00", "2022-02-01T12:00:00+09:00"),
    ("0001-01-01T09:00:00+09:00", "0001-01-01T09:00:00+09:00"),
    ("9999-12-31T14:59:59Z", "9999-12-31T23:59:59+09:00"),
])
def test_timestamps_with_an_offset_are_held_in_jst(at: str, jst: str) -> None:
    assert parse_event(line(at=at)).at.isoformat() == jst


@pytest.mark.parametrize("changes", [
    {"phase": True}, {"phase": 2.0}, {"phase": "2"}, {"phase": 3},
    {"card_applied_on": 0}, {"card_applied_on": "2021-12-01T00:00:00"},
    {"card_applied_on": "20211201"}, {"card_applied_on": "2021-02-29"},
    {"birth_date": 19800402}, {"children_birth_dates": ["2020-06-01T00:00:00Z"]},
    {"applied_in_phase1": "yes"}, {"applied_in_phase1": 1}, {"applied_in_phase1": "true"},
])
def test_an_application_takes_exact_types_only(changes: dict[str, object]) -> None:
    with pytest.raises(MalformedEvent, match=next(iter(changes))):
        parse_event(application(**changes))


def test_a_wrongly_typed_phase_is_named_without_repeating_the_value() -> None:
    with pytest.raises(MalformedEvent, match="phase: expected the integer 1 or 2, got a boolean"):
        parse_event(application(phase=True))


def test_a_valid_application_keeps_its_types() -> None:
    event = parse_event(application(phase=1, applied_in_phase1=False, birth_date="1980-04-02",
                                    children_birth_dates=["2020-06-01"]))
    assert (event.phase, event.applied_in_phase1) == (1, False)  # type: ignore[union-attr]
    assert event.children_birth_dates == (dt.date(2020, 6, 1),)  # type: ignore[union-attr]


@pytest.mark.parametrize(("kind", "field"), [("purchase", "store_municipality"),
                                             ("charge", "store_municipality"),
                                             ("participation", "municipality")])
def test_a_store_or_an_activity_is_in_a_municipality_not_a_prefecture(kind: str,
                                                                      field: str) -> None:
    data = {"type": kind, "source": "s", "id": "x1", "person": "MK-1",
            "at": "2022-04-01T00:00:00+09:00", field: "130001"}
    if kind == "participation":
        data["activity"] = "walk"
    else:
        data.update(provider="paypay", amount=100, store="ST1")
    with pytest.raises(MalformedEvent, match=f"{field}: 130001 is a prefecture's code"):
        parse_event(orjson.dumps(data))
    assert FastParser().parse(orjson.dumps(data)) is None  # left to full validation
    data[field] = "131016"
    assert parse_event(orjson.dumps(data)).type == kind


@pytest.mark.parametrize("kind", ["mynapoint_application", "residence_change"])
def test_a_residence_is_a_municipality_not_a_prefecture(kind: str) -> None:
    raw = application(residence="130001") if kind == "mynapoint_application" else orjson.dumps(
        {"type": kind, "source": "juki-net", "id": "m1", "person": "MK-1",
         "at": "2022-04-01T00:00:00+09:00", "residence": "130001"})
    with pytest.raises(MalformedEvent, match="residence: 130001 is a prefecture's code; "):
        parse_event(raw)
    # A designated-city ward is where its residents live; its programs are its city's.
    ward = parse_event(raw.replace(b'"130001"', b'"141011"'))
    assert ward.residence == "141011"  # type: ignore[union-attr]


def test_a_key_given_twice_is_refused() -> None:
    raw = line()[:-1] + b',"amount":5}'
    with pytest.raises(MalformedEvent, match="'amount' is given more than once"):
        parse_event(raw)


def test_a_byte_order_mark_is_named() -> None:
    with pytest.raises(MalformedEvent, match="starts with a byte-order mark"):
        parse_event(b"\xef\xbb\xbf" + line())


def test_an_event_serializes_as_rfc_3339_without_warnings() -> None:
    event = parse_event(orjson.dumps(
        {"type": "purchase", "source": "s", "id": "x1", "person": "MK-1",
         "at": "2022-02-01T00:33:11.5Z", "provider": "paypay", "amount": 100, "store": "ST1",
         "store_municipality": "131016"}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # each warning cost more than the serializing
        assert event.model_dump(mode="json")["at"] == "2022-02-01T09:33:11.500000+09:00"
        assert parse_event(event.model_dump_json().encode()) == event


def test_a_deeply_nested_line_is_malformed_not_a_crash() -> None:
    nested = b'{"type":"purchase","x":' + b"[" * 1000 + b'"\\\\u0031"' + b"]" * 1000 + b"}"
    with pytest.raises(MalformedEvent):
        parse_event(nested)

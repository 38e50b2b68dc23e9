"""Reading native fields: timestamps are RFC 3339 with an offset, and within the engine's range."""

from __future__ import annotations

import datetime as dt

import pytest

from pointengine.adapters import _fields as f

JST = dt.timezone(dt.timedelta(hours=9))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2022-03-01T12:34:56+09:00", dt.datetime(2022, 3, 1, 12, 34, 56, tzinfo=JST)),
        ("2022-03-01T03:34:56Z", dt.datetime(2022, 3, 1, 3, 34, 56, tzinfo=dt.UTC)),
        ("2022-03-01t03:34:56z", dt.datetime(2022, 3, 1, 3, 34, 56, tzinfo=dt.UTC)),
        ("2022-03-01T12:34:56.250+09:00",
         dt.datetime(2022, 3, 1, 12, 34, 56, 250_000, tzinfo=JST)),
        ("0001-01-01T09:00:00+09:00", dt.datetime(1, 1, 1, 9, tzinfo=JST)),
    ],
)
def test_rfc3339_timestamps_are_read(value: str, expected: dt.datetime) -> None:
    assert f.iso_datetime({"at": value}, "at") == expected


@pytest.mark.parametrize(
    "value",
    [
        "2022-W09-2T12:00:00+09:00",  # ISO week date
        "2022-060T12:00:00+09:00",  # ISO ordinal date
        "20220301T123456+0900",  # ISO basic format
        "2022-03-01 12:34:56+09:00",  # no "T"
        "2022-03-01T12:34+09:00",  # no seconds
        "2022-03-01T12:34:56+0900",  # offset without a colon
        "2022-03-01T12:34:56+09",
        "２０２２-03-01T12:34:56+09:00",  # full-width digits
        "2022-03-01",
    ],
)
def test_other_iso_8601_forms_are_refused(value: str) -> None:
    with pytest.raises(f.FieldProblem, match=r"^at: not an RFC 3339 timestamp"):
        f.iso_datetime({"at": value}, "at")


def test_a_timestamp_without_offset_says_so() -> None:
    with pytest.raises(f.FieldProblem, match="no UTC offset"):
        f.iso_datetime({"at": "2022-03-01T12:34:56"}, "at")


def test_an_impossible_date_is_refused() -> None:
    with pytest.raises(f.FieldProblem, match="not a valid timestamp"):
        f.iso_datetime({"at": "2022-02-30T12:34:56+09:00"}, "at")


@pytest.mark.parametrize(
    "value",
    ["0001-01-01T00:00:00+09:00", "0001-01-01T08:59:59+09:00", "9999-12-31T23:00:00Z",
     "9999-12-31T23:59:59-01:00"],
)
def test_an_instant_the_engine_cannot_hold_is_out_of_range(value: str) -> None:
    with pytest.raises(f.FieldProblem, match=r"^at: .* is out of range"):
        f.iso_datetime({"at": value}, "at")


def test_a_local_timestamp_the_engine_cannot_hold_is_out_of_range() -> None:
    fields = {"at": "0001/01/01 00:00:00"}
    with pytest.raises(f.FieldProblem, match=r"^at: .* is out of range"):
        f.local_datetime(fields, "at", "%Y/%m/%d %H:%M:%S")
    assert f.local_datetime({"at": "0001/01/01 09:00:00"}, "at", "%Y/%m/%d %H:%M:%S").year == 1


@pytest.mark.parametrize("value", ["12\n", "1 2", "+12", "", "1" * 13, "-5"])
def test_digits_are_digits_only(value: str) -> None:
    with pytest.raises(f.FieldProblem, match="amount"):
        f.digits({"amount": value}, "amount")


def test_digits_read_an_integer_and_a_signed_one() -> None:
    assert f.digits({"n": "0012"}, "n") == 12
    assert f.digits({"n": "-5"}, "n", signed=True) == -5

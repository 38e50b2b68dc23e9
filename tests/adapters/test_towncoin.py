"""TownCoin: a daily CSV file, Shift_JIS or UTF-8 with BOM, Japanese headers, JST timestamps."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from pointengine.adapters.towncoin import TownCoinAdapter, generate
from pointengine.errors import MalformedEvent, MyNumberRejected, UnknownMunicipality
from pointengine.model.events import Charge, Purchase, Refund, parse_event
from tests.adapters.conftest import GROUPINGS

JST = dt.timezone(dt.timedelta(hours=9))
HEADER = "取引ID,会員ID,取引種別,金額,取引日時,加盟店コード,加盟店名,加盟店所在地コード,元取引ID"
LINES = [
    "TWN20220301000001,MKA7Q2X9,チャージ,3000,2022/03/01 09:12:45,S0001,山田商店 千代田店,131016,",
    "TWN20220301000002,MKB4K8P1,チャージ,5000,2022/03/01 09:40:02,,,,",
    "TWN20220301000003,MKA7Q2X9,支払,1280,2022/03/01 12:34:56,S0003,佐藤食堂 厚真町店,015814,",
    "TWN20220301000004,MKA7Q2X9,取消,1280,2022/03/01 13:00:00,,,,TWN20220301000003",
]


# The groupings a Shift_JIS file can hold (no no-break space, zero-width space or soft hyphen).
SHIFT_JIS = {name: value for name, value in GROUPINGS.items()
             if value.encode("cp932", "ignore").decode("cp932") == value}


@pytest.fixture(params=list(SHIFT_JIS.values()), ids=list(SHIFT_JIS))
def my_number(request: pytest.FixtureRequest) -> str:
    """A valid My Number, grouped in each way a Shift_JIS file can write it."""
    value: str = request.param
    return value


def csv_file(*lines: str, encoding: str = "cp932", header: str = HEADER) -> bytes:
    return "".join(f"{line}\r\n" for line in (header, *lines)).encode(encoding)


def expected() -> list[object]:
    common = {"source": "towncoin", "provider": "towncoin"}
    return [
        Charge(id="TWN20220301000001", person="MKA7Q2X9", amount=3000, store="S0001",
               at=dt.datetime(2022, 3, 1, 9, 12, 45, tzinfo=JST),
               store_municipality="131016", **common),
        Charge(id="TWN20220301000002", person="MKB4K8P1", amount=5000,
               at=dt.datetime(2022, 3, 1, 9, 40, 2, tzinfo=JST), **common),
        Purchase(id="TWN20220301000003", person="MKA7Q2X9", amount=1280, store="S0003",
                 at=dt.datetime(2022, 3, 1, 12, 34, 56, tzinfo=JST),
                 store_municipality="015814", **common),
        Refund(id="TWN20220301000004", person="MKA7Q2X9", amount=1280,
               at=dt.datetime(2022, 3, 1, 13, 0, tzinfo=JST),
               transaction="TWN20220301000003", **common),
    ]


@pytest.mark.parametrize("encoding", ["cp932", "utf-8-sig"])
def test_file_becomes_charges_purchases_and_refunds(encoding: str) -> None:
    events = TownCoinAdapter().to_events(csv_file(*LINES, encoding=encoding))
    assert events == expected()
    assert all(e.at.utcoffset() == dt.timedelta(hours=9) for e in events)


def test_columns_in_another_order_and_extra_columns() -> None:
    header = "会員ID,取引ID,備考,取引種別,金額,取引日時,加盟店所在地コード,加盟店コード,元取引ID"
    line = "MKA7Q2X9,TWN20220301000003,,支払,1280,2022/03/01 12:34:56,015814,S0003,"
    assert TownCoinAdapter().to_events(csv_file(line, header=header)) == [expected()[2]]


def test_adapter_declares_provider_and_content_type() -> None:
    assert TownCoinAdapter.provider_id == "towncoin"
    assert TownCoinAdapter.content_type == "text/csv"


@pytest.mark.parametrize(
    ("line", "field"),
    [
        (LINES[2].replace(",1280,", ",1280.0,"), "金額"),
        (LINES[2].replace(",1280,", ",-1280,"), "金額"),
        (LINES[2].replace(",1280,", ",0,"), "金額"),
        (LINES[2].replace("2022/03/01 12:34:56", "2022-03-01T12:34:56"), "取引日時"),
        (LINES[2].replace("2022/03/01 12:34:56", "0001/01/01 00:00:00"),
         "取引日時: .* out of range"),
        (LINES[2].replace("支払", "返金"), "取引種別"),
        (LINES[2].replace("S0003", ""), "加盟店コード: missing"),
        (LINES[3].replace("TWN20220301000003", ""), "元取引ID: missing"),
        (LINES[0] + "TWN1", "元取引ID"),
        (LINES[1] + ",extra", "10 columns, the header has 9"),
        ('TWN1,"MKA7Q2X9,チャージ', "not a CSV line"),
    ],
)
def test_malformed_line_names_the_line_and_field(line: str, field: str) -> None:
    with pytest.raises(MalformedEvent, match=rf"towncoin line 3\b.*{field}"):
        TownCoinAdapter().to_events(csv_file(LINES[0], line))


@pytest.mark.parametrize(
    "payload",
    [b"", "取引ID,会員ID\r\n".encode("cp932"), csv_file(header=HEADER.replace("金額", "額"))],
)
def test_a_file_without_a_usable_header_is_refused_whole(payload: bytes) -> None:
    with pytest.raises(MalformedEvent, match=r"towncoin file: line 1 \(header\)"):
        TownCoinAdapter().to_events_lenient(payload)


def test_my_number_as_member_id_is_rejected_without_echo(my_number: str) -> None:
    with pytest.raises(MyNumberRejected, match="towncoin line 2") as caught:
        TownCoinAdapter().to_events(csv_file(LINES[0].replace("MKA7Q2X9", my_number)))
    assert my_number not in str(caught.value)


def full_width(digits: str) -> str:
    return digits.translate(str.maketrans("0123456789", "０１２３４５６７８９"))


@pytest.mark.parametrize("encoding", ["cp932", "utf-8-sig"])
@pytest.mark.parametrize("written", [str, full_width])
def test_my_number_in_the_store_name_is_rejected_without_echo(
    my_number: str, encoding: str, written: Callable[[str], str]
) -> None:
    line = LINES[0].replace("山田商店 千代田店", f"山田商店 {written(my_number)}")
    with pytest.raises(MyNumberRejected, match=r"towncoin line 2 .*加盟店名") as caught:
        TownCoinAdapter().to_events(csv_file(line, encoding=encoding))
    assert my_number not in str(caught.value) and full_width(my_number) not in str(caught.value)


def test_my_number_in_an_extra_column_or_an_unreadable_line_is_rejected_alone(
    my_number: str,
) -> None:
    header = HEADER + ",備考"
    noted = LINES[1] + f",会員 {my_number}"
    short = f"TWN9,{my_number},チャージ"
    unquoted = f'TWN8,"MKA7Q2X9 {my_number}'
    payload = csv_file(LINES[0] + ",", noted, short, unquoted, LINES[2] + ",", header=header)
    events, rejects = TownCoinAdapter().to_events_lenient(payload)
    assert [e.id for e in events] == ["TWN20220301000001", "TWN20220301000003"]
    assert [line for line, _ in rejects] == [3, 4, 5]
    assert all("carries a My Number" in reason and my_number not in reason
               for _, reason in rejects)
    assert "備考" in rejects[0][1]


def test_my_number_in_the_header_refuses_the_file(my_number: str) -> None:
    with pytest.raises(MyNumberRejected, match=r"towncoin file: line 1 \(header\)") as caught:
        TownCoinAdapter().to_events_lenient(
            csv_file(LINES[0] + ",", header=f"{HEADER},{my_number}"))
    assert my_number not in str(caught.value)


def test_unknown_municipality_names_the_native_field() -> None:
    with pytest.raises(UnknownMunicipality, match=r"line 2 .*加盟店所在地コード"):
        TownCoinAdapter().to_events(csv_file(LINES[0].replace("131016", "131017")))


def test_lenient_conversion_returns_the_rest_and_the_bad_line_number() -> None:
    bad = LINES[2].replace(",1280,", ",千二百八十,")
    payload = csv_file(LINES[0], LINES[1], bad, LINES[3])
    events, rejects = TownCoinAdapter().to_events_lenient(payload)
    assert events == [expected()[0], expected()[1], expected()[3]]
    assert len(rejects) == 1 and rejects[0][0] == 4 and "金額" in rejects[0][1]


def test_a_timestamp_out_of_range_is_rejected_alone_in_lenient_mode() -> None:
    bad = LINES[2].replace("2022/03/01 12:34:56", "0001/01/01 00:00:00")
    events, rejects = TownCoinAdapter().to_events_lenient(csv_file(LINES[0], bad, LINES[1]))
    assert events == expected()[:2]
    assert len(rejects) == 1 and rejects[0][0] == 3 and "out of range" in rejects[0][1]


def test_a_line_in_another_encoding_is_rejected_alone(my_number: str) -> None:
    good = csv_file(LINES[0], LINES[1])
    stray = LINES[2].replace("佐藤食堂", "佐藤☃食堂").encode("utf-8") + b"\r\n"
    my_number_line = LINES[3].replace("MKA7Q2X9", my_number).encode("cp932") + b"\r\n"
    events, rejects = TownCoinAdapter().to_events_lenient(good + stray + b"\r\n" + my_number_line)
    assert events == expected()[:2]
    assert [line for line, _ in rejects] == [4, 6]
    assert "Shift_JIS" in rejects[0][1] and my_number not in rejects[1][1]


def test_generated_file_round_trips(
    persons: tuple[str, ...], stores: tuple[tuple[str, str], ...],
    window: tuple[dt.datetime, dt.datetime],
) -> None:
    payload = generate(persons, stores, 800, 13, *window)
    assert payload.decode("cp932").startswith(HEADER + "\r\n")
    events, rejects = TownCoinAdapter().to_events_lenient(payload)
    assert rejects == [] and len(events) == 800
    assert {e.type for e in events} == {"charge", "purchase", "refund"}
    assert all(parse_event(e.model_dump_json()) == e for e in events)
    assert any(isinstance(e, Charge) and e.store is None for e in events)
    by_id = {e.id: e for e in events}
    for refund in (e for e in events if isinstance(e, Refund)):
        assert refund.amount == by_id[refund.transaction].amount  # type: ignore[union-attr]


def test_generated_file_in_utf8_with_bom(
    persons: tuple[str, ...], stores: tuple[tuple[str, str], ...],
    window: tuple[dt.datetime, dt.datetime],
) -> None:
    payload = generate(persons, stores, 100, 13, *window, encoding="utf-8-sig")
    assert payload.startswith(b"\xef\xbb\xbf")
    cp932 = TownCoinAdapter().to_events(generate(persons, stores, 100, 13, *window))
    assert TownCoinAdapter().to_events(payload) == cp932


def test_generation_is_deterministic_for_a_seed(
    persons: tuple[str, ...], stores: tuple[tuple[str, str], ...],
    window: tuple[dt.datetime, dt.datetime],
) -> None:
    assert generate(persons, stores, 50, 3, *window) == generate(persons, stores, 50, 3, *window)
    assert generate(persons, stores, 50, 3, *window) != generate(persons, stores, 50, 4, *window)

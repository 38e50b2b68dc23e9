"""The My Number guard: found wherever it appears, standalone runs of exactly 12 digits only."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pointengine.model.privacy import (
    carries_my_number,
    is_my_number,
    my_number_check_digit,
    plain_digits,
    redact,
)
from pointengine.model.scan import suspects

FIRST_ELEVEN = "12345678901"
VALID = FIRST_ELEVEN + str(my_number_check_digit(FIRST_ELEVEN))
WRONG = FIRST_ELEVEN + str((int(VALID[-1]) + 1) % 10)


def test_a_valid_my_number_is_found_anywhere_in_a_line() -> None:
    assert is_my_number(VALID) and not is_my_number(WRONG)
    for line in (f'{{"person":"{VALID}"}}', f"x{VALID}y", f"{VALID}", f'"a":1,"b":"{VALID}"'):
        assert carries_my_number(line.encode())


def test_other_digit_runs_are_not_my_numbers() -> None:
    for line in (f'{{"person":"{WRONG}"}}', f"1{VALID}", f"{VALID}0", "12345678901", ""):
        assert not carries_my_number(line.encode())


@given(st.binary(max_size=200), st.binary(max_size=200))
def test_a_my_number_between_non_digits_is_always_found(before: bytes, after: bytes) -> None:
    line = before + b"-" + VALID.encode() + b"-" + after
    assert carries_my_number(line)
    assert VALID.encode() not in redact(line)


ESCAPED = "\\u0031" + VALID[1:]  # "1" written as a JSON escape: the parser reads VALID
FULL_WIDTH = VALID.translate({ord("0") + d: 0xFF10 + d for d in range(10)})


@pytest.mark.parametrize("written", [
    ESCAPED, "".join(f"\\u{ord(c):04x}" for c in VALID), VALID[:6] + "\\u0037" + VALID[7:],
    FULL_WIDTH, "\U0001d7cf" + VALID[1:], "\\ud835\\udfcf" + VALID[1:],
    "".join(chr(0x0660 + int(c)) for c in VALID),
])
def test_a_my_number_written_another_way_is_found_and_masked(written: str) -> None:
    line = f'{{"person":"MK-1","id":"{written}"}}'.encode()
    assert carries_my_number(line)
    masked = redact(line)
    assert masked == b'{"person":"MK-1","id":"************"}'
    assert not carries_my_number(masked)
    assert is_my_number(json.loads(line)["id"])


def test_decoding_leaves_everything_but_digits_as_it_was() -> None:
    line = '{"store":"ファミマ\\u00e9","n":"\\u0031\\u0032"}'.encode() + b"\xff"
    assert plain_digits(line) == '{"store":"ファミマ\\u00e9","n":"12"}'.encode() + b"\xff"
    assert not carries_my_number(line)
    wrong = FULL_WIDTH[:-1] + "７"
    assert not carries_my_number(wrong.encode()) and not is_my_number(wrong)


GROUPED = f"{VALID[:4]} {VALID[4:8]} {VALID[8:]}"


@pytest.mark.parametrize("written", [
    GROUPED, GROUPED.replace(" ", "-"), FULL_WIDTH[:4] + "-" + FULL_WIDTH[4:8] + "-" + VALID[8:],
])
def test_a_my_number_written_as_the_card_prints_it_is_found_and_masked(written: str) -> None:
    line = f'{{"person":"MK-1","store":"{written}"}}'.encode()
    assert carries_my_number(line)
    assert is_my_number(json.loads(line)["store"])
    sep = "-" if "-" in written else " "
    assert redact(line) == f'{{"person":"MK-1","store":"****{sep}****{sep}****"}}'.encode()


@pytest.mark.parametrize("text", [
    f"{WRONG[:4]} {WRONG[4:8]} {WRONG[8:]}",  # a wrong check digit
    f"4111 {GROUPED}", f"{GROUPED} 4111", f"{GROUPED.replace(' ', '-')}-4111",  # 16 digits
    f"1{GROUPED}", f"{GROUPED}0", "090-1234-5678",
])
def test_other_groups_of_digits_are_not_my_numbers(text: str) -> None:
    assert not carries_my_number(text.encode())
    assert not is_my_number(text)


@given(st.text(max_size=60))
def test_other_digits_are_found_as_normalising_the_whole_text_finds_them(text: str) -> None:
    import re
    import unicodedata

    from pointengine.model.privacy import _other_digits

    whole = len(re.findall(r"\d", unicodedata.normalize("NFKC", text)))
    assert _other_digits(text) == (whole != len(re.findall(r"[0-9]", text)))


FOURS = (VALID[:4], VALID[4:8], VALID[8:])
SEPARATED = {
    "colons": ":".join(FOURS), "dots": ".".join(FOURS), "underscores": "_".join(FOURS),
    "threes": "-".join(VALID[i:i + 3] for i in range(0, 12, 3)),
    "ideographic space": "\u3000".join(FOURS), "no-break space": "\u00a0".join(FOURS),
    "full-width hyphen": "\uff0d".join(FOURS), "tab": "\t".join(FOURS),
    "zero-width space": "\u200b".join(FOURS), "soft hyphen": "\u00ad".join(FOURS),
    "long vowel mark": "ー".join(FOURS), "slashes": "/".join(FOURS),
    "spaced hyphen": " - ".join(FOURS), "two spaces": "  ".join(FOURS),
    "after an id": "MK9 " + ":".join(FOURS), "mixed": f"{VALID[:4]} {VALID[4:8]}-{VALID[8:]}",
    "direction marks": "\u200e".join(FOURS), "variation selector": "\ufe0f".join(FOURS),
}


@pytest.mark.parametrize("written", list(SEPARATED.values()), ids=list(SEPARATED))
def test_a_my_number_however_separated_is_found_and_masked(written: str) -> None:
    for line in (f'{{"person":"MK-1","store":"{written}"}}',
                 json.dumps({"person": "MK-1", "store": written}),  # escaped: \\t, \\u3000
                 json.dumps({"store": written}, ensure_ascii=False)):
        assert carries_my_number(line.encode()), line
        masked = redact(line.encode())
        assert not carries_my_number(masked)
        assert VALID[:4].encode() not in masked and VALID[8:].encode() not in masked
    assert is_my_number(written) == (not written.startswith("MK"))


@pytest.mark.parametrize("text", [
    ":".join((WRONG[:4], WRONG[4:8], WRONG[8:])),  # a wrong check digit
    f"{VALID[:6]} {VALID[6:]}", "-".join(VALID),  # not the card's layouts
    f"{VALID[:4]}    {VALID[4:8]}    {VALID[8:]}",  # four spaces: not one number
    f"9 {GROUPED}",  # 13 digits with one separator throughout
    f"{VALID[:4]}\n{VALID[4:8]}\n{VALID[8:]}",  # line breaks separate lines, not groups
])
def test_groups_that_are_not_one_my_number(text: str) -> None:
    assert not carries_my_number(text.encode())
    assert not is_my_number(text)


@given(st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2999, 12, 31)),
       st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=9)), None]))
def test_no_date_or_time_is_taken_for_a_my_number(moment: dt.datetime,
                                                  zone: dt.tzinfo | None) -> None:
    """Dates and times mix their separators; a My Number's groups share one."""
    moment = moment.replace(tzinfo=zone)
    for text in (moment.isoformat(), moment.isoformat(sep=" "),
                 moment.isoformat().replace("+00:00", "Z"),
                 moment.strftime("%Y/%m/%d %H:%M:%S"), moment.strftime("%Y/%m/%d %H:%M"),
                 moment.strftime("%Y-%m-%d %H:%M:%S.%f")):
        assert not carries_my_number(f'{{"at":"{text}"}}'.encode()), text


@given(st.uuids(), st.integers(0, 99_999_999), st.integers(0, 9_999),
       st.integers(1_000_000_000, 9_999_999_999), st.integers(0, 99))
def test_ids_phone_numbers_and_times_are_not_taken_for_my_numbers(
        uuid: object, eight: int, four: int, seconds: int, hundredths: int) -> None:
    """Values providers send every day that group 12 digits otherwise than a card does."""
    for text in (str(uuid), f"QP-{uuid}", f"{eight:08d}-{four:04d}", f"{eight:08d}_{four:04d}",
                 f"+81-90-{four:04d}-{eight % 10_000:04d}",
                 f"+81 90 {four:04d} {eight % 10_000:04d}",
                 f"{seconds}.{hundredths:02d}", f"2022-07-19-{four:04d}",
                 f"2022.07.15.{four:04d}"):
        assert not carries_my_number(json.dumps({"id": text}).encode()), text


# The compiled prefilter a replay runs first: it may pass a line only when the guard would.
_PIECES = st.sampled_from([b"0", b"7", b"1234", b"5678", b"9018", b" ", b"-", b'"', b",", b"x",
                           b":", b".", b"_", b"/", b"\t", b"  ", b"\n",
                           b"\\", "１".encode(), VALID.encode(), GROUPED.encode(),
                           "\u3000".encode()])


@given(st.lists(st.one_of(_PIECES, st.binary(max_size=6)), max_size=30))
def test_the_replay_prefilter_passes_no_line_the_guard_would_refuse(pieces: list[bytes]) -> None:
    line = b"".join(pieces)
    if carries_my_number(line):
        assert suspects([b"plain", line]) == [1]


def test_the_replay_prefilter_passes_ordinary_lines() -> None:
    plain = b'{"type":"purchase","id":"p500000","at":"2022-12-07T19:44:19+09:00","amount":1341}'
    assert suspects([plain, VALID.encode(), GROUPED.encode(), b"12345 6789 01234"]) == [1, 2, 3]

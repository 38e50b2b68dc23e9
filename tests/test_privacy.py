"""The My Number guard: found wherever it appears, standalone runs of exactly 12 digits only."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pointengine.privacy import carries_my_number, is_my_number, my_number_check_digit, redact

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

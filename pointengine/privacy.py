"""The My Number guard: a My Number is never stored, logged or echoed.

Persons are MyKey IDs. A value of exactly 12 digits whose last digit is a valid My Number check
digit (個人番号の検査用数字, the MIC ordinance's weights) is treated as a My Number wherever it
appears, and the input carrying it is rejected without repeating the value.
"""

from __future__ import annotations

import re

_TWELVE_DIGITS = re.compile(rb"(?<![0-9])[0-9]{12}(?![0-9])")
# Maximal runs of 12 or more digits: twice as fast to scan for as the lookarounds above, and a
# run of exactly 12 is a standalone one.
_DIGIT_RUNS = re.compile(rb"[0-9]{12,}")
# Every digit as "0", everything else as a space: a run of 12 digits is then found by
# bytes.find, several times faster than any regular expression, and most input has none.
_DIGITS_AS_ZEROS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_TWELVE_ZEROS = b"0" * 12


def my_number_check_digit(first_eleven: str) -> int:
    """The check digit for the first 11 digits of a My Number."""
    total = 0
    for n, char in enumerate(reversed(first_eleven), start=1):
        weight = n + 1 if n <= 6 else n - 5
        total += int(char) * weight
    remainder = total % 11
    return 0 if remainder <= 1 else 11 - remainder


def is_my_number(value: str) -> bool:
    """True when ``value`` is 12 digits with a valid My Number check digit."""
    if len(value) != 12 or not value.isascii() or not value.isdigit():
        return False
    return my_number_check_digit(value[:11]) == int(value[11])


def carries_my_number(raw: bytes) -> bool:
    """True when any standalone run of 12 digits in ``raw`` is a valid My Number."""
    if raw.translate(_DIGITS_AS_ZEROS).find(_TWELVE_ZEROS) < 0:
        return False
    return any(m.end() - m.start() == 12 and is_my_number(m.group().decode())
               for m in _DIGIT_RUNS.finditer(raw))


def redact(raw: bytes) -> bytes:
    """``raw`` with every 12-digit run masked, so a reject file never repeats a My Number."""
    return _TWELVE_DIGITS.sub(b"************", raw)

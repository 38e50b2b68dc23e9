"""The My Number guard: a My Number is never stored, logged or echoed.

Persons are MyKey IDs. A value of exactly 12 digits whose last digit is a valid My Number check
digit (個人番号の検査用数字, the MIC ordinance's weights) is treated as a My Number wherever it
appears, and the input carrying it is rejected without repeating the value. So are 12 such
digits written as the card prints them, in three groups of four separated by one space or one
hyphen, the same twice (``1234 5678 9018``, ``1234-5678-9018``; a hyphen is allowed in ids); a
group of four next to more digit groups (a 16-digit card number) is not one.

A digit is anything that reads as one once the input is decoded: a JSON ``\\u`` escape of a
digit (``"\\u0031..."`` is ``"1..."`` to every JSON parser), and any character that NFKC
normalises to ASCII digits or that Unicode calls a decimal digit (full-width ``１``, ``①``,
``𝟏``, ``١``). Input that is plain ASCII without a backslash, which is nearly all of it, is
scanned as bytes; only the rest pays for decoding. An escaped backslash followed by ``u`` and
four hex digits is read as an escape too: that can only find a My Number that is not there,
never miss one.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_TWELVE_DIGITS = re.compile(rb"(?<![0-9])[0-9]{12}(?![0-9])")
# Maximal runs of 12 or more digits: twice as fast to scan for as the lookarounds above, and a
# run of exactly 12 is a standalone one.
_DIGIT_RUNS = re.compile(rb"[0-9]{12,}")
# Every digit as "0", everything else as a space: a run of 12 digits is then found by
# bytes.find, several times faster than any regular expression, and most input has none.
_DIGITS_AS_ZEROS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_TWELVE_ZEROS = b"0" * 12
_GROUPED_ZEROS = b"0000 0000 0000"  # the prefilter of _GROUPED (every non-digit is a space)
_GROUPED = re.compile(rb"(?<![0-9])(?<![0-9][ -])([0-9]{4})([ -])([0-9]{4})\2([0-9]{4})"
                      rb"(?![0-9])(?![ -][0-9])")
_GROUPED_TEXT = re.compile(r"([0-9]{4})([ -])([0-9]{4})\2([0-9]{4})")
_MASK = b"*" * 12
# Whether a line has a backslash at all: an int is looked for with memchr, several times faster
# than looking for b"\\u", and few lines have any backslash.
_BACKSLASH = ord("\\")

# A surrogate pair first, so that an escaped astral character (𝟏) is read as one character.
_ESCAPE = re.compile(r"\\u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})"
                     r"|\\u([0-9a-fA-F]{4})")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
# Runs of non-ASCII text (a Japanese store name): each is normalised once, and only a run that
# then holds a digit is looked at character by character.
_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+")
_ANY_DIGIT = re.compile(r"\d")  # on str: any Unicode decimal digit, ASCII ones included


def my_number_check_digit(first_eleven: str) -> int:
    """The check digit for the first 11 digits of a My Number."""
    total = 0
    for n, char in enumerate(reversed(first_eleven), start=1):
        weight = n + 1 if n <= 6 else n - 5
        total += int(char) * weight
    remainder = total % 11
    return 0 if remainder <= 1 else 11 - remainder


def is_my_number(value: str) -> bool:
    """True when ``value`` is 12 digits (in any form, see the module) with a valid check digit."""
    if not value.isascii():
        value = _NON_ASCII_RUN.sub(_run_as_digits, value)
    if len(value) == 14:
        grouped = _GROUPED_TEXT.fullmatch(value)
        if grouped is not None:
            value = grouped.group(1) + grouped.group(3) + grouped.group(4)
    if len(value) != 12 or not value.isascii() or not value.isdigit():
        return False
    return my_number_check_digit(value[:11]) == int(value[11])


def carries_my_number(raw: bytes) -> bool:
    """True when ``raw`` carries a valid My Number: a standalone run of 12 digits, or 12 in the
    card's groups of four (see the module), in any of the forms a digit may take."""
    if not raw.isascii() or _BACKSLASH in raw:
        raw = plain_digits(raw)
    shape = raw.translate(_DIGITS_AS_ZEROS)
    if shape.find(_TWELVE_ZEROS) >= 0 and any(
            m.end() - m.start() == 12 and is_my_number(m.group().decode())
            for m in _DIGIT_RUNS.finditer(raw)):
        return True
    return shape.find(_GROUPED_ZEROS) >= 0 and any(
        is_my_number((m.group(1) + m.group(3) + m.group(4)).decode())
        for m in _GROUPED.finditer(raw))


def redact(raw: bytes) -> bytes:
    """``raw`` with every 12-digit run, and every 12 digits in groups of four (see the module),
    masked, so a reject file never repeats a My Number.

    Digits written otherwise (escaped, full-width) are shown as ASCII digits first, so that
    they are masked the same way; the rest of ``raw`` is returned as it was.
    """
    if not raw.isascii() or _BACKSLASH in raw:
        raw = plain_digits(raw)
    return _GROUPED.sub(_mask_grouped, _TWELVE_DIGITS.sub(_MASK, raw))


def _mask_grouped(match: re.Match[bytes]) -> bytes:
    separator = match.group(2)
    return b"****" + separator + b"****" + separator + b"****"


def plain_digits(raw: bytes) -> bytes:
    """``raw`` with every digit in another form (see the module) written as ASCII digits.

    Everything else is left as it is, byte for byte, including bytes that are not UTF-8.
    """
    text = raw.decode("utf-8", "surrogateescape")
    if "\\u" in text:
        text = _ESCAPE.sub(_unescaped_digits, text)
    if not text.isascii() and _other_digits(text):
        text = _NON_ASCII_RUN.sub(_run_as_digits, text)
    return text.encode("utf-8", "surrogateescape")


def _other_digits(text: str) -> bool:
    """Whether ``text`` holds a digit that is not ASCII: one of its non-ASCII runs (a store's
    name, usually) normalises to text with a digit. Only those runs are normalised; digits do
    not compose across the edge of a run."""
    return any(_ANY_DIGIT.search(unicodedata.normalize("NFKC", run))
               for run in _NON_ASCII_RUN.findall(text))


def _unescaped_digits(match: re.Match[str]) -> str:
    if match.group(3) is not None:
        char = chr(int(match.group(3), 16))
    else:
        high, low = int(match.group(1), 16), int(match.group(2), 16)
        char = chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
    digits = _digits(char)
    return digits if digits is not None else match.group()


def _run_as_digits(match: re.Match[str]) -> str:
    run = match.group()
    if not _ANY_DIGIT.search(unicodedata.normalize("NFKC", run)):
        return run
    return _NON_ASCII.sub(_as_digits, run)


def _as_digits(match: re.Match[str]) -> str:
    digits = _digits(match.group())
    return match.group() if digits is None else digits


@lru_cache(maxsize=4096)
def _digits(char: str) -> str | None:
    """The ASCII digits ``char`` stands for, or None when it is not a digit."""
    if "0" <= char <= "9":
        return char
    if 0xD800 <= ord(char) <= 0xDFFF:  # a lone surrogate (or an undecodable byte) reads as none
        return None
    normal = unicodedata.normalize("NFKC", char)
    if normal.isascii() and normal.isdigit():
        return normal
    return str(unicodedata.decimal(char)) if char.isdecimal() else None

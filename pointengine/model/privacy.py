"""The My Number guard: a My Number is never stored, logged or echoed.

Persons are MyKey IDs. A value of exactly 12 digits whose last digit is a valid My Number check
digit (個人番号の検査用数字, the MIC ordinance's weights) is treated as a My Number wherever it
appears, and the input carrying it is rejected without repeating the value. So are 12 such
digits however they are grouped: in two or more groups of digits with the same separator between
every two groups (``1234 5678 9018``, ``4712:1186:2524``, ``064-589-943-161``, ``6273.1280.0619``,
``2464_6924_6999``). A separator is one to three of: spaces of any kind and tabs (not line
breaks), hyphens, dashes, minus signs and the long-vowel mark, dots and middle dots, colons,
underscores, slashes, and the invisible format characters (zero-width spaces and joiners, the word
joiner, the soft hyphen, the byte order mark), in their full-width forms too. Groups next to more
groups with the same separator (a 16-digit card number) are not one; the same separator
throughout is what sets a number apart from a date and time, which mix them
(``2022/07/01 10:00``, ``10:00:00.123456``). The rule errs on the side of refusing: an IPv4
address of four 3-digit parts whose last digit happens to be a check digit is refused too.

A digit is anything that reads as one once the input is decoded: a JSON ``\\u`` escape of a
digit (``"\\u0031..."`` is ``"1..."`` to every JSON parser), and any character that NFKC
normalises to ASCII digits or that Unicode calls a decimal digit (full-width ``１``, ``①``,
``𝟏``, ``١``); a separator may be escaped too (``\\t``, ``\\u3000``). Input that is plain ASCII
without a backslash, which is nearly all of it, is scanned as bytes; only the rest pays for
decoding. An escaped backslash followed by ``u`` and four hex digits is read as an escape too:
that can only find a My Number that is not there, never miss one.
"""

from __future__ import annotations

import itertools
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
# The separators between groups (see the module), each as it is written in UTF-8.
SEPARATORS = ("\t \u00a0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u202f\u205f\u3000"
              "\u00ad\u200b\u200c\u200d\u2060\ufeff"
              "-" + "".join(map(chr, range(0x2010, 0x2016))) + "\u2212\u30fc\uff0d\uff70"
              ".\u00b7\u30fb\uff0e\uff65:\uff1a_\uff3f/\uff0f")
_SEPARATOR = b"(?:" + b"|".join(re.escape(c.encode()) for c in SEPARATORS) + b")"
# Digit groups joined by separators of any kind: where groups with one separator throughout
# are looked for (_twelve_in_groups).
_CHAIN = re.compile(rb"[0-9]+(?:" + _SEPARATOR + rb"{1,3}[0-9]+)+")
_GROUP = re.compile(rb"[0-9]+")
# Twelve digits close enough to be grouped: the cheap test before _CHAIN.
_MAY_BE_GROUPED = re.compile(rb"[0-9](?:" + _SEPARATOR + rb"{0,3}[0-9]){11}")
_NOT_DIGITS = re.compile(rb"[^0-9]")
_MASK = b"*" * 12
# Whether a line has a backslash at all: an int is looked for with memchr, several times faster
# than looking for b"\\u", and few lines have any backslash.
_BACKSLASH = ord("\\")

# A surrogate pair first, so that an escaped astral character (𝟏) is read as one character;
# an escaped tab or slash may separate groups.
_ESCAPE = re.compile(r"\\u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})"
                     r"|\\u([0-9a-fA-F]{4})|\\([t/])")
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
    """True when ``value`` is 12 digits, grouped or not (in any form, see the module), with a
    valid check digit."""
    raw = value.encode("utf-8", "surrogatepass")
    if not raw.isascii() or _BACKSLASH in raw:
        raw = plain_digits(raw)
    if len(raw) == 12 and raw.isdigit():
        return _valid(raw)
    return any(start == 0 and end == len(raw) and _valid(digits)
               for start, end, digits in _twelve_in_groups(raw))


def carries_my_number(raw: bytes) -> bool:
    """True when ``raw`` carries a valid My Number: a standalone run of 12 digits, or 12 in
    groups (see the module), in any of the forms a digit or a separator may take."""
    if not raw.isascii() or _BACKSLASH in raw:
        raw = plain_digits(raw)
    if raw.translate(_DIGITS_AS_ZEROS).find(_TWELVE_ZEROS) >= 0 and any(
            m.end() - m.start() == 12 and _valid(m.group()) for m in _DIGIT_RUNS.finditer(raw)):
        return True
    return any(_valid(digits) for _, _, digits in _twelve_in_groups(raw))


def redact(raw: bytes) -> bytes:
    """``raw`` with every 12-digit run, and every 12 digits in groups (see the module), masked,
    so a reject file never repeats a My Number; the separators of a group stay.

    Digits and separators written otherwise (escaped, full-width) are shown plainly first, so
    that they are masked the same way; the rest of ``raw`` is returned as it was.
    """
    if not raw.isascii() or _BACKSLASH in raw:
        raw = plain_digits(raw)
    raw = _TWELVE_DIGITS.sub(_MASK, raw)
    spans = _twelve_in_groups(raw)
    if not spans:
        return raw
    masked = bytearray(raw)
    for start, end, _ in spans:
        masked[start:end] = raw[start:end].translate(_DIGITS_AS_STARS)
    return bytes(masked)


def _valid(digits: bytes) -> bool:
    """12 ASCII digits whose last is the check digit of the first 11."""
    return my_number_check_digit(digits[:11].decode()) == digits[11] - 0x30


def _twelve_in_groups(raw: bytes) -> list[tuple[int, int, bytes]]:
    """``(start, end, digits)`` of each run of two or more digit groups in ``raw`` with one
    separator throughout, as long as it can be, that holds exactly 12 digits (any check digit).

    Groups may be joined by different separators (``MK9 1234:5678:9018``, ``2022/07/01
    10:00``): each stretch with one separator is taken on its own, and two stretches share
    the group between them.
    """
    if _MAY_BE_GROUPED.search(raw) is None:
        return []
    found = []
    for chain in _CHAIN.finditer(raw):
        groups = [(m.start(), m.end()) for m in _GROUP.finditer(raw, chain.start(), chain.end())]
        separators = [raw[end:start] for (_, end), (start, _) in itertools.pairwise(groups)]
        first = 0
        while first < len(separators):
            last = first  # the stretch is groups[first .. last + 1]
            while last + 1 < len(separators) and separators[last + 1] == separators[first]:
                last += 1
            start, end = groups[first][0], groups[last + 1][1]
            digits = b"".join(raw[a:b] for a, b in groups[first:last + 2])
            if len(digits) == 12:
                found.append((start, end, digits))
            first = last + 1
    return found


_DIGITS_AS_STARS = bytes(0x2A if 0x30 <= b <= 0x39 else b for b in range(256))


def plain_digits(raw: bytes) -> bytes:
    """``raw`` with every digit and separator in another form (see the module) written plainly:
    digits as ASCII digits, an escaped separator as the separator itself.

    Everything else is left as it is, byte for byte, including bytes that are not UTF-8.
    """
    text = raw.decode("utf-8", "surrogateescape")
    if "\\" in text:
        text = _ESCAPE.sub(_unescaped, text)
    if not text.isascii() and _other_digits(text):
        text = _NON_ASCII_RUN.sub(_run_as_digits, text)
    return text.encode("utf-8", "surrogateescape")


def _other_digits(text: str) -> bool:
    """Whether ``text`` holds a digit that is not ASCII: one of its non-ASCII runs (a store's
    name, usually) normalises to text with a digit. Only those runs are normalised; digits do
    not compose across the edge of a run."""
    return any(_ANY_DIGIT.search(unicodedata.normalize("NFKC", run))
               for run in _NON_ASCII_RUN.findall(text))


def _unescaped(match: re.Match[str]) -> str:
    if match.group(4) is not None:
        return "\t" if match.group(4) == "t" else "/"
    if match.group(3) is not None:
        char = chr(int(match.group(3), 16))
    else:
        high, low = int(match.group(1), 16), int(match.group(2), 16)
        char = chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
    if char in SEPARATORS:
        return char
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

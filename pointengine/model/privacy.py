"""The My Number guard: a My Number is never stored, logged or echoed.

Persons are MyKey IDs. A value of exactly 12 digits whose last digit is a valid My Number check
digit (個人番号の検査用数字, the MIC ordinance's weights) is treated as a My Number wherever it
appears, and the input carrying it is rejected without repeating the value. So are 12 such
digits in the card's layouts, three groups of four or four groups of three, however they are
separated (``1234 5678 9018``, ``4712:1186:2524``, ``064-589-943-161``, ``6273.1280.0619``,
``2464_6924_6999``, ``4712 1186-2524``). A separator is one to three of: spaces of any kind and
tabs (not line breaks), hyphens, dashes, minus signs and the long-vowel mark, dots and middle
dots, colons, underscores, slashes, and every invisible format character (zero-width spaces and
joiners, the soft hyphen, direction marks, the byte order mark), in their full-width forms too.

Only those layouts: ids, phone numbers and times group their digits otherwise
(``20220704-1523``, ``+81-90-3740-6812``, ``10:00:00.123456``, a UUID), and would be refused
about one time in ten by a looser rule. Groups that continue a longer chain are not one (a
16-digit card number ``4111 1234 5678 9018``), unless one separator stands between each two of
them and another one outside (``MK9 1234:5678:9018``). The rule errs on the side of refusing
where it can: an IPv4 address of four 3-digit parts whose last digit happens to be a check
digit is refused too.

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
# What may stand between the groups of a My Number (see the module): spaces of every kind
# (Unicode Zs) and tabs, every dash (Pd), minus sign and long-vowel mark, every invisible format
# character (Cf: zero-width spaces and joiners, soft hyphen, direction marks, BOM, tags) and the
# variation selectors, and dots, middle dots, colons, underscores and slashes, full-width too.
_SEPARATOR_CLASS = (
    r"[\t\u0020\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000"
    r"\u002d\u058a\u05be\u1400\u1806\u2010-\u2015\u2e17\u2e1a\u2e3a\u2e3b\u2e40\u2e5d"
    r"\u301c\u3030\u30a0\ufe31\ufe32\ufe58\ufe63\uff0d\U00010ead\u2212\u30fc\uff70"
    r"\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f"
    r"\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    r"\U00013430-\U00013438\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
    r"\U000e0020-\U000e007f\ufe00-\ufe0f"
    r".\u00b7\u30fb\uff0e\uff65:\uff1a_\uff3f/\uff0f]")
_SEPARATOR = re.compile(_SEPARATOR_CLASS)
_RUN = _SEPARATOR_CLASS + "{1,3}"
# The card's layouts: three groups of four digits, or four of three.
_LAYOUT = re.compile(f"(?<![0-9])(?:[0-9]{{4}}{_RUN}[0-9]{{4}}{_RUN}[0-9]{{4}}"
                     f"|[0-9]{{3}}{_RUN}[0-9]{{3}}{_RUN}[0-9]{{3}}{_RUN}[0-9]{{3}})(?![0-9])")
_DIGIT_GROUP = re.compile("[0-9]+")
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
    """True when ``value`` is 12 digits, or the card's groups of them (see the module), in any
    form, with a valid check digit."""
    raw = value.encode("utf-8", "surrogatepass")
    if not raw.isascii() or _BACKSLASH in raw:
        raw = plain_digits(raw)
    if len(raw) == 12 and raw.isdigit():
        return _valid(raw.decode())
    text = raw.decode("utf-8", "surrogateescape")
    return any(start == 0 and end == len(text) and _valid(digits)
               for start, end, digits in _grouped(text))


def carries_my_number(raw: bytes) -> bool:
    """True when ``raw`` carries a valid My Number: a standalone run of 12 digits, or 12 in
    the card's groups (see the module), in any of the forms a digit or a separator may take."""
    if not raw.isascii() or _BACKSLASH in raw:
        raw = plain_digits(raw)
    if raw.translate(_DIGITS_AS_ZEROS).find(_TWELVE_ZEROS) >= 0 and any(
            m.end() - m.start() == 12 and _valid(m.group().decode())
            for m in _DIGIT_RUNS.finditer(raw)):
        return True
    return any(_valid(digits)
               for _, _, digits in _grouped(raw.decode("utf-8", "surrogateescape")))


def redact(raw: bytes) -> bytes:
    """``raw`` with every 12-digit run, and every 12 digits in the card's groups (see the
    module), masked, so a reject file never repeats a My Number; the separators stay.

    Digits and separators written otherwise (escaped, full-width) are shown plainly first, so
    that they are masked the same way; the rest of ``raw`` is returned as it was.
    """
    if not raw.isascii() or _BACKSLASH in raw:
        raw = plain_digits(raw)
    raw = _TWELVE_DIGITS.sub(_MASK, raw)
    text = raw.decode("utf-8", "surrogateescape")
    spans = _grouped(text)
    if not spans:
        return raw
    parts, last = [], 0
    for start, end, _ in spans:
        parts += [text[last:start], text[start:end].translate(_DIGITS_AS_STARS)]
        last = end
    parts.append(text[last:])
    return "".join(parts).encode("utf-8", "surrogateescape")


def _valid(digits: str) -> bool:
    """12 ASCII digits whose last is the check digit of the first 11."""
    return my_number_check_digit(digits[:11]) == int(digits[11])


def _grouped(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, digits)`` of the card's groups of digits in ``text`` (any check digit).

    Groups in a card's layout are one number when nothing continues them (any separators
    between them: ``4712 1186-2524``), or when one separator stands between each two of them
    and another one, or none, outside (``MK9 1234:5678:9018``; but ``4111 1234 5678 9018`` is
    a card number's 16 digits, and a date and time is no layout). Overlapping candidates are
    all tried, so an earlier refusal never hides a later number.
    """
    found = []
    position = 0
    while (match := _LAYOUT.search(text, position)) is not None:
        start, end = match.span()
        before, after = _separator_before(text, start), _separator_after(text, end)
        if before is None and after is None:
            kept = True
        else:
            inner = {text[a.end():b.start()]
                     for a, b in itertools.pairwise(_DIGIT_GROUP.finditer(text, start, end))}
            kept = len(inner) == 1 and not inner & {before, after}
        if kept:
            found.append((start, end, "".join(_DIGIT_GROUP.findall(text, start, end))))
            position = end
        else:
            position = start + 1
    return found


def _separator_before(text: str, start: int) -> str | None:
    """The separators between ``start`` and a digit before it, or None when no digit is there
    (across one to three separators)."""
    at = start
    while at > 0 and start - at < 3 and _SEPARATOR.match(text, at - 1):
        at -= 1
    while at < start:
        if at > 0 and "0" <= text[at - 1] <= "9":
            return text[at:start]
        at += 1
    return None


def _separator_after(text: str, end: int) -> str | None:
    """The separators between ``end`` and a digit after it, or None (as for ``before``)."""
    at = end
    while at < len(text) and at - end < 3 and _SEPARATOR.match(text, at):
        at += 1
        if at < len(text) and "0" <= text[at] <= "9":
            return text[end:at]
    return None


_DIGITS_AS_STARS = str.maketrans("0123456789", "**********")


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
    if _SEPARATOR.fullmatch(char):
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

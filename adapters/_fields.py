"""Reading native fields: each helper returns a typed value or raises :class:`FieldProblem`.

``FieldProblem`` is private to the adapters: :class:`~pointengine.adapters.base.NativeAdapter`
translates it into :class:`pointengine.errors.MalformedEvent`, naming the provider, the record
and the field.
Helpers never put the raw value into a message when it might be long; values quoted are short.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Mapping

UTC = dt.UTC
JST = dt.timezone(dt.timedelta(hours=9), "JST")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
_DIGITS = re.compile(r"-?[0-9]{1,12}")  # fullmatch: "$" would let a trailing newline in
# RFC 3339 date-time (section 5.6): "T" and "Z" may be lower case; the offset is optional here
# only so that a missing one gets its own message. fromisoformat alone would also take week
# dates, ordinal dates, the basic format and a space for the "T".
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?P<offset>[Zz]|[+-][0-9]{2}:[0-9]{2})?"
)


class FieldProblem(Exception):
    """A native field that is missing or does not parse; ``field`` is its native name."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def text(fields: Mapping[str, object], name: str) -> str:
    """A required, non-empty string field."""
    value = fields.get(name)
    if value is None or value == "":
        raise FieldProblem(name, "missing")
    if not isinstance(value, str):
        raise FieldProblem(name, f"expected a string, got {type(value).__name__}")
    return value


def optional_text(fields: Mapping[str, object], name: str) -> str | None:
    """A string field that may be absent, null or empty (all read as None)."""
    if fields.get(name) in (None, ""):
        return None
    return text(fields, name)


def choice(fields: Mapping[str, object], name: str, allowed: Collection[str]) -> str:
    """A string field that must be one of ``allowed``."""
    value = text(fields, name)
    if value not in allowed:
        raise FieldProblem(name, f"{_show(value)} is not one of {', '.join(sorted(allowed))}")
    return value


def json_int(fields: Mapping[str, object], name: str) -> int:
    """A JSON integer (a float, a boolean or a string is refused, never rounded)."""
    value = fields.get(name)
    if value is None:
        raise FieldProblem(name, "missing")
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldProblem(name, f"expected an integer, got {_show(value)}")
    return value


def digits(fields: Mapping[str, object], name: str, *, signed: bool = False) -> int:
    """An integer written as a decimal string: digits only, a leading '-' if ``signed``."""
    value = text(fields, name)
    if not _DIGITS.fullmatch(value) or (value.startswith("-") and not signed):
        kind = "an integer string" if signed else "a string of digits"
        raise FieldProblem(name, f"expected {kind}, got {_show(value)}")
    return int(value)


def iso_datetime(fields: Mapping[str, object], name: str) -> dt.datetime:
    """An RFC 3339 timestamp (``2022-03-01T12:34:56+09:00``), which always carries an offset."""
    value = text(fields, name)
    match = _RFC3339.fullmatch(value)
    if match is None:
        raise FieldProblem(
            name, f"not an RFC 3339 timestamp like 2022-03-01T12:34:56+09:00: {_show(value)}")
    if match.group("offset") is None:
        raise FieldProblem(name, "the timestamp has no UTC offset")
    try:
        parsed = dt.datetime.fromisoformat(value.upper())
    except ValueError as exc:
        raise FieldProblem(name, f"not a valid timestamp ({exc}): {_show(value)}") from None
    return _representable(name, value, parsed)


def epoch_ms(fields: Mapping[str, object], name: str) -> dt.datetime:
    """Milliseconds since the Unix epoch (a JSON integer) as an aware UTC datetime."""
    value = json_int(fields, name)
    if not 0 < value < 10**14:
        raise FieldProblem(name, f"not an epoch-millisecond timestamp: {value}")
    return _EPOCH + dt.timedelta(milliseconds=value)


def local_datetime(
    fields: Mapping[str, object], name: str, fmt: str, tz: dt.tzinfo = JST
) -> dt.datetime:
    """A wall-clock timestamp in format ``fmt``, read in ``tz`` (JST unless told)."""
    value = text(fields, name)
    try:
        parsed = dt.datetime.strptime(value, fmt).replace(tzinfo=tz)
    except ValueError:
        raise FieldProblem(name, f"expected a timestamp like {fmt!r}, got {_show(value)}") from None
    return _representable(name, value, parsed)


def _representable(name: str, value: str, parsed: dt.datetime) -> dt.datetime:
    """``parsed``, if the engine can hold its instant.

    The engine converts every timestamp to JST, through UTC: within hours of year 1 or year
    10000 that overflows (0001-01-01T00:00:00+09:00 is in year 0 in UTC), and an OverflowError
    is no reason the provider could act on.
    """
    try:
        parsed.astimezone(UTC)
        parsed.astimezone(JST)
    except OverflowError:
        raise FieldProblem(
            name, f"{_show(value)} is out of range: its instant in UTC or JST is not within "
                  "the years 0001-9999") from None
    return parsed

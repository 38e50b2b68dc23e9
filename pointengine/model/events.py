"""Canonical events: what payment providers, the MyKey platform and municipalities report.

Every event is a frozen pydantic model with a ``type`` tag, a ``source`` (who sent it) and an
``id`` unique within that source, the ``person`` (a MyKey ID, never a My Number) and ``at``, an
RFC 3339 timestamp that must carry its UTC offset (:func:`timestamp`). Eligibility is judged in
JST at ``at``; the wall clock never enters a decision. Types are exact: amounts are integer
yen (a float is refused, not rounded), ``phase`` is the integer 1 or 2, flags are JSON booleans
and dates are ``YYYY-MM-DD`` strings; nothing is coerced.

Parse a line with :func:`parse_event`; the README documents every field with an example.
"""

from __future__ import annotations

import codecs
import datetime as dt
import re
from functools import cached_property
from typing import Annotated, Literal

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StrictBool,
    StrictInt,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from pointengine.errors import InputError, MalformedEvent, MyNumberRejected, UnknownMunicipality
from pointengine.model.bounds import refuse_deep_json, refuse_large_event
from pointengine.model.jsonkeys import repeated_key
from pointengine.model.jst import JST
from pointengine.model.municipalities import registry
from pointengine.model.privacy import carries_my_number, is_my_number


def day_number(day: dt.date) -> int:
    """``2022-01-05`` → ``20220105`` (the days facts and rules compare)."""
    return day.year * 10_000 + day.month * 100 + day.day


def in_jst(at: dt.datetime) -> dt.datetime:
    """The same instant with ``JST`` as its time zone object.

    Every timestamp the engine holds shares this one object: comparing two aware datetimes
    with the same tzinfo object compares their fields directly, about ten times faster than
    asking two different tzinfo objects for their offsets, and the engine compares timestamps
    several times per event.
    """
    return at if at.tzinfo is JST else at.astimezone(JST)


# -00:00 is refused by the expression itself, so that valid timestamps pay for one check only.
_RFC3339 = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?"
                     r"(?:Z|\+[0-9]{2}:[0-9]{2}|-(?!00:00)[0-9]{2}:[0-9]{2})")
_TIMESTAMP_FORM = ("expected an RFC 3339 timestamp with its UTC offset, like "
                   "2022-02-01T12:00:00+09:00 (upper-case T, Z or +hh:mm, at most 6 decimals)")


def timestamp(value: str) -> dt.datetime:
    """``value``, an RFC 3339 timestamp with an explicit UTC offset, as the instant in JST.

    The one check of ``at`` for full validation and the fast path alike. Exactly
    ``YYYY-MM-DDTHH:MM:SS[.ffffff](Z|+hh:mm|-hh:mm)`` is accepted: no space for ``T``, no
    lower case, no more than microseconds (the engine holds no finer time and cuts nothing),
    no ``-00:00`` (RFC 3339's "offset unknown"), and only instants that JST can hold.
    Raises ValueError with the reason.
    """
    if not _RFC3339.fullmatch(value):
        if value.endswith("-00:00"):
            raise ValueError("the offset -00:00 means the local offset is unknown; an event's "
                             "time needs its actual offset (Z or +00:00 for UTC)")
        raise ValueError(_TIMESTAMP_FORM)
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("not a valid date and time of day (or offset)") from None
    try:
        return in_jst(moment)
    except OverflowError:
        raise ValueError("the instant is out of range (in JST it falls before year 1 or after "
                         "year 9999)") from None


def _at(value: object) -> dt.datetime:
    if type(value) is str:
        try:
            return timestamp(value)
        except ValueError as exc:
            raise PydanticCustomError("timestamp", str(exc)) from None
    if isinstance(value, dt.datetime):  # already decoded (adapters build aware datetimes)
        if value.utcoffset() is None:
            raise PydanticCustomError("timestamp", "the timestamp has no UTC offset")
        try:
            return in_jst(value)
        except OverflowError:
            raise PydanticCustomError("timestamp", "the instant is out of range") from None
    raise PydanticCustomError("timestamp", f"{_TIMESTAMP_FORM}; got {_kind(value)}")


_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _date(value: object) -> object:
    # pydantic alone would read 0 as 1970-01-01 and accept a midnight datetime as a date.
    if type(value) is dt.date or (type(value) is str and _DATE.fullmatch(value)):
        return value  # pydantic then checks that the day exists
    raise PydanticCustomError("date_form", "expected a date like 2021-12-01 (YYYY-MM-DD)")


def _phase(value: object) -> object:
    # Literal[1, 2] alone compares by equality, so true and 2.0 would pass as 1 and 2.
    if type(value) is not int:
        raise PydanticCustomError("int_type", f"expected the integer 1 or 2, got {_kind(value)}")
    return value


def _kind(value: object) -> str:
    """The JSON kind of ``value``, for messages that must not repeat the value itself."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number with a fraction or exponent"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list | tuple) else "an object"


ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}")
"""The form of every id and MyKey ID; use ``fullmatch`` (``$`` lets a trailing newline in)."""


def _mykey_id(value: str) -> str:
    if is_my_number(value):
        raise PydanticCustomError("my_number",
                                  "a My Number is not a MyKey ID; it is never accepted")
    if not ID.fullmatch(value):
        raise PydanticCustomError("mykey_id", "a MyKey ID is 1-64 letters, digits, '.', '_', "
                                  "':', '-', starting with a letter or digit")
    return value


def _identifier(value: str) -> str:
    if not ID.fullmatch(value):
        raise PydanticCustomError("identifier", "an id is 1-64 letters, digits, '.', '_', ':', "
                                  "'-', starting with a letter or digit")
    return value


def _municipality(value: str) -> str:
    if value not in registry():
        hint = registry().closest(value)
        extra = f" (did you mean {hint}?)" if hint else ""
        raise PydanticCustomError(
            "unknown_municipality", "unknown local government code {code}{extra}",
            {"code": value, "extra": extra},
        )
    return value


def _place(value: str) -> str:
    if registry().get(value).kind == "prefecture":
        raise PydanticCustomError(
            "prefecture_code",
            "{code} is a prefecture's code; a residence, a store or an activity is in a "
            "municipality: give the municipality's code", {"code": value})
    return value


MyKeyId = Annotated[str, AfterValidator(_mykey_id)]
Identifier = Annotated[str, AfterValidator(_identifier)]
MunicipalityCode = Annotated[str, AfterValidator(_municipality)]
Place = Annotated[MunicipalityCode, AfterValidator(_place)]
"""A municipality's code, not a prefecture's: where a person lives, a store is, an activity
takes place (a designated city's ward is a place too)."""
Yen = Annotated[StrictInt, Field(gt=0, le=100_000_000)]
# The serializer is explicit: a PlainValidator alone makes pydantic serialize through a wrapper
# that warns on every event (and the warnings cost more than the serializing).
Timestamp = Annotated[dt.datetime, PlainValidator(_at, json_schema_input_type=str),
                      PlainSerializer(dt.datetime.isoformat, return_type=str, when_used="json")]
CalendarDate = Annotated[dt.date, BeforeValidator(_date)]


class Event(BaseModel):
    """Fields every event carries."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)

    source: Identifier
    id: Identifier
    person: MyKeyId
    at: Timestamp

    @cached_property
    def key(self) -> str:
        """The idempotency key: an event with the same source and id is applied once."""
        return f"{self.source}/{self.id}"

    @property
    def day(self) -> dt.date:
        """The calendar day of ``at`` in JST, on which eligibility is judged."""
        return self.at.astimezone(JST).date()


class MynapointApplication(Event):
    """A person applies for Mynapoint (マイナポイント申込) in a phase and chooses one provider."""

    type: Literal["mynapoint_application"] = "mynapoint_application"
    phase: Annotated[Literal[1, 2], BeforeValidator(_phase)]
    provider: Identifier
    card_applied_on: CalendarDate
    residence: Place
    birth_date: CalendarDate | None = None
    children_birth_dates: tuple[CalendarDate, ...] = ()
    household: Identifier | None = None
    applied_in_phase1: StrictBool = False


class HealthInsuranceRegistration(Event):
    """The person registered the card as a health-insurance card (健康保険証利用登録)."""

    type: Literal["health_insurance_registration"] = "health_insurance_registration"


class PublicFundsAccountRegistration(Event):
    """The person registered a bank account for public benefits (公金受取口座登録)."""

    type: Literal["public_funds_account_registration"] = "public_funds_account_registration"


class Charge(Event):
    """Money charged onto a provider's account (チャージ); ``store_municipality`` is where."""

    type: Literal["charge"] = "charge"
    provider: Identifier
    amount: Yen
    store: Identifier | None = None
    store_municipality: Place | None = None


class Purchase(Event):
    """A purchase (お買い物) at a store, paid with the provider's service."""

    type: Literal["purchase"] = "purchase"
    provider: Identifier
    amount: Yen
    store: Identifier
    store_municipality: Place


class Refund(Event):
    """A full or partial refund of an earlier charge or purchase of the same source."""

    type: Literal["refund"] = "refund"
    provider: Identifier
    transaction: Identifier
    amount: Yen


class ResidenceChange(Event):
    """The person moved; from ``at`` on, ``residence`` is their municipality."""

    type: Literal["residence_change"] = "residence_change"
    residence: Place


class Participation(Event):
    """The person took part in a municipal activity (a health event; QR code at the venue)."""

    type: Literal["participation"] = "participation"
    municipality: Place
    activity: Identifier
    health_points: Annotated[StrictInt, Field(ge=0, le=1_000_000)] = 0


class LotteryDraw(Event):
    """A municipality draws the lottery of one of its programs; ``person`` is the official."""

    type: Literal["lottery_draw"] = "lottery_draw"
    program: Identifier


AnyEvent = Annotated[
    MynapointApplication
    | HealthInsuranceRegistration
    | PublicFundsAccountRegistration
    | Charge
    | Purchase
    | Refund
    | ResidenceChange
    | Participation
    | LotteryDraw,
    Field(discriminator="type"),
]
Transaction = Charge | Purchase
_adapter: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)


def parse_event(raw: bytes | str) -> AnyEvent:
    """Validate one JSON event; raise the most specific :class:`InputError` on bad input.

    Size and nesting are bounded before anything parses it (:mod:`pointengine.model.bounds`); a
    key given twice is refused (:mod:`pointengine.model.jsonkeys`). The error message never
    repeats a My Number.
    """
    data = raw.encode() if isinstance(raw, str) else raw
    refuse_large_event(data)
    if carries_my_number(data):
        raise MyNumberRejected(_MY_NUMBER_MESSAGE)
    if data.startswith(codecs.BOM_UTF8):  # JSON parsers only say "expected value at column 1"
        raise MalformedEvent("the line starts with a byte-order mark (U+FEFF); write the file "
                             "as UTF-8 without a BOM")
    refuse_deep_json(data, "event")
    key = repeated_key(data)
    if key is not None:
        raise MalformedEvent(f"event: the key {key[:64]!r} is given more than once; which "
                             "value is meant cannot be known")
    try:
        return _adapter.validate_json(data)
    except ValidationError as exc:
        raise _translate(exc) from None


def event_from_dict(data: dict[str, object], *, searched: bool = False) -> AnyEvent:
    """Validate an already-decoded event (adapters build these).

    ``searched``: the caller searched every value of ``data`` for a My Number already (an
    adapter searches the native record the event is read from), so it is not searched again;
    the model still refuses a MyKey ID that is one.
    """
    if not searched and carries_my_number(orjson.dumps(data, default=str)):
        raise MyNumberRejected(_MY_NUMBER_MESSAGE)
    try:
        return _adapter.validate_python(data)
    except ValidationError as exc:
        raise _translate(exc) from None


_MY_NUMBER_MESSAGE = "the event carries a My Number; it was rejected and not stored"


def _translate(exc: ValidationError) -> InputError:
    errors = exc.errors(include_url=False, include_input=False)
    kinds = {e["type"] for e in errors}
    detail = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'event'}: {e['msg']}" for e in errors[:5]
    )
    if "my_number" in kinds:  # the input was scanned for one before validation
        return MyNumberRejected(_MY_NUMBER_MESSAGE)
    if "unknown_municipality" in kinds:
        return UnknownMunicipality(detail)
    return MalformedEvent(detail)

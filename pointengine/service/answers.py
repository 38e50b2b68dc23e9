"""What the ingestion service answers: each status's body, as pydantic models, and its reasons.

The models describe the JSON the service sends (:mod:`pointengine.service.app` builds it); the
OpenAPI description (:mod:`pointengine.service.openapi`) is generated from them, and the tests
validate real answers against that description, so a field the service adds or a reason code
it starts to send without saying so fails them. They forbid fields they do not name for that
reason.

Reason codes are the errors' own ``reason_code`` (:mod:`pointengine.errors`) and the engine's
refusal codes (:class:`~pointengine.model.refusals.Refusal`), collected here, never parsed from
messages; the few the service makes up itself (a sender it does not know, a body that did not
arrive) are the constants below, which the service uses.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from pointengine.errors import (
    ForbiddenEventType,
    ForeignTransaction,
    InputError,
    MalformedEvent,
    MyNumberRejected,
    NestedTooDeeply,
    ReplayedRequest,
    SignatureRejected,
    StaleRequest,
    StateLost,
    TooLarge,
    UnknownMunicipality,
)
from pointengine.model.refusals import Refusal

__all__ = [
    "AFTER_ACCEPTANCE_REASONS",
    "BODY_TIMEOUT",
    "EMPTY",
    "NOT_REPLICATED",
    "OWNERSHIP_REASONS",
    "PAYLOAD_REASONS",
    "RECORD_REASONS",
    "SIGNATURE_REASONS",
    "UNAVAILABLE",
    "UNAVAILABLE_REASONS",
    "UNKNOWN_PROVIDER",
    "Accepted",
    "BodyTimeout",
    "Forbidden",
    "Healthy",
    "NotFound",
    "PayloadTooLarge",
    "ProviderReject",
    "RecordReject",
    "Refused",
    "RejectsPage",
    "Unauthorized",
    "Unavailable",
    "Unhealthy",
    "Unprocessable",
]

UNKNOWN_PROVIDER = "unknown_provider"
"""404: no adapter for the provider in the path."""
BODY_TIMEOUT = "body_timeout"
"""408: the body did not all arrive in time."""
EMPTY = "empty"
"""422: a body without a single transaction."""
UNAVAILABLE = "unavailable"
"""503: Redis did not answer in time."""
NOT_REPLICATED = "not_replicated"
"""503: fewer replicas than asked confirmed the entries in time."""


def _codes(*errors: type[InputError]) -> list[str]:
    return [error.reason_code for error in errors]


SIGNATURE_REASONS = _codes(SignatureRejected, StaleRequest, ReplayedRequest)
"""401: unsigned or wrongly signed (an unknown sender included), stale, replayed."""
OWNERSHIP_REASONS = _codes(ForeignTransaction, ForbiddenEventType)
"""403: another provider's endpoint or events; a type of event the sender does not send."""
RECORD_REASONS = _codes(MalformedEvent, NestedTooDeeply, TooLarge, MyNumberRejected,
                        UnknownMunicipality)
"""Why one native record (or batch element) is refused."""
PAYLOAD_REASONS = [*RECORD_REASONS, EMPTY]
"""422: the records' reasons, and a body without any transaction."""
UNAVAILABLE_REASONS = [UNAVAILABLE, StateLost.reason_code, NOT_REPLICATED]
"""503: every one worth retrying as it is."""
_NEVER_POSTED = {Refusal.DUPLICATE, Refusal.UNKNOWN_LOTTERY, Refusal.LOTTERY_NOT_DUE,
                 Refusal.LOTTERY_ALREADY_DRAWN}
AFTER_ACCEPTANCE_REASONS = [code.value for code in Refusal if code not in _NEVER_POSTED]
"""Why the workers refuse an event the service had accepted. A duplicate is not refused: it
changes nothing, as a delivery again should; lottery draws come from municipalities' files,
which no sender posts (the service refuses them as ``forbidden_event_type``)."""


def _reason(codes: list[str], what: str) -> object:
    enum: list[JsonValue] = [*codes]
    return Field(description=what, json_schema_extra={"enum": enum})


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecordReject(_Answer):
    """A native record, or a batch element, that was refused."""

    item: int = Field(ge=1, description="The batch element, from 1 (1 for a `/transactions` "
                                        "body and for a CSV file).")
    position: int = Field(ge=0, description=(
        "The record within the element: its number in a delivery or notification, its line "
        "in a file or in canonical JSON lines (a CSV header is line 1); 0 when the element "
        "as a whole was refused."))
    reason: Annotated[str, _reason(RECORD_REASONS, "Why, as a code.")]
    detail: str = Field(description="Which record and field, and what is wrong with it; a My "
                                    "Number is never repeated.")


class Accepted(_Answer):
    """202: the canonical events are in the service's Redis streams (and, with
    `min_replicas`, on that many replicas). They are applied once each, by their key."""

    status: Literal["accepted"]
    accepted: int = Field(ge=1, description="Canonical events written.")
    entries: list[Annotated[str, Field(pattern=r"^[0-9a-z]+/[0-9]+-[0-9]+$")]] = Field(
        description="The stream entries written, `<shard>/<entry id>`.")
    rejects: list[RecordReject] = Field(max_length=100, description=(
        "With `?lenient=true`: the records left out (at most the first 100); empty otherwise."))


class Refused(_Answer):
    """A refused request: nothing was stored (a 503 `not_replicated` excepted, see there)."""

    status: Literal["rejected"]
    reason: str = Field(description="Why, as a code: compare codes, not details.")
    detail: str = Field(description="What was refused and why, for a person to read.")
    rejects: list[RecordReject] = Field(max_length=100, description=(
        "The records refused (at most the first 100); empty unless records were read."))


class Unauthorized(Refused):
    """401: unsigned, wrongly signed (a sender the service has no secret for is answered
    exactly the same), stale or replayed. Sign the request again, with the current time."""

    reason: Annotated[str, _reason(SIGNATURE_REASONS, "`signature`, `stale` or `replayed`.")]


class Forbidden(Refused):
    """403: signed, but for another provider's endpoint or carrying another's events
    (`cross_provider`), or a type of event the sender does not send
    (`forbidden_event_type`). Sending it again will not help."""

    reason: Annotated[str, _reason(OWNERSHIP_REASONS, "`cross_provider` or "
                                                      "`forbidden_event_type`.")]


class NotFound(Refused):
    """404: the service has no provider of that name."""

    reason: Annotated[str, _reason([UNKNOWN_PROVIDER], "`unknown_provider`.")]


class BodyTimeout(Refused):
    """408: the body did not all arrive within the time allowed (30 s)."""

    reason: Annotated[str, _reason([BODY_TIMEOUT], "`body_timeout`.")]


class PayloadTooLarge(Refused):
    """413: the body is over the limit (8 MiB), declared or counted as it arrived. Send
    smaller batches."""

    reason: Annotated[str, _reason([TooLarge.reason_code], "`too_large`.")]


class Unprocessable(Refused):
    """422: the body, or one of its records, could not be read (the first bad record's
    reason; `rejects` lists each), or the body holds no transaction. Correct it and send it
    again, signed again."""

    reason: Annotated[str, _reason(PAYLOAD_REASONS, "The first bad record's reason, or "
                                                    "`empty`.")]


class Unavailable(Refused):
    """503: the service could not store the request now; retry it, as it is, after
    `Retry-After` seconds. Retrying is safe: events are applied once, by their key."""

    reason: Annotated[str, _reason(UNAVAILABLE_REASONS, (
        "`unavailable` (storage did not answer in time), `state_lost` (storage lost its state; "
        "an operator re-initialises it) or `not_replicated` (the entries may be stored but "
        "were not confirmed by enough replicas)."))]


class Healthy(_Answer):
    """200: Redis answers and holds the store's state."""

    status: Literal["ok"]


class Unhealthy(_Answer):
    """503: Redis does not answer (`unavailable`) or has lost the store's state
    (`state_lost`)."""

    status: Annotated[str, _reason(UNAVAILABLE_REASONS[:2], "The same as `reason`.")]
    reason: Annotated[str, _reason(UNAVAILABLE_REASONS[:2], "Why, as a code.")]
    detail: str = Field(description="What to do.")


class ProviderReject(_Answer):
    """An event of the provider's that was accepted (202) and then refused by the engine."""

    id: str = Field(pattern=r"^[0-9]+-[0-9]+$", description=(
        "The reject's place in the provider's list: pass the last one as `after` to read on."))
    at: str = Field(description="When it was refused, RFC 3339 in UTC, in milliseconds.",
                    json_schema_extra={"format": "date-time"})
    event: str = Field(description="`<source>/<id>`: the provider and the event's id, which "
                                   "is the native transaction id (`transactionId`, "
                                   "`record_id`, a Payment's `id`, `取引ID`).")
    person: str = Field(description="The MyKey ID the event named (never a My Number).")
    provider: str = Field(description="Who signed the request: the provider asking.")
    reason: Annotated[str, _reason(AFTER_ACCEPTANCE_REASONS, "Why, as a code.")]
    detail: str = Field(description="What was refused and why (ids and amounts).")


class RejectsPage(_Answer):
    """200: the provider's events refused after a 202, oldest first."""

    status: Literal["ok"]
    rejects: list[ProviderReject]
    next: str = Field(pattern=r"^[0-9]+(-[0-9]+)?$", description=(
        "Pass it as `after` to read on: the last reject's `id`, or the `after` given when "
        "there was none (`0` at first)."))
    more: bool = Field(description="Whether more rejects follow this page already.")

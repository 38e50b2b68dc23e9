"""The service's OpenAPI description: native request bodies with examples, the signature, every
answer; and the documentation pages, served without any CDN.

What is generated rather than written: the answers' schemas (:mod:`pointengine.service.answers`)
and the JSON providers' body schemas (the models below) are pydantic's; the examples are the
adapters' own synthetic traffic (each provider module's ``generate``), picked by what the
adapter makes of it, so an example cannot drift from what the adapter accepts (the tests post
every example, signed, to the service). XML, CSV and canonical JSON lines are described as text,
with the fields in ``docs/providers.md``.

The documentation pages (``/docs``, Swagger UI; ``/redoc``, ReDoc) load their scripts and styles
from this service (``/docs/assets/``, the files the ``fastapi-offline`` package ships, and
``/docs/start.js``), so they work on a network that reaches no CDN. Their
Content-Security-Policy lets the browser reach nothing else (ReDoc's footer would fetch its
maker's logo), and Swagger UI's online validator is switched off.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import importlib.resources
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import orjson
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html
from fastapi.openapi.models import APIKey, APIKeyIn, Parameter, ParameterInType, Schema
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, RootModel
from pydantic.json_schema import models_json_schema

from pointengine.adapters.base import ProviderAdapter
from pointengine.adapters.registry import ADAPTERS
from pointengine.adapters.traffic import GENERATORS
from pointengine.model.events import ID, Refund
from pointengine.service.answers import (
    Accepted,
    BodyTimeout,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RejectsPage,
    Unauthorized,
    Unavailable,
    Unprocessable,
)
from pointengine.service.signing import (
    HEADER_PROVIDER,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    MAX_SKEW,
    PLATFORM_EVENT_TYPES,
)

__all__ = ["ASSETS", "DESCRIPTION", "SIGNATURE_SCHEME", "SWAGGER_START", "DocumentedApp",
           "Example", "add_docs_pages", "examples", "ingest_operation", "ingest_responses",
           "native_schemas", "rejects_operation", "rejects_responses", "signature_scheme"]

ASSETS = "/docs/assets"
"""Where the documentation pages' scripts and styles are served."""
SIGNATURE_SCHEME = "signature"
"""The security scheme's name in the description."""
_SCHEMAS = "#/components/schemas/"
_ID_PATTERN = f"^{ID.pattern}$"
_MUNICIPALITY = r"^[0-9]{6}$"
_RFC3339 = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
            r"([Zz]|[+-][0-9]{2}:[0-9]{2})$")

DESCRIPTION = f"""\
Payment providers post their transactions here, signed, in their own native format; the
MyKey platform (`mykey`) and the resident registry (`juki-net`) post canonical events as JSON
lines. A 202 means the events are durably queued; the engine applies each once, by its key.

**Signing.** Every request carries `{HEADER_PROVIDER}` (the sender), `{HEADER_TIMESTAMP}`
(Unix seconds, at most {MAX_SKEW} s from the service's clock) and `{HEADER_SIGNATURE}`:
`v2=` and the lower-case hex HMAC-SHA256, under the sender's secret, of

    timestamp \\n METHOD \\n path \\n query \\n body

(the path and query exactly as sent, the query without its `?` and empty when there is none;
the body's bytes as sent, empty for a GET). The same signature is accepted once.

**Answers.** Every refusal is `{{status: "rejected", reason, detail, rejects}}`: compare
`reason`, a code, never `detail`. A refused request stored nothing (a 503 `not_replicated`
may have: retry it all the same). 401, 408, 422: correct and sign again. 403, 404: sending
again will not help. 413: send smaller batches. 503: retry as it is after `Retry-After`
seconds. Retrying anything is safe: an event applied before changes nothing.

**After a 202.** An event can still be refused when it is applied (a refund whose transaction
never came, after waiting for it, 10 minutes by default; an application naming an unknown
provider): `GET /providers/{{provider}}/rejects` lists the sender's own.
"""

_SIGNATURE_DOC = f"""\
`v2=` and the lower-case hex HMAC-SHA256, under the sender's secret, of the canonical string
`timestamp \\n METHOD \\n path \\n query \\n body`: the `{HEADER_TIMESTAMP}` value, the method
in upper case, the path exactly as sent (percent-encoding unchanged, no query), the query
exactly as sent without its `?` (empty when there is none), each followed by a line feed, then
the body's bytes as sent (empty for a GET). Sent with `{HEADER_PROVIDER}` and
`{HEADER_TIMESTAMP}`. Example: `POST /providers/quickpay/batch?lenient=true` at 1646105700 signs
`1646105700\\nPOST\\n/providers/quickpay/batch\\nlenient=true\\n` followed by the body. A `v1=`
signature is refused."""


# The native bodies of the JSON providers. Documentation only: the adapters read the bodies
# (they allow fields these do not name, as the adapters ignore them).

def _field(description: str, *, pattern: str | None = None, **kwargs: Any) -> Any:
    return Field(description=description, pattern=pattern, **kwargs)


class _Native(BaseModel):
    model_config = ConfigDict(extra="allow")


class QuickPayPayment(_Native):
    """A QuickPay PAYMENT webhook: a purchase at a store."""

    eventType: Literal["PAYMENT"]
    transactionId: str = _field("`QP-` and a UUID4 in hex; the event's id.",
                                pattern=_ID_PATTERN)
    userMyKeyId: str = _field("The payer's MyKey ID (never a My Number).", pattern=_ID_PATTERN)
    amount: int = _field("Yen, a JSON integer (not a float or a string).", ge=1,
                         le=100_000_000)
    currency: Literal["JPY"] | None = _field("`JPY` when given.", default=None)
    occurredAt: str = _field("RFC 3339 with its UTC offset.", pattern=_RFC3339)
    storeCode: str = _field("The store's id.", pattern=_ID_PATTERN)
    storeName: str | None = _field("Informational.", default=None)
    storeMunicipalityCode: str = _field("The store's 6-digit local government code.",
                                        pattern=_MUNICIPALITY)


class QuickPayRefund(_Native):
    """A QuickPay REFUND webhook: all or part of an earlier PAYMENT given back."""

    eventType: Literal["REFUND"]
    transactionId: str = _field("The refund's own id.", pattern=_ID_PATTERN)
    originalTransactionId: str = _field("The refunded PAYMENT's `transactionId`.",
                                        pattern=_ID_PATTERN)
    userMyKeyId: str = _field("The payer's MyKey ID, as in the PAYMENT.", pattern=_ID_PATTERN)
    amount: int = _field("Yen refunded.", ge=1, le=100_000_000)
    currency: Literal["JPY"] | None = _field("`JPY` when given.", default=None)
    occurredAt: str = _field("RFC 3339 with its UTC offset.", pattern=_RFC3339)


class QuickPayWebhook(RootModel[Annotated[QuickPayPayment | QuickPayRefund,
                                          Field(discriminator="eventType")]]):
    """QuickPay (`application/json`): one webhook per transaction."""


class TransitCardCharge(_Native):
    """A TransitCard record of a charge at a terminal (a positive amount)."""

    record_id: str = _field("The event's id.", pattern=_ID_PATTERN)
    record_type: Literal["charge"]
    holder_mykey_id: str = _field("The card holder's MyKey ID.", pattern=_ID_PATTERN)
    amount: str = _field("Yen as a string of digits, not zero (at most 100,000,000).",
                         pattern=r"^0*[1-9][0-9]*$", max_length=12)
    charged_at_ms: int = _field("Milliseconds since the Unix epoch (UTC).", ge=1,
                                lt=10**14)
    terminal_id: str = _field("The terminal's id (the event's store).", pattern=_ID_PATTERN)
    terminal_municipality_code: str = _field("The terminal's local government code.",
                                             pattern=_MUNICIPALITY)
    original_record_id: None = _field("Absent or null on a charge.", default=None)


class TransitCardRefund(_Native):
    """A TransitCard record of a refund: a negative charge naming the charge it takes back."""

    record_id: str = _field("The event's id.", pattern=_ID_PATTERN)
    record_type: Literal["charge"]
    holder_mykey_id: str = _field("The card holder's MyKey ID.", pattern=_ID_PATTERN)
    amount: str = _field("Minus the yen refunded.", pattern=r"^-0*[1-9][0-9]*$",
                         max_length=13)
    charged_at_ms: int = _field("Milliseconds since the Unix epoch (UTC).", ge=1,
                                lt=10**14)
    original_record_id: str = _field("The refunded charge's `record_id`.", pattern=_ID_PATTERN)


class TransitCardDelivery(_Native):
    """TransitCard (`application/json`): a terminal's delivery of one or more records."""

    delivery_id: str | None = _field("Informational.", default=None)
    sent_at_ms: int | None = _field("Informational.", default=None)
    records: list[TransitCardCharge | TransitCardRefund] = _field(
        "Each record is converted on its own (`?lenient=true` keeps the good ones).",
        min_length=1)


_JSON_BODIES: dict[str, type[BaseModel]] = {
    "quickpay": QuickPayWebhook, "transitcard": TransitCardDelivery}
"""The schema of each JSON provider's native body."""

_TEXT_BODIES: dict[str, str] = {
    "application/xml": ("CarrierPay: a UTF-8 `<CarrierPayNotification>` of `Payment` and "
                        "`Refund` elements, without a DOCTYPE. `Amount/Total` (tax included) "
                        "is what counts; a `Subtotal` given must add up to it with the "
                        "`Tax` lines."),
    "text/csv": ("TownCoin: a daily CSV file, Shift_JIS or UTF-8 with a BOM, CRLF, a header "
                 "of Japanese column names (取引ID, 会員ID, 取引種別, 金額, 取引日時, "
                 "加盟店コード, 加盟店名, 加盟店所在地コード, 元取引ID), `YYYY/MM/DD hh:mm:ss` "
                 "JST; positions in answers are file lines."),
    "application/x-ndjson": ("mykey, juki-net: canonical events, one JSON object a line "
                             "(applications and registrations; moves)."),
}


def native_schemas() -> dict[str, Any]:
    """The JSON providers' body schemas, by component name."""
    _, top = models_json_schema([(model, "validation") for model in _JSON_BODIES.values()],
                                ref_template=_SCHEMAS + "{model}")
    schemas: dict[str, Any] = top.get("$defs", {})
    return schemas


@dataclass(frozen=True)
class Example:
    """One example body of one sender, as the spec shows it and as it is posted."""

    provider: str
    name: str
    """Unique within its media type."""
    summary: str
    media_type: str
    body: bytes
    """What is posted (UTF-8; a TownCoin file may be sent as Shift_JIS as well)."""
    batch: bool
    """An example of ``/batch``; else of ``/transactions``."""

    @property
    def value(self) -> object:
        """The example in the spec: JSON as JSON, anything else as text."""
        return orjson.loads(self.body) if self.media_type == "application/json" else \
            self.body.decode()


_PERSONS = ("MKA7Q2X9", "MKB4K8P1")
_STORES = (("S0001", "131016"), ("S0002", "271276"))
_JST = dt.timezone(dt.timedelta(hours=9))
_WINDOW = (dt.datetime(2022, 3, 1, tzinfo=_JST), dt.datetime(2022, 3, 2, tzinfo=_JST))
_SEED = 7
_DRAWN = 400
"""Transactions drawn per provider: enough for a refund (about 1.5% are)."""


def examples(providers: Sequence[str]) -> list[Example]:
    """Example bodies of each sender in ``providers`` that has a traffic generator or is a
    platform source: a transaction, a refund, a batch holding a refund and its transaction."""
    return [example for provider in providers for example in _examples_of(provider)]


@functools.cache
def _examples_of(provider: str) -> tuple[Example, ...]:
    if provider in PLATFORM_EVENT_TYPES:
        return tuple(_platform_examples(provider))
    if provider not in GENERATORS or provider not in ADAPTERS:
        return ()
    with ADAPTERS[provider]() as adapter:
        return tuple(_provider_examples(provider, adapter))


def _provider_examples(provider: str, adapter: ProviderAdapter) -> list[Example]:
    native = GENERATORS[provider](_PERSONS, _STORES, _DRAWN, _SEED, *_WINDOW)
    media = adapter.content_type
    if isinstance(native, bytes):  # one file of many records: a few of them and a refund
        lines = native.decode("cp932").split("\r\n")
        events = adapter.to_events(native)  # one a line, after the header
        refund = next(i for i, e in enumerate(events) if isinstance(e, Refund))
        refunded = events[refund]
        assert isinstance(refunded, Refund)
        original = next(i for i, e in enumerate(events) if e.id == refunded.transaction)
        kept = [lines[0], *(lines[1 + i] for i in sorted({0, 1, 2, original, refund}))]
        body = ("\r\n".join(kept) + "\r\n").encode()
        return [Example(provider, provider, f"{provider}: a daily file with a refund", media,
                        body, batch) for batch in (False, True)]
    converted = [adapter.to_events(body) for body in native]
    plain = next(i for i, events in enumerate(converted)
                 if not any(isinstance(e, Refund) for e in events))
    refund = next(i for i, events in enumerate(converted)
                  if any(isinstance(e, Refund) for e in events))
    taken_back = {e.transaction for e in converted[refund] if isinstance(e, Refund)}
    original = next(i for i, events in enumerate(converted)
                    if any(e.id in taken_back for e in events))
    out = [Example(provider, provider, f"{provider}: a transaction", media, native[plain],
                   False),
           Example(provider, f"{provider}-refund", f"{provider}: a refund", media,
                   native[refund], False)]
    chosen = [native[i] for i in sorted({plain, original, refund})]
    if media == "application/json":
        batch = b"[" + b",".join(chosen) + b"]"
    else:  # a JSON array of the native texts, or one of them as it is
        batch = orjson.dumps([body.decode() for body in chosen])
        out.append(Example(provider, provider, f"{provider}: one body, as sent alone", media,
                           native[plain], True))
    out.append(Example(provider, provider, f"{provider}: a batch with a refund",
                       "application/json", batch, True))
    return out


def _platform_examples(source: str) -> list[Example]:
    at = "2022-02-01T09:00:00+09:00"
    person = {"source": source, "person": _PERSONS[0], "at": at}
    if source == "juki-net":
        events: list[dict[str, object]] = [
            {"type": "residence_change", "id": "M-1", **person, "residence": "271276"}]
    else:
        events = [{"type": "mynapoint_application", "id": "A-1", **person, "phase": 2,
                   "provider": "quickpay", "card_applied_on": "2021-12-01",
                   "residence": "131016"},
                  {"type": "health_insurance_registration", "id": "H-1", **person},
                  {"type": "public_funds_account_registration", "id": "F-1", **person}]
    body = b"".join(orjson.dumps(e) + b"\n" for e in events)
    return [Example(source, source, f"{source}: canonical events, one a line",
                    "application/x-ndjson", body, batch) for batch in (False, True)]


def _header(name: str, description: str, pattern: str, example: str) -> dict[str, Any]:
    parameter = Parameter(name=name, required=True, description=description, example=example,
                          schema=Schema(type="string", pattern=pattern),
                          **{"in": ParameterInType.header})
    return parameter.model_dump(by_alias=True, exclude_none=True, mode="json")


_SIGNED_BY = [
    _header(HEADER_PROVIDER, "The sender: whose secret signed the request. It must be the "
                             "provider in the path.", _ID_PATTERN, "quickpay"),
    _header(HEADER_TIMESTAMP, f"When the request was signed, Unix seconds (UTC); at most "
                              f"{MAX_SKEW} s from the service's clock.", "^[0-9]{1,12}$",
            "1646105700"),
]


def _answer(model: type[BaseModel], description: str, example: Mapping[str, object], *,
            headers: Mapping[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"model": model, "description": description,
                              "content": {"application/json": {"example": dict(example)}}}
    if headers:
        answer["headers"] = dict(headers)
    return answer


def _refused(reason: str, detail: str, *rejects: Mapping[str, object]) -> dict[str, object]:
    return {"status": "rejected", "reason": reason, "detail": detail, "rejects": list(rejects)}


_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.",
                                "schema": {"type": "integer", "minimum": 1}}}
_BAD_RECORD = {"item": 1, "position": 1, "reason": "unknown_municipality",
               "detail": "quickpay webhook 1 (transactionId QP-0001): storeMunicipalityCode: "
                         "unknown local government code 999999"}


def _signed_refusals() -> dict[int | str, dict[str, Any]]:
    return {
        401: _answer(Unauthorized, "Unsigned, wrongly signed, stale or replayed.", _refused(
            "stale", "timestamp +3600 s from the server's clock (at most 300 s accepted)")),
        403: _answer(Forbidden, "Another provider's endpoint or events, or a type of event "
                                "the sender does not send.",
                     _refused("cross_provider",
                              "transitcard signed a request for provider quickpay")),
        404: _answer(NotFound, "No such provider.",
                     _refused("unknown_provider", "no provider 'nopay'")),
        503: _answer(Unavailable, "Not stored now: retry after `Retry-After` seconds.",
                     _refused("unavailable", "the service's storage did not answer in time; "
                                             "retry the request (events are applied once, so "
                                             "a retry is safe)"),
                     headers=_RETRY_AFTER),
    }


def ingest_responses() -> dict[int | str, dict[str, Any]]:
    """Every answer of the two POST endpoints."""
    return _by_status({
        202: _answer(Accepted, "Accepted: the events are durably queued.", {
            "status": "accepted", "accepted": 1, "entries": ["4/1646105700123-0"],
            "rejects": []}),
        **_signed_refusals(),
        408: _answer(BodyTimeout, "The body did not all arrive in time.",
                     _refused("body_timeout", "the body did not arrive within 30 s")),
        413: _answer(PayloadTooLarge, "The body is too large.",
                     _refused("too_large", "body over 8388608 bytes")),
        422: _answer(Unprocessable, "A malformed body or record, or no transaction.", _refused(
            "unknown_municipality", f"1 bad record(s); first: {_BAD_RECORD['detail']}; "
                                    "nothing was stored", _BAD_RECORD)),
    })


def rejects_responses() -> dict[int | str, dict[str, Any]]:
    """Every answer of the rejects endpoint."""
    return _by_status({
        200: _answer(RejectsPage, "The provider's rejects after `after`, oldest first.", {
            "status": "ok", "rejects": [{
                "id": "1646106300412-0", "at": "2022-03-01T03:45:00.412+00:00",
                "event": "quickpay/QP-R1", "person": "MKA7Q2X9", "provider": "quickpay",
                "reason": "unknown_transaction",
                "detail": "unknown transaction QP-9f1c for MKA7Q2X9; given up after 9 "
                          "attempts over 600 s"}],
            "next": "1646106300412-0", "more": False}),
        **_signed_refusals(),
        422: _answer(Unprocessable, "`after` or `limit` is not valid (reason `malformed`).",
                     _refused("malformed", "limit: '0' is not an integer from 1 to 1000")),
    })


def _by_status(answers: dict[int | str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    return dict(sorted(answers.items(), key=lambda item: str(item[0])))


def ingest_operation(*, batch: bool) -> dict[str, Any]:
    """The headers, query and request body of ``POST /providers/{provider}/transactions``
    (``batch`` False) or ``/batch``; :class:`DocumentedApp` adds the bodies' media types and
    examples when the description is first asked for."""
    extra: dict[str, Any] = {
        "security": [{SIGNATURE_SCHEME: []}],
        "parameters": list(_SIGNED_BY),
        "requestBody": {"required": True, "content": {}, "description": (
            "The native body of the provider in the path (the media type is informational: "
            "the provider's adapter reads the body)." if not batch else
            "A JSON array of native bodies (objects, or strings for XML), or one native body "
            "that holds many records (a CSV file, a notification, JSON lines).")},
    }
    if batch:
        extra["parameters"].append(Parameter(
            name="lenient", required=False, schema=Schema(type="boolean", default=False),
            description="Keep the good records of a batch with bad ones (listed in the 202's "
                        "`rejects`); by default one bad record refuses the whole batch.",
            **{"in": ParameterInType.query}).model_dump(by_alias=True, exclude_none=True,
                                                         mode="json"))
    return extra


def _add_bodies(schema: dict[str, Any], every: Sequence[Example]) -> None:
    """Each example body, and its media type's schema, into the two posts of ``schema``."""
    for example in every:
        path = "/providers/{provider}/" + ("batch" if example.batch else "transactions")
        operation = schema["paths"].get(path, {}).get("post")
        if operation is None:
            continue
        content = operation["requestBody"]["content"]
        media = content.setdefault(example.media_type,
                                   {"schema": _body_schema(example.media_type, example.batch)})
        media.setdefault("examples", {})[example.name] = {
            "summary": example.summary, "value": example.value}


def _body_schema(media_type: str, batch: bool) -> dict[str, Any]:
    bodies = [{"$ref": _SCHEMAS + model.__name__} for model in _JSON_BODIES.values()]
    if media_type != "application/json":
        return {"type": "string", "description": _TEXT_BODIES.get(media_type, "")}
    if not batch:
        return {"anyOf": bodies}
    return {"type": "array", "minItems": 1, "items": {"anyOf": [
        *bodies, {"type": "string", "description": "An XML notification or a CSV file."}]}}


def rejects_operation() -> dict[str, Any]:
    """The headers and query of ``GET /providers/{provider}/rejects``."""
    query = [
        Parameter(name="after", required=False,
                  schema=Schema(type="string", pattern=r"^[0-9]{1,20}(-[0-9]{1,20})?$"),
                  description="The last `id` read (the previous page's `next`); from the "
                              "oldest kept when left out.", example="1646105700000-0",
                  **{"in": ParameterInType.query}),
        Parameter(name="limit", required=False,
                  schema=Schema(type="integer", minimum=1, maximum=1000, default=100),
                  description="At most this many rejects.", **{"in": ParameterInType.query}),
    ]
    return {"security": [{SIGNATURE_SCHEME: []}],
            "parameters": [*_SIGNED_BY, *(p.model_dump(by_alias=True, exclude_none=True,
                                                      mode="json") for p in query)]}


def signature_scheme() -> dict[str, Any]:
    """The security scheme of ``X-Signature`` (OpenAPI has no HMAC scheme: an API key in a
    header, whose description says how it is made)."""
    scheme = APIKey(name=HEADER_SIGNATURE, description=_SIGNATURE_DOC,
                    **{"in": APIKeyIn.header})
    return scheme.model_dump(by_alias=True, exclude_none=True, mode="json")


class DocumentedApp(FastAPI):
    """A FastAPI application whose description holds, besides what FastAPI generates from the
    routes, the native bodies of ``senders`` with examples and the signature's security
    scheme. They are made when the description is first asked for, so that the service starts
    without making examples."""

    def __init__(self, *, senders: Sequence[str] = (), **settings: Any) -> None:
        super().__init__(**settings)
        self.senders = tuple(senders)

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI description, made once."""
        if self.openapi_schema is None:
            schema = super().openapi()
            _add_bodies(schema, examples(self.senders))
            components = schema.setdefault("components", {})
            components.setdefault("schemas", {}).update(native_schemas())
            components.setdefault("securitySchemes", {})[SIGNATURE_SCHEME] = signature_scheme()
        return self.openapi_schema or {}


def _assets() -> StaticFiles:
    # fastapi-offline ships Swagger UI's and ReDoc's files as package data; only the files
    # are used, through our own pages.
    folder = importlib.resources.files("fastapi_offline") / "static"
    return StaticFiles(directory=str(folder))


_CONTENT_SECURITY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                     "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
                     "connect-src 'self'; base-uri 'none'; form-action 'none'")
"""The pages reach nothing but this service (ReDoc's footer would fetch its maker's logo
from a CDN otherwise) and run no script but the files served here; the viewers set styles
inline."""

_SWAGGER_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" href="{assets}/favicon.png">
<title>{title}</title>
</head>
<body>
<div id="swagger-ui" data-openapi="{openapi}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{start}"></script>
</body>
</html>
"""

SWAGGER_START = """\
// Swagger UI's start, a file of its own so that the page runs no inline script.
// Examples given as text (an XML notification, JSON lines) are shown as they are sent:
// Swagger UI would wrap an XML one in another element and quote a JSON-lines one.
function RawTextExamples() {
  return {
    afterLoad(system) {
      const sample = system.fn.getSampleSchema;
      system.fn.getSampleSchema = (schema, mediaType, config, example) =>
        typeof example === "string" ? example : sample(schema, mediaType, config, example);
    },
  };
}
SwaggerUIBundle({
  url: document.getElementById("swagger-ui").dataset.openapi,
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null,  // the default is an online service
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  plugins: [RawTextExamples],
});
"""


def _own_only(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = _CONTENT_SECURITY
    return page


def add_docs_pages(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), with their files served from
    :data:`ASSETS`; create ``app`` with ``docs_url=None, redoc_url=None``."""
    openapi_url = app.openapi_url or "/openapi.json"
    start = "/docs/start.js"

    @app.get(start, include_in_schema=False)
    def swagger_start() -> Response:
        return Response(SWAGGER_START, media_type="text/javascript")

    app.mount(ASSETS, _assets(), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def swagger(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _own_only(HTMLResponse(_SWAGGER_PAGE.format(
            assets=html.escape(root + ASSETS), title=html.escape(f"{app.title} (Swagger UI)"),
            openapi=html.escape(root + openapi_url), start=html.escape(root + start))))

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _own_only(get_redoc_html(
            openapi_url=root + openapi_url, title=f"{app.title} (ReDoc)",
            redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS}/favicon.png", with_google_fonts=False))

"""The HTTP ingestion service: providers post signed native transactions; 202 means durable.

Endpoints (FastAPI; run with ``pointengine serve`` or uvicorn's factory
``pointengine.service.app:app_from_env``):

``POST /providers/{provider}/transactions``
    One native body as the provider sends it (a QuickPay webhook, a TransitCard delivery, a
    CarrierPay notification, a TownCoin CSV file; canonical JSON lines for ``mykey`` and
    ``juki-net``).
``POST /providers/{provider}/batch``
    Many: a JSON array of native bodies (objects, or strings for XML), or one native body that
    holds many records (a CSV file). ``?lenient=true`` keeps the good records and lists the
    bad ones in the answer; by default one bad record refuses the whole batch.
``GET /providers/{provider}/rejects?after=<id>&limit=<n>``
    The provider's own events refused after their 202, a page at a time, signed like a post
    (over an empty body); the query is read only once the signature holds.
``GET /health``, ``GET /metrics`` (Prometheus text).
``GET /openapi.json``, ``/docs``, ``/redoc``
    The description of all this (answers, native bodies with examples, the signature) and its
    two viewers, served without any CDN (:mod:`pointengine.service.openapi`).

Answers: 202 ``{"accepted": n, "entries": [...]}`` once the events were XADDed to the Redis
shard streams of their persons (:mod:`pointengine.service.streams`; ``entries`` are
``<shard>/<id>``); 401 unsigned, wrongly signed (the signature covers the method, path and
query as received, the timestamp and the body: :mod:`pointengine.service.signing`), signed by a
sender without a secret (answered exactly as a wrong signature), stale or replayed; 403 a
provider posting for
another; 404 an unknown provider; 408 a body that took longer than ``body_seconds`` (30 s) to
arrive; 413 a body over ``max_body`` (8 MiB), as soon as it is (a chunked upload too); 422 a
malformed payload or record (one nested more than 64 levels deep included), with
``reason`` (the error's ``reason_code``), ``detail`` and ``rejects`` (``item``, ``position``,
``reason``, ``detail``); 503 ``unavailable`` when Redis did not answer within its socket timeout
(the answer never names Redis's address), 503 ``state_lost`` when Redis lost the store's state
(:mod:`pointengine.store.generation`: nothing is accepted that could not be applied), each 503
with ``Retry-After``. A refused request writes nothing to the stream,
except a 503 ``not_replicated`` (fewer than ``min_replicas`` replicas confirmed the entries in
time): its entries may be in the primary's stream, and a retry is safe because every event is
applied once by its key. Nor does it keep a place in the replay guard: only a 202 and a replay
(401 ``replayed``) leave the signature remembered.
Every answer is logged as one JSON line (:mod:`pointengine.service.jsonlog`); messages never carry
a My Number.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import orjson
import redis
from fastapi import FastAPI, Request
from fastapi import Path as PathParameter
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pointengine.adapters.base import ProviderAdapter, RecordAdapter, json_body
from pointengine.adapters.registry import ADAPTERS
from pointengine.errors import (
    ForeignTransaction,
    InputError,
    MalformedEvent,
    SignatureRejected,
    StateLost,
)
from pointengine.model.events import AnyEvent
from pointengine.model.privacy import redact
from pointengine.service.answers import (
    BODY_TIMEOUT,
    EMPTY,
    NOT_REPLICATED,
    UNAVAILABLE,
    UNKNOWN_PROVIDER,
    Healthy,
    Unhealthy,
)
from pointengine.service.jsonlog import configure as configure_logging
from pointengine.service.openapi import (
    DESCRIPTION,
    DocumentedApp,
    add_docs_pages,
    ingest_operation,
    ingest_responses,
    rejects_operation,
    rejects_responses,
)
from pointengine.service.platform_adapter import PLATFORM_SOURCES, CanonicalAdapter
from pointengine.service.signing import RedisReplayGuard, Verifier, load_secrets
from pointengine.service.streams import (
    DEFAULT_SHARDS,
    ENTRY_EVENTS,
    Appender,
    StreamKeys,
    encode_entry,
    lag_and_pending,
    read_provider_rejects,
    route,
    shard_count,
)
from pointengine.store.generation import Generation
from pointengine.store.redis_store import CONNECT_TIMEOUT, TIMEOUT, Keys, connect

__all__ = ["ServiceConfig", "app_from_env", "create_app", "default_adapters"]

log = logging.getLogger("pointengine.service.app")
_T = TypeVar("_T")
MAX_BODY = 8 * 1024 * 1024
BODY_SECONDS = 30.0
PARSERS = 4
RETRY_AFTER = 5
REJECTS_PAGE = 100
"""Rejects in a page of ``GET /providers/{provider}/rejects`` unless ``limit`` says."""
MAX_REJECTS_PAGE = 1_000
_STREAM_ID = re.compile(r"[0-9]{1,20}(?:-[0-9]{1,20})?")

AdapterFactory = Callable[[], ProviderAdapter]


def default_adapters() -> dict[str, AdapterFactory]:
    """Every payment provider's adapter, and the canonical adapter for platform sources."""
    factories: dict[str, AdapterFactory] = {pid: cls for pid, cls in ADAPTERS.items()}
    for source in PLATFORM_SOURCES:
        factories[source] = lambda source=source: CanonicalAdapter(source)  # type: ignore[misc]
    return factories


@dataclass
class ServiceConfig:
    """What the service needs: Redis, the verifier, the key prefix, the adapters."""

    client: redis.Redis
    verifier: Verifier
    prefix: str = "pe:"
    adapters: Mapping[str, AdapterFactory] = field(default_factory=default_adapters)
    max_body: int = MAX_BODY
    body_seconds: float = BODY_SECONDS
    """How long a request's body may take to arrive."""
    parsers: int = PARSERS
    """How many bodies are converted at once. Parsing a body takes up to about 60 times its
    size in memory (a body of nothing but empty arrays or elements), so this and ``max_body``
    bound what all requests together can hold; waiting requests hold only their bodies."""
    shards: int = DEFAULT_SHARDS
    """K, the number of person shards, unless Redis already holds one."""
    min_replicas: int = 0
    """Replicas that must hold the entries before a 202 (Redis ``WAIT``); 0 trusts the primary."""
    replica_timeout_ms: int = 1_000
    retry_after: int = RETRY_AFTER
    """Seconds a 503's ``Retry-After`` asks the sender to wait."""


@dataclass(frozen=True)
class _RequestLine:
    """What a signature covers of the request line: the method, and the path and query as
    they were received (undecoded; the query without its ``?``)."""

    method: str
    path: str
    query: str

    @classmethod
    def of(cls, request: Request) -> _RequestLine:
        """The request line of ``request``."""
        raw = request.scope.get("raw_path")
        # an ASGI server may leave raw_path out; the decoded path is then the best there is
        path = raw.decode("latin-1") if isinstance(raw, bytes) else request.url.path
        query = request.scope.get("query_string", b"")
        return cls(request.method, path, query.decode("latin-1"))


@dataclass
class _Reject:
    item: int
    position: int
    reason: str
    detail: str

    def doc(self) -> dict[str, object]:
        return {"item": self.item, "position": self.position, "reason": self.reason,
                "detail": self.detail}


class _Refusal(Exception):
    """A request refused with an HTTP status and a reason code; the detail is masked, since
    it may quote the request (a path naming a provider that is a My Number)."""

    def __init__(self, status: int, reason: str, detail: str,
                 rejects: Sequence[_Reject] = ()) -> None:
        detail = redact(detail.encode()).decode()
        super().__init__(detail)
        self.status, self.reason, self.detail, self.rejects = status, reason, detail, rejects


_REDIS_UP = "1 when Redis answered this scrape within its socket timeout, else 0"


class _StreamCollector(Collector):
    """Reads what lives in Redis at scrape time: whether Redis answers and still holds the
    store's state, stream lag and pending, worker counters, points awarded per program and
    provider."""

    def __init__(self, client: redis.Redis, keys: StreamKeys, totals_key: str,
                 generation: Generation) -> None:
        self.client = client
        self.keys = keys
        self.totals_key = totals_key
        self.generation = generation

    def collect(self) -> Iterator[Any]:
        """The metrics; only ``pointengine_redis_up 0`` when Redis does not answer."""
        try:
            try:
                self.generation.check()
                lost = 0
            except StateLost:
                lost = 1
            pipe = self.client.pipeline(transaction=False)
            pipe.get(self.keys.shards)
            pipe.hgetall(self.keys.stats)
            pipe.hgetall(self.totals_key)
            count, stats, totals = pipe.execute()
            shards = self.keys.all_shards(int(count)) if count is not None else []
            lengths: Any = []
            parked: Any = []
            if shards:
                pipe = self.client.pipeline(transaction=False)
                for shard in shards:
                    pipe.xlen(self.keys.shard(shard))
                for shard in shards:
                    pipe.zcard(self.keys.parked(shard))
                replies = pipe.execute()
                lengths, parked = replies[:len(shards)], replies[len(shards):]
            per_shard = lag_and_pending(self.client, self.keys, shards)
        except redis.RedisError:
            yield GaugeMetricFamily("pointengine_redis_up", _REDIS_UP, value=0)
            return
        yield GaugeMetricFamily("pointengine_redis_up", _REDIS_UP, value=1)
        yield GaugeMetricFamily("pointengine_state_lost",
                                "1 when Redis lost the store's state (nothing is accepted or "
                                "applied until `pointengine reinit`), else 0", value=lost)
        yield GaugeMetricFamily("pointengine_stream_length",
                                "entries in the ingestion streams (all shards)",
                                value=sum(int(n) for n in lengths))
        yield GaugeMetricFamily("pointengine_stream_lag",
                                "entries not yet delivered to any worker (all shards)",
                                value=sum(lag for lag, _ in per_shard.values()))
        yield GaugeMetricFamily("pointengine_stream_pending",
                                "entries delivered to a worker and not yet acknowledged "
                                "(all shards)",
                                value=sum(pending for _, pending in per_shard.values()))
        yield GaugeMetricFamily("pointengine_refunds_parked",
                                "refunds of a transaction not seen yet, waiting to be tried "
                                "again (all shards)",
                                value=sum(int(n) for n in parked))
        yield GaugeMetricFamily("pointengine_stream_shards", "person shards (K)",
                                value=len(shards) - 1 if shards else 0)
        events = CounterMetricFamily("pointengine_worker_events",
                                     "events the workers evaluated, by outcome",
                                     labels=["status"])
        rejected = CounterMetricFamily("pointengine_events_rejected",
                                       "events the engine refused, by reason", labels=["reason"])
        recreated = 0
        for name, value in stats.items():
            key = _text(name)
            if key.startswith("rejected:"):
                rejected.add_metric([key.removeprefix("rejected:")], int(value))
            elif key == "groups_recreated":
                recreated = int(value)
            else:
                events.add_metric([key], int(value))
        yield events
        yield rejected
        yield CounterMetricFamily("pointengine_worker_groups_recreated",
                                  "consumer groups the workers found missing and made again",
                                  value=recreated)
        awarded = GaugeMetricFamily("pointengine_points_awarded",
                                    "net points awarded (yen), by program and provider",
                                    labels=["program", "provider"])
        for name, value in totals.items():
            program, provider = orjson.loads(name)
            awarded.add_metric([program, provider], int(value))
        yield awarded


class _Service:
    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.keys = StreamKeys.under(config.prefix)
        self.shards: int | None = None
        """K, read from Redis (or stored there) on the first request."""
        self._parsing = threading.BoundedSemaphore(config.parsers)
        self.registry = CollectorRegistry()
        """What ``/metrics`` shows."""
        counters = self.registry
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # Several processes (serve --processes N): each writes its counters to files in
            # that folder and /metrics sums every process's, whichever process answers.
            counters = CollectorRegistry()
            MultiProcessCollector(self.registry)  # type: ignore[no-untyped-call]
        self.accepted_requests = Counter(
            "pointengine_requests_accepted", "requests answered 202", ["provider"],
            registry=counters)
        self.accepted_events = Counter(
            "pointengine_events_accepted", "canonical events written to the stream",
            ["provider"], registry=counters)
        self.rejected_requests = Counter(
            "pointengine_requests_rejected", "requests refused, by reason",
            ["provider", "reason"], registry=counters)
        self.rejected_records = Counter(
            "pointengine_records_rejected", "native records refused, by reason",
            ["provider", "reason"], registry=counters)
        self.generation = Generation(config.client, config.prefix)
        """The store's generation as this process knows it: nothing is accepted once Redis
        has lost the state (:mod:`pointengine.store.generation`)."""
        self.appender = Appender(config.client, self.keys, self.generation)
        self._shards_of: str | None = None
        """The generation :attr:`shards` was read under."""
        self.registry.register(_StreamCollector(
            config.client, self.keys, Keys.under(config.prefix).totals, self.generation))

    def ingest(self, provider: str, body: bytes, headers: Mapping[str, str], *,
               batch: bool, lenient: bool, line: _RequestLine) -> tuple[int, dict[str, object]]:
        started = time.perf_counter()
        label = provider if provider in self.config.adapters else "unknown"
        try:
            status, doc = self._ingest(provider, body, headers, batch=batch, lenient=lenient,
                                       line=line)
        except _Refusal as refusal:
            return self.refused(provider, refusal, endpoint=_endpoint(batch), size=len(body),
                                started=started)
        self._log(label, _endpoint(batch), status, len(body), started, doc)
        return status, doc

    def refused(self, provider: str, refusal: _Refusal, *, endpoint: str, size: int,
                started: float | None = None) -> tuple[int, dict[str, object]]:
        """Count and log a refusal; its answer."""
        label = provider if provider in self.config.adapters else "unknown"
        self.rejected_requests.labels(label, refusal.reason).inc()
        for reject in refusal.rejects:
            self.rejected_records.labels(label, reject.reason).inc()
        doc: dict[str, object] = {
            "status": "rejected", "reason": refusal.reason, "detail": refusal.detail,
            "rejects": [r.doc() for r in refusal.rejects[:100]]}
        self._log(label, endpoint, refusal.status, size, started, doc)
        return refusal.status, doc

    @staticmethod
    def _log(label: str, endpoint: str, status: int, size: int, started: float | None,
             doc: Mapping[str, object]) -> None:
        fields: dict[str, object] = {
            "provider": label, "endpoint": endpoint, "status": status, "bytes": size}
        if started is not None:
            fields["ms"] = round((time.perf_counter() - started) * 1000, 2)
        fields.update({k: doc[k] for k in ("accepted", "reason", "detail") if k in doc})
        log.log(logging.INFO if status < 500 else logging.ERROR, "ingest",
                extra={"fields": fields})

    def _ingest(self, provider: str, body: bytes, headers: Mapping[str, str], *,
                batch: bool, lenient: bool, line: _RequestLine) -> tuple[int, dict[str, object]]:
        signer = self._verify(provider, body, headers, line)
        try:
            return self._store(provider, signer, body, batch=batch, lenient=lenient)
        except BaseException:
            # A refused request wrote nothing, so its signature may not block a corrected
            # retry either (and a 503 must be retried as it is).
            with contextlib.suppress(redis.RedisError):
                self.config.verifier.forget(headers)
            raise

    def _verify(self, provider: str, body: bytes, headers: Mapping[str, str],
                line: _RequestLine) -> str:
        """The signer of a request for ``provider``'s endpoint, or a refusal (404, 413, 401,
        403, 503)."""
        if provider not in self.config.adapters:
            raise _Refusal(404, UNKNOWN_PROVIDER, f"no provider {provider!r}")
        if len(body) > self.config.max_body:
            raise _Refusal(413, "too_large", f"body over {self.config.max_body} bytes")
        try:
            return self.config.verifier.verify(headers, body, method=line.method,
                                               path=line.path, query=line.query,
                                               provider=provider)
        except ForeignTransaction as exc:
            raise _Refusal(403, exc.reason_code, str(exc)) from None
        except SignatureRejected as exc:
            raise _Refusal(401, exc.reason_code, str(exc)) from None
        except redis.RedisError as exc:  # the replay guard lives in Redis
            raise _unavailable(exc) from None

    def rejects(self, provider: str, body: bytes, headers: Mapping[str, str], *,
                line: _RequestLine, after: str | None,
                limit: str | None) -> tuple[int, dict[str, object]]:
        """``provider``'s own events refused after a 202, for a request it signed: a page of
        at most ``limit`` (1 to 1000, 100 when None) after the entry ``after``."""
        started = time.perf_counter()
        try:
            self._verify(provider, body, headers, line)
            try:
                status, doc, detail = 200, *self._rejects_page(provider, after, limit)
            except BaseException:
                with contextlib.suppress(redis.RedisError):
                    self.config.verifier.forget(headers)
                raise
        except _Refusal as refusal:
            return self.refused(provider, refusal, endpoint="rejects", size=len(body),
                                started=started)
        self._log(provider, "rejects", status, len(body), started, {"detail": detail})
        return status, doc

    def _rejects_page(self, provider: str, after: str | None,
                      limit: str | None) -> tuple[dict[str, object], str]:
        # The query is read only once the request is known to be the provider's: an unsigned
        # one learns nothing, not even that its query was wrong.
        if after is not None and not (_STREAM_ID.fullmatch(after) and all(
                int(part) < 1 << 64 for part in after.split("-"))):  # Redis's own bound
            raise _Refusal(422, MalformedEvent.reason_code,
                           f"after: {after[:40]!r} is not a reject's id (like 1646105700000-0)")
        count = (int(limit) if limit is not None and limit.isascii() and limit.isdigit()
                 and len(limit) <= 4 else 0)
        if limit is not None and not 1 <= count <= MAX_REJECTS_PAGE:
            raise _Refusal(422, MalformedEvent.reason_code,
                           f"limit: {limit[:20]!r} is not an integer from 1 to "
                           f"{MAX_REJECTS_PAGE}")
        try:
            # Rejects lost with the rest of the state would read as "nothing refused".
            self.generation.check()
            rejects, more = read_provider_rejects(self.config.client, self.keys, provider,
                                                  after=after, count=count or REJECTS_PAGE)
        except StateLost as exc:
            raise _Refusal(503, exc.reason_code, str(exc)) from None
        except redis.RedisError as exc:
            raise _unavailable(exc) from None
        page: dict[str, object] = {
            "status": "ok", "rejects": [r.doc() for r in rejects],
            "next": rejects[-1].id if rejects else (after or "0"), "more": more}
        return page, f"{len(rejects)} reject(s)"

    def _store(self, provider: str, signer: str, body: bytes, *, batch: bool,
               lenient: bool) -> tuple[int, dict[str, object]]:
        """Convert a verified body and write its events to the shard streams."""
        factory = self.config.adapters[provider]
        with self._parsing, factory() as adapter:
            payloads = _split(body, adapter) if batch else [body]
            events, rejects = _convert(adapter, payloads)
        if rejects and (not lenient or not events):
            first = rejects[0]
            raise _Refusal(422, first.reason, f"{len(rejects)} bad record(s); first: "
                           f"{first.detail}; nothing was stored", rejects)
        if not events:
            raise _Refusal(422, EMPTY, "no transactions in the body; nothing was stored")
        try:
            self.config.verifier.check_events(signer, events)
        except ForeignTransaction as exc:
            raise _Refusal(403, exc.reason_code, str(exc)) from None
        try:
            generation = self.generation.expected()
            if self.shards is None or self._shards_of != generation:
                self.shards = shard_count(self.config.client, self.keys, self.config.shards)
                self._shards_of = generation
            entries: list[tuple[str, dict[str, bytes]]] = []
            for shard, group in route(events, self.shards).items():
                for start in range(0, len(group), ENTRY_EVENTS):
                    entries.append((shard, encode_entry(signer,
                                                        group[start:start + ENTRY_EVENTS])))
            written = self.appender.append(entries)
            ids = [f"{shard}/{i}" for (shard, _), i in zip(entries, written, strict=True)]
            self._wait_for_replicas()
        except StateLost as exc:
            raise _Refusal(503, exc.reason_code, str(exc)) from None
        except redis.RedisError as exc:
            raise _unavailable(exc) from None
        self.accepted_requests.labels(provider).inc()
        self.accepted_events.labels(provider).inc(len(events))
        for reject in rejects:
            self.rejected_records.labels(provider, reject.reason).inc()
        return 202, {"status": "accepted", "accepted": len(events), "entries": ids,
                     "rejects": [r.doc() for r in rejects[:100]]}

    def _wait_for_replicas(self) -> None:
        """Refuse with 503 unless ``min_replicas`` replicas confirm the writes in time.

        The entries are then in the primary's stream but perhaps nowhere else: the provider
        is told to retry, which is safe because every event is applied once by its key.
        """
        wanted = self.config.min_replicas
        if wanted <= 0:
            return
        confirmed = int(self.config.client.wait(wanted, self.config.replica_timeout_ms))
        if confirmed < wanted:
            raise _Refusal(503, NOT_REPLICATED,
                           f"{confirmed} of {wanted} replica(s) confirmed the entries within "
                           f"{self.config.replica_timeout_ms} ms; retry the request (events "
                           "are applied once, so a retry is safe)")


def _endpoint(batch: bool) -> str:
    return "batch" if batch else "transactions"


def _unavailable(exc: redis.RedisError) -> _Refusal:
    """The 503 of a Redis that failed: the answer says so without Redis's own message (which
    names its address); the log keeps that message."""
    log.warning("redis unavailable", extra={"fields": {"detail": str(exc)}})
    return _Refusal(503, UNAVAILABLE, "the service's storage did not answer in time; retry "
                    "the request (events are applied once, so a retry is safe)")


def _split(body: bytes, adapter: ProviderAdapter) -> list[bytes]:
    """A batch body's native payloads: a JSON array's elements, or the body itself."""
    head = body.lstrip()[:1]
    if head != b"[":
        if adapter.content_type == "application/json":
            raise _Refusal(422, MalformedEvent.reason_code,
                           "a batch is a JSON array of native bodies; nothing was stored")
        return [body]
    try:
        # Each element is encoded again for its adapter, and a key given twice (its first value
        # with it) or a number that decoding rewrites would be gone by then: the body is read
        # as every JSON body is, and such a batch is refused whole.
        items = json_body(body, "batch")
    except InputError as exc:
        raise _Refusal(422, exc.reason_code, str(exc)) from None
    if not isinstance(items, list):
        raise _Refusal(422, MalformedEvent.reason_code, "batch: not a JSON array")
    payloads: list[bytes] = []
    for item in items:
        if isinstance(item, str):
            payloads.append(item.encode())
        elif isinstance(item, dict | list):
            payloads.append(orjson.dumps(item))
        else:
            raise _Refusal(422, MalformedEvent.reason_code,
                           "batch: each element is a native body (object or string)")
    return payloads


def _convert(adapter: ProviderAdapter,
             payloads: Sequence[bytes]) -> tuple[list[AnyEvent], list[_Reject]]:
    """Every good event in order, and each bad record with its reason."""
    events: list[AnyEvent] = []
    rejects: list[_Reject] = []
    for item, payload in enumerate(payloads, start=1):
        try:
            if isinstance(adapter, RecordAdapter):
                for record in adapter.records(payload):
                    try:
                        events.append(adapter.to_event(record))
                    except InputError as exc:
                        rejects.append(_Reject(item, record.position, exc.reason_code, str(exc)))
            else:
                events.extend(adapter.to_events(payload))
        except InputError as exc:
            rejects.append(_Reject(item, 0, exc.reason_code, str(exc)))
    return events, rejects


async def _bounded_body(request: Request, limit: int, seconds: float) -> bytes:
    """The request's body, read as it arrives: refused (413) as soon as it is over ``limit``
    bytes, declared or not (a chunked upload declares no length), and (408) when it has not
    all arrived within ``seconds``, so that no request holds more than ``limit`` bytes of
    memory or a worker thread for longer."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _Refusal(413, "too_large", f"body over {limit} bytes")
    parts: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(seconds):
            async for part in request.stream():
                size += len(part)
                if size > limit:
                    raise _Refusal(413, "too_large", f"body over {limit} bytes")
                parts.append(part)
    except TimeoutError:
        raise _Refusal(408, BODY_TIMEOUT,
                       f"the body did not arrive within {seconds:g} s") from None
    return b"".join(parts)


def create_app(config: ServiceConfig) -> FastAPI:
    """The FastAPI application over ``config``."""
    service = _Service(config)
    providers = sorted(config.adapters)
    app = DocumentedApp(title="pointengine ingestion", version="1", description=DESCRIPTION,
                        docs_url=None, redoc_url=None, senders=providers)
    add_docs_pages(app)
    app.add_middleware(_RetryAfter, seconds=config.retry_after)
    app.state.service = service

    def sender(what: str) -> Any:
        return PathParameter(description=what, json_schema_extra={"enum": providers})

    async def _post(provider: str, request: Request, *, batch: bool) -> JSONResponse:
        try:
            body = await _bounded_body(request, config.max_body, config.body_seconds)
        except _Refusal as refusal:
            status, doc = service.refused(provider, refusal, endpoint=_endpoint(batch), size=0)
            return JSONResponse(doc, status_code=status)
        lenient = request.query_params.get("lenient", "").lower() in ("1", "true", "yes")
        status, doc = await run_in_threadpool(service.ingest, provider, body, request.headers,
                                              batch=batch, lenient=lenient,
                                              line=_RequestLine.of(request))
        return JSONResponse(doc, status_code=status)

    @app.post("/providers/{provider}/transactions", status_code=202, tags=["ingestion"],
              summary="Post one native body", operation_id="postTransactions",
              responses=ingest_responses(),
              response_description="Accepted",
              openapi_extra=ingest_operation(batch=False))
    async def transactions(request: Request,
                           provider: str = sender("The sender; the signer.")) -> JSONResponse:
        """One signed native body: a QuickPay webhook, a TransitCard delivery, a CarrierPay
        notification, a TownCoin file, or canonical JSON lines from `mykey` and `juki-net`.
        A bad record refuses the whole body."""
        return await _post(provider, request, batch=False)

    @app.post("/providers/{provider}/batch", status_code=202, tags=["ingestion"],
              summary="Post a batch", operation_id="postBatch", responses=ingest_responses(),
              response_description="Accepted",
              openapi_extra=ingest_operation(batch=True))
    async def batch(request: Request,
                    provider: str = sender("The sender; the signer.")) -> JSONResponse:
        """A signed batch: a JSON array of native bodies (objects, or strings for XML and
        CSV), or one native body that holds many records. One bad record refuses the batch
        unless `lenient=true`."""
        return await _post(provider, request, batch=True)

    @app.get("/providers/{provider}/rejects", tags=["ingestion"],
             summary="Read the events refused after a 202", operation_id="getRejects",
             responses=rejects_responses(),
             response_description="A page of rejects", openapi_extra=rejects_operation())
    async def rejects(request: Request,
                      provider: str = sender("The sender; the signer.")) -> JSONResponse:
        """The caller's own events that were accepted (202) and then refused when applied
        (a refund whose transaction never came, an application naming an unknown provider),
        oldest first, a page at a time: pass each page's `next` as `after`. Signed like a
        post, over an empty body; kept for the last 100,000 or so of each sender."""
        try:
            body = await _bounded_body(request, config.max_body, config.body_seconds)
        except _Refusal as refusal:
            status, doc = service.refused(provider, refusal, endpoint="rejects", size=0)
            return JSONResponse(doc, status_code=status)
        query = request.query_params
        status, doc = await run_in_threadpool(
            service.rejects, provider, body, request.headers, line=_RequestLine.of(request),
            after=query.get("after"), limit=query.get("limit"))
        return JSONResponse(doc, status_code=status)

    @app.get("/health", tags=["operations"], operation_id="health", responses={
        200: {"model": Healthy, "description": "Redis answers and holds the state."},
        503: {"model": Unhealthy, "description": "Redis does not answer, or lost the state.",
              "headers": {"Retry-After": {"description": "Seconds to wait before asking "
                                                          "again.",
                                          "schema": {"type": "integer", "minimum": 1}}}}})
    async def health() -> JSONResponse:
        """200 when Redis answers and holds the store's state; 503 ``unavailable`` when it
        does not answer within its socket timeout, 503 ``state_lost`` when it lost the state
        (``status`` and ``reason`` say which, ``detail`` what to do)."""
        return await _aside(checked_health)

    def checked_health() -> JSONResponse:
        try:
            service.generation.check()
        except StateLost as exc:
            return JSONResponse({"status": exc.reason_code, "reason": exc.reason_code,
                                 "detail": str(exc)}, status_code=503)
        except redis.RedisError as exc:
            refusal = _unavailable(exc)
            return JSONResponse({"status": refusal.reason, "reason": refusal.reason,
                                 "detail": refusal.detail}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/metrics", tags=["operations"], operation_id="metrics",
             response_class=PlainTextResponse,
             response_description="Prometheus text exposition")
    async def metrics() -> Response:
        """Prometheus text exposition."""
        text = await _aside(generate_latest, service.registry)
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    # /health and /metrics wait for Redis in threads of their own: the request threads may all
    # be taken by uploads waiting for a parser, and a health check must answer all the same.
    operations: list[anyio.CapacityLimiter] = []

    async def _aside(call: Callable[..., _T], *args: object) -> _T:
        if not operations:
            operations.append(anyio.CapacityLimiter(2))
        return await anyio.to_thread.run_sync(call, *args, limiter=operations[0])

    return app


def app_from_env() -> FastAPI:
    """The application configured from the environment (uvicorn ``--factory``).

    ``POINTENGINE_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``), ``POINTENGINE_PREFIX``
    (``pe:``), ``POINTENGINE_SECRETS_FILE`` and ``POINTENGINE_SECRET_<PROVIDER>``,
    ``POINTENGINE_LOG_LEVEL`` (``INFO``), ``POINTENGINE_SHARDS`` (K if Redis holds none; 16),
    ``POINTENGINE_MIN_REPLICAS`` (0), ``POINTENGINE_REPLICA_TIMEOUT_MS`` (1000),
    ``POINTENGINE_REDIS_TIMEOUT`` and ``POINTENGINE_REDIS_CONNECT_TIMEOUT`` (seconds a Redis
    command and a connection may take: 2 and 1) and ``POINTENGINE_RETRY_AFTER`` (a 503's
    ``Retry-After``, seconds: 5).
    """
    configure_logging(os.environ.get("POINTENGINE_LOG_LEVEL", "INFO"))
    client = connect(
        os.environ.get("POINTENGINE_REDIS_URL", "redis://127.0.0.1:6379/0"),
        timeout=float(os.environ.get("POINTENGINE_REDIS_TIMEOUT", TIMEOUT)),
        connect_timeout=float(os.environ.get("POINTENGINE_REDIS_CONNECT_TIMEOUT",
                                             CONNECT_TIMEOUT)))
    prefix = os.environ.get("POINTENGINE_PREFIX", "pe:")
    secrets_file = os.environ.get("POINTENGINE_SECRETS_FILE")
    secrets = load_secrets(Path(secrets_file) if secrets_file else None)
    verifier = Verifier(secrets, RedisReplayGuard(client, prefix=prefix))
    shards = int(os.environ.get("POINTENGINE_SHARDS", DEFAULT_SHARDS))
    return create_app(ServiceConfig(
        client, verifier, prefix=prefix, shards=shards,
        min_replicas=int(os.environ.get("POINTENGINE_MIN_REPLICAS", 0)),
        replica_timeout_ms=int(os.environ.get("POINTENGINE_REPLICA_TIMEOUT_MS", 1_000)),
        retry_after=int(os.environ.get("POINTENGINE_RETRY_AFTER", RETRY_AFTER))))


class _RetryAfter:
    """Gives every 503 a ``Retry-After`` (seconds): each one is worth retrying, a little later
    (ASGI middleware; it only adds the header)."""

    def __init__(self, app: ASGIApp, seconds: int) -> None:
        self.app = app
        self.value = str(max(1, seconds))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 503:
                MutableHeaders(scope=message).setdefault("Retry-After", self.value)
            await send(message)

        await self.app(scope, receive, sending)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

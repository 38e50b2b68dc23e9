"""Workers: a consumer group evaluates the ingestion stream on a shared Redis store.

Each :class:`Worker` reads a batch of entries (``XREADGROUP``), runs
:meth:`Engine.process <pointengine.engine.Engine.process>` on their events in stream order on a
:class:`~pointengine.redis_store.RedisStore`, and only then acknowledges them (``XACK``), in
one ``MULTI`` with its counters. A worker that dies between reading and acknowledging leaves
its entries pending; the others take them over with ``XAUTOCLAIM`` once they have been idle for
``claim_idle_ms``. Delivery is therefore at least once; the store applies each event key once
(a second delivery is a ``duplicate`` that changes nothing), so every event takes effect
exactly once.

Order: the events of one entry (one request) are evaluated in order, and entries of one batch
in stream order; entries taken by different workers at the same time are not ordered between
them. A refund that reaches the store before its transaction (``unknown transaction``) is
queued again at the end of the stream, up to ``max_attempts`` times, and is refused only then.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from pointengine.engine import Engine
from pointengine.errors import InputError, OperationalError
from pointengine.events import AnyEvent
from pointengine.streams import StreamKeys, decode_entry, encode_entry

__all__ = ["Worker", "WorkerReport", "reason_code"]

log = logging.getLogger("pointengine.worker")
RETRYABLE = "unknown transaction"


def reason_code(reason: str | None) -> str:
    """A short, countable code for the engine's or store's refusal message."""
    text = reason or ""
    if text.startswith("unknown transaction"):
        return "unknown_transaction"
    if text.startswith("refund of"):
        return "refund_exceeds_payment"
    if text.startswith("unknown provider"):
        return "unknown_provider"
    if text.startswith("already applied for phase"):
        return "provider_already_chosen"
    return "refused"


@dataclass
class WorkerReport:
    """What one worker did."""

    entries: int = 0
    events: int = 0
    claimed: int = 0
    retried: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)


class Worker:
    """One consumer of the group; ``engine`` must run on a RedisStore with the same prefix."""

    def __init__(self, client: redis.Redis, engine: Engine, *, prefix: str = "pe:",
                 name: str | None = None, count: int = 100, block_ms: int = 1000,
                 claim_idle_ms: int = 30_000, max_attempts: int = 5) -> None:
        self.client = client
        self.engine = engine
        self.keys = StreamKeys.under(prefix)
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{threading.get_ident()}"
        self.count = count
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.max_attempts = max_attempts
        self.report = WorkerReport()
        self._cursor = "0-0"
        self._last_claim = 0.0

    def ensure_group(self) -> None:
        """Create the consumer group (and the stream) unless they exist, and join it."""
        try:
            self.client.xgroup_create(self.keys.stream, self.keys.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise OperationalError(f"cannot create the consumer group: {exc}") from exc
        self.client.xgroup_createconsumer(self.keys.stream, self.keys.group, self.name)

    def read(self, block_ms: int | None = None) -> list[tuple[str, dict[Any, Any] | None]]:
        """Entries to evaluate: stale pending ones of dead workers first, then new ones."""
        entries = self.claim() if self._claim_due() else []
        if entries:
            return entries
        reply: Any = self.client.xreadgroup(self.keys.group, self.name, {self.keys.stream: ">"},
                                       count=self.count,
                                       block=self.block_ms if block_ms is None else block_ms)
        if reply:
            return [(_text(i), f) for i, f in reply[0][1]]
        return self.claim()

    def _claim_due(self) -> bool:
        return time.monotonic() - self._last_claim >= max(0.05, self.claim_idle_ms / 2000)

    def claim(self) -> list[tuple[str, dict[Any, Any] | None]]:
        """Take over entries pending for longer than ``claim_idle_ms`` (XAUTOCLAIM)."""
        self._last_claim = time.monotonic()
        reply: Any = self.client.xautoclaim(self.keys.stream, self.keys.group, self.name,
                                       self.claim_idle_ms, self._cursor, count=self.count)
        self._cursor = _text(reply[0])
        claimed = [(_text(i), f) for i, f in reply[1]]
        deleted = [_text(i) for i in (reply[2] if len(reply) > 2 else [])]
        if deleted:
            self.client.xack(self.keys.stream, self.keys.group, *deleted)
        if claimed:
            self.report.claimed += len(claimed)
            log.info("claimed", extra={"fields": {"worker": self.name, "entries": len(claimed)}})
        return claimed

    def step(self, block_ms: int | None = None) -> int:
        """Read, evaluate and acknowledge one batch; the number of entries handled."""
        entries = self.read(block_ms)
        if entries:
            self.handle(entries)
        return len(entries)

    def handle(self, entries: Sequence[tuple[str, dict[Any, Any] | None]]) -> None:
        """Evaluate ``entries`` in order, then acknowledge them with the counters, atomically."""
        events: list[AnyEvent] = []
        origin: list[tuple[str, int]] = []
        stats: Counter[str] = Counter()
        for _, fields in entries:
            if fields is None:
                continue
            try:
                provider, attempt, batch = decode_entry(fields)
            except InputError as exc:
                stats[f"rejected:{exc.reason_code}"] += 1
                log.error("unreadable entry", extra={"fields": {"worker": self.name,
                                                                 "detail": str(exc)}})
                continue
            events.extend(batch)
            origin.extend([(provider, attempt)] * len(batch))
        decisions = self.engine.process(events) if events else []
        retries: list[tuple[str, int, AnyEvent]] = []
        for decision, (provider, attempt) in zip(decisions, origin, strict=True):
            status = decision.applied.status
            if status == "rejected":
                reason = decision.applied.reason or ""
                if reason.startswith(RETRYABLE) and attempt + 1 < self.max_attempts:
                    retries.append((provider, attempt + 1, decision.event))
                    stats["retried"] += 1
                    continue
                code = reason_code(reason)
                stats[f"rejected:{code}"] += 1
                self.report.rejected[code] += 1
            stats[status] += 1
            self.report.statuses[status] += 1
        stats["events"] += len(events)
        pipe = self.client.pipeline(transaction=True)
        for provider, attempt, event in retries:
            pipe.xadd(self.keys.stream, encode_entry(provider, [event], attempt))  # type: ignore[arg-type]
        pipe.xack(self.keys.stream, self.keys.group, *(i for i, _ in entries))
        for name, value in stats.items():
            pipe.hincrby(self.keys.stats, name, value)
        pipe.execute()
        self.report.entries += len(entries)
        self.report.events += len(events)
        self.report.retried += len(retries)

    def drained(self) -> bool:
        """True when every entry was delivered and acknowledged (no lag, nothing pending)."""
        length = int(self.client.xlen(self.keys.stream))
        groups: Any = self.client.xinfo_groups(self.keys.stream)
        for group in groups:
            if _text(group["name"]) == self.keys.group:
                lag = group.get("lag")
                lag = length if lag is None else int(lag)
                return lag == 0 and int(group["pending"]) == 0
        return length == 0

    def run(self, *, stop: threading.Event | None = None, until_empty: bool = False) -> None:
        """Work until ``stop`` is set, or (``until_empty``) until the stream is drained.

        Redis failures are logged and retried after a pause; the entries of a failed batch
        stay pending and are claimed again.
        """
        self.ensure_group()
        while stop is None or not stop.is_set():
            try:
                handled = self.step()
                if not handled and until_empty and self.drained():
                    return
            except (OperationalError, redis.RedisError) as exc:
                log.error("batch failed", extra={"fields": {"worker": self.name,
                                                            "detail": str(exc)}})
                with contextlib.suppress(Exception):
                    time.sleep(min(1.0, self.claim_idle_ms / 1000))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

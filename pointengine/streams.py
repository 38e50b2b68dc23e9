"""The ingestion stream: how accepted events travel from the HTTP service to the workers.

One Redis Stream (``<prefix>stream``) with one consumer group (``workers``). Each entry holds
the canonical events of (part of) one accepted request, in the order the provider sent them::

    p  the provider (or platform source) that signed the request
    a  the attempt: 0, then 1, 2, ... when a worker queues an event again (a refund that
       arrived before its transaction)
    e  a JSON array of canonical events (``model_dump(mode="json")``)

``<prefix>stats`` is a hash of counters the workers keep (events, applied, duplicate,
``rejected:<reason>``, retried) so that the service's ``/metrics`` shows what the workers did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from pointengine.errors import MalformedEvent
from pointengine.events import AnyEvent, event_from_dict

__all__ = ["ENTRY_EVENTS", "GROUP", "StreamKeys", "decode_entry", "encode_entry"]

GROUP = "workers"
ENTRY_EVENTS = 500
"""Most events in one stream entry; a larger request is split into several entries."""


@dataclass(frozen=True, slots=True)
class StreamKeys:
    """The Redis keys of the ingestion stream under ``prefix``."""

    stream: str
    stats: str
    group: str = GROUP

    @classmethod
    def under(cls, prefix: str) -> StreamKeys:
        """The keys under ``prefix`` (use the RedisStore's prefix)."""
        return cls(prefix + "stream", prefix + "stats")


def encode_entry(provider: str, events: Sequence[AnyEvent], attempt: int = 0) -> dict[str, bytes]:
    """The fields of one stream entry."""
    return {"p": provider.encode(), "a": str(attempt).encode(),
            "e": orjson.dumps([e.model_dump(mode="json") for e in events])}


def decode_entry(fields: dict[Any, Any]) -> tuple[str, int, list[AnyEvent]]:
    """(provider, attempt, events) of an entry; MalformedEvent if it cannot be read."""
    try:
        raw = {k.decode() if isinstance(k, bytes) else k: v for k, v in fields.items()}
        provider = raw["p"].decode() if isinstance(raw["p"], bytes) else str(raw["p"])
        attempt = int(raw.get("a", 0))
        items = orjson.loads(raw["e"])
    except (KeyError, ValueError, orjson.JSONDecodeError) as exc:
        raise MalformedEvent(f"unreadable stream entry: {exc}") from None
    if not isinstance(items, list):
        raise MalformedEvent("unreadable stream entry: e is not an array")
    return provider, attempt, [event_from_dict(item) for item in items]

"""The ingestion streams: how accepted events travel from the HTTP service to the workers.

The stream is partitioned into K shard streams (``<prefix>stream:0`` .. ``<prefix>stream:K-1``)
by a stable hash of the person (CRC-32 of the MyKey ID), so that every event of one person lands
in one shard, in the order the service accepted it. K is stored once in Redis
(``<prefix>stream:shards``, ``SET NX``; :data:`DEFAULT_SHARDS` unless the first service or
worker to start asks for another), so that the service and every worker agree on it. Lottery
draws concern many persons: they go to a dedicated shard, ``<prefix>stream:draws``, which the
workers order against the person shards by entry ID (see :mod:`pointengine.service.worker`).

Every shard stream has the consumer group ``workers``. Each entry holds the canonical events of
(part of) one accepted request that fall into that shard, in the order the provider sent them::

    p  the provider (or platform source) that signed the request
    a  the attempt: 0, then 1, 2, ... when a worker queues an event again (a refund that
       arrived before its transaction)
    f  (retries only) when the first attempt met the unknown transaction, Unix ms
    e  a JSON array of canonical events (``model_dump(mode="json")``)

A refund that meets an unknown transaction waits in its shard's sorted set
``<prefix>stream:parked:<shard>``, scored by the time (Unix ms) before which it is not tried
again; a worker that holds the shard moves it back to the end of the shard stream once that
time has come (:mod:`pointengine.service.worker` says for how long it keeps trying).

``<prefix>stats`` is a hash of counters the workers keep (events, applied, duplicate,
``rejected:<reason>``, retried, and ``groups_recreated``: consumer groups a worker found
missing and made again) so that the service's ``/metrics`` shows what the workers did.

``<prefix>stream:delivered:<shard>`` is a hash a worker writes before it applies a batch: for
each entry, one character per event, ``1`` for an event that was applied before (or repeated
earlier in the batch), else ``0``; it is deleted with the entry's acknowledgement. When a worker
dies between applying a batch and acknowledging it, the worker that takes the entries over reads
there which events the first attempt applied, so that each is counted once, as applied, not as
a duplicate (:mod:`pointengine.service.worker`).

The service appends a request's entries with one script (:class:`Appender`) that first checks
the store's generation marker (:mod:`pointengine.store.generation`): once Redis has lost the
store's state, nothing is accepted that could not be applied.

``<prefix>rejects`` is a stream of the events the workers refused after the service had
answered 202 (an application naming an unknown provider, a refund of more than is left, a
refund whose transaction never came), one entry each, capped at about :data:`REJECTS_KEPT`
entries (the oldest go first)::

    event     the event key (``<source>/<id>``), or the stream entry when it could not be read
    person    the MyKey ID
    provider  the provider (or platform source) that signed the request
    reason    the reason code, as counted in ``rejected:<reason>``
    detail    the engine's message (ids and amounts; 12-digit runs masked)

``pointengine rejects`` lists them (:func:`read_rejects`). The same entry goes to
``<prefix>rejects:<provider>`` too, a stream per signer, capped alike, which
``GET /providers/{provider}/rejects`` pages through (:func:`read_provider_rejects`): a provider
reads its own refusals without a filter over everyone's, so no page can hold another's and each
costs what it returns.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis
from redis.client import Pipeline

from pointengine.errors import MalformedEvent, StateLost
from pointengine.model.events import AnyEvent, event_from_dict
from pointengine.model.privacy import redact
from pointengine.store.generation import Generation

__all__ = ["DEFAULT_SHARDS", "DRAWS", "ENTRY_EVENTS", "GROUP", "REJECTS_KEPT", "Appender",
           "Reject", "StreamKeys", "decode_entry", "encode_entry", "encode_parked",
           "first_attempt_ms", "lag_and_pending", "read_provider_rejects", "read_rejects",
           "record_reject", "route", "shard_count", "shard_of"]

GROUP = "workers"
ENTRY_EVENTS = 500
"""Most events in one stream entry; a larger request is split into several entries."""
DEFAULT_SHARDS = 16
"""Person shards when nobody chose another number before."""
DRAWS = "draws"
"""The shard of lottery draws."""
REJECTS_KEPT = 100_000
"""About how many rejected events ``<prefix>rejects`` keeps (``XADD MAXLEN ~``)."""


@dataclass(frozen=True, slots=True)
class StreamKeys:
    """The Redis keys of the ingestion stream under ``prefix``."""

    stream: str
    stats: str
    rejects: str
    group: str = GROUP

    @classmethod
    def under(cls, prefix: str) -> StreamKeys:
        """The keys under ``prefix`` (use the RedisStore's prefix)."""
        return cls(prefix + "stream", prefix + "stats", prefix + "rejects")

    @property
    def shards(self) -> str:
        """The string holding K, the number of person shards."""
        return self.stream + ":shards"

    @property
    def workers(self) -> str:
        """The sorted set of live workers, scored by the time (ms) their heartbeat expires."""
        return self.stream + ":workers"

    def provider_rejects(self, provider: str) -> str:
        """The stream of the events refused after a 202 that ``provider`` had signed."""
        return f"{self.rejects}:{provider}"

    def shard(self, shard: str) -> str:
        """The stream of ``shard`` (a person shard's number, or :data:`DRAWS`)."""
        return f"{self.stream}:{shard}"

    def parked(self, shard: str) -> str:
        """The sorted set of ``shard``'s refunds waiting to be tried again."""
        return f"{self.stream}:parked:{shard}"

    def lease(self, shard: str) -> str:
        """The lease of ``shard``: the token of the worker that holds it, with a TTL."""
        return f"{self.stream}:lease:{shard}"

    def delivered(self, shard: str) -> str:
        """The hash of what ``shard``'s entries being applied found applied before them."""
        return f"{self.stream}:delivered:{shard}"

    def all_shards(self, count: int) -> list[str]:
        """Every shard: the ``count`` person shards, then the draws."""
        return [*(str(i) for i in range(count)), DRAWS]

    def all_streams(self, count: int) -> list[str]:
        """The stream of every shard."""
        return [self.shard(s) for s in self.all_shards(count)]


# Append entries while the store's generation holds; nil (nothing written) otherwise.
# KEYS[1] the generation marker, KEYS[2] the record of a lost state, KEYS[3..] each entry's
# stream; ARGV[1] the generation expected, then each entry's p, a and e.
_APPEND = """
if redis.call('EXISTS', KEYS[2]) == 1 or redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return false
end
local ids = {}
for i = 3, #KEYS do
  local j = 2 + (i - 3) * 3
  ids[#ids + 1] = redis.call('XADD', KEYS[i], '*', 'p', ARGV[j], 'a', ARGV[j + 1],
                             'e', ARGV[j + 2])
end
return ids
"""


class Appender:
    """Appends a request's entries to the shard streams: all or none, and only while Redis
    holds the store's generation, so that a 202 is never given for events that could not be
    applied (the generation is checked in the script that appends)."""

    def __init__(self, client: redis.Redis, keys: StreamKeys, generation: Generation) -> None:
        self.keys = keys
        self.generation = generation
        self._script = client.register_script(_APPEND)

    def append(self, entries: Sequence[tuple[str, Mapping[str, bytes]]]) -> list[str]:
        """Append each ``(shard, fields of encode_entry)``; the entry IDs, in order.

        Raises :class:`~pointengine.errors.StateLost` (nothing was written) when the store's
        state is lost, and :class:`redis.RedisError` when Redis fails.
        """
        marker = self.generation.keys
        keys = [marker.marker, marker.lost, *(self.keys.shard(shard) for shard, _ in entries)]
        values = [fields[name] for _, fields in entries for name in ("p", "a", "e")]
        for _ in range(2):
            reply: Any = self._script(keys=keys, args=[self.generation.expected(), *values])
            if reply is not None:
                return [_text(i) for i in reply]
            # The marker changed: an operator's re-initialisation is taken up and the entries
            # appended under it; a lost state raises here.
            self.generation.check()
        raise StateLost("the store's generation changed while the request was stored; "
                        "nothing was")


def shard_count(client: redis.Redis, keys: StreamKeys, default: int = DEFAULT_SHARDS) -> int:
    """K as stored in Redis; ``default`` is stored first if nothing is (the first one wins)."""
    if default < 1:
        raise ValueError("at least one shard")
    client.set(keys.shards, default, nx=True)
    stored: Any = client.get(keys.shards)
    return int(stored) if stored is not None else default


def shard_of(event: AnyEvent, count: int) -> str:
    """The shard of ``event``: its person's, or :data:`DRAWS` for a lottery draw."""
    if event.type == "lottery_draw":
        return DRAWS
    return str(zlib.crc32(event.person.encode()) % count)


def route(events: Sequence[AnyEvent], count: int) -> dict[str, list[AnyEvent]]:
    """``events`` by shard, each shard's in the given order."""
    out: dict[str, list[AnyEvent]] = {}
    for event in events:
        out.setdefault(shard_of(event, count), []).append(event)
    return out


def encode_entry(provider: str, events: Sequence[AnyEvent], attempt: int = 0) -> dict[str, bytes]:
    """The fields of one stream entry."""
    return {"p": provider.encode(), "a": str(attempt).encode(),
            "e": orjson.dumps([e.model_dump(mode="json") for e in events])}


def encode_parked(provider: str, event: AnyEvent, attempt: int, first_ms: int) -> bytes:
    """A refund waiting to be tried again, as a member of its shard's ``parked`` set: a JSON
    object of the entry's fields, every value a string, which the worker's script XADDs."""
    return orjson.dumps({"p": provider, "a": str(attempt), "f": str(first_ms),
                         "e": orjson.dumps([event.model_dump(mode="json")]).decode()})


def first_attempt_ms(fields: dict[Any, Any]) -> int | None:
    """When an entry's first attempt met an unknown transaction (its ``f``), if it is a retry."""
    raw = fields.get(b"f", fields.get("f"))
    try:
        return None if raw is None else int(raw)
    except ValueError:
        return None


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


@dataclass(frozen=True, slots=True)
class Reject:
    """One event the workers refused after it was accepted (an entry of ``rejects``)."""

    id: str
    event: str
    person: str
    provider: str
    reason: str
    detail: str

    @property
    def at(self) -> dt.datetime:
        """When it was refused (the entry ID's time), in UTC."""
        return dt.datetime.fromtimestamp(int(self.id.partition("-")[0]) / 1000, dt.UTC)

    def doc(self) -> dict[str, str]:
        """The reject as a JSON-ready mapping."""
        return {"id": self.id, "at": self.at.isoformat(timespec="milliseconds"),
                "event": self.event, "person": self.person, "provider": self.provider,
                "reason": self.reason, "detail": self.detail}


def record_reject(pipe: Pipeline, keys: StreamKeys, *, event: str, person: str,
                  provider: str, reason: str, detail: str, kept: int = REJECTS_KEPT) -> None:
    """Queue on ``pipe`` the entry of one refused event in the capped ``rejects`` stream,
    and in the signing ``provider``'s own (an entry that could not be read has none)."""
    fields: Any = {"event": event, "person": person, "provider": provider, "reason": reason,
                   "detail": redact(detail.encode()).decode()}
    pipe.xadd(keys.rejects, fields, maxlen=kept, approximate=True)
    if provider:
        pipe.xadd(keys.provider_rejects(provider), fields, maxlen=kept, approximate=True)


def read_rejects(client: redis.Redis, keys: StreamKeys, count: int = 100) -> list[Reject]:
    """The last ``count`` rejects, oldest first."""
    rows: Any = client.xrevrange(keys.rejects, "+", "-", count=count) or []
    return [_reject(entry_id, fields) for entry_id, fields in reversed(rows)]


def read_provider_rejects(client: redis.Redis, keys: StreamKeys, provider: str, *,
                          after: str | None = None, count: int = 100) -> tuple[list[Reject], bool]:
    """The first ``count`` events refused after a 202 that ``provider`` signed, oldest first,
    after the entry ``after`` (an ID a previous page returned; from the start when None), and
    whether more follow them."""
    start = "-" if after is None else f"({after}"
    rows: Any = client.xrange(keys.provider_rejects(provider), start, "+", count=count + 1) or []
    return [_reject(entry_id, fields) for entry_id, fields in rows[:count]], len(rows) > count


def _reject(entry_id: bytes | str, fields: dict[Any, Any]) -> Reject:
    f = {_text(k): _text(v) for k, v in fields.items()}
    return Reject(_text(entry_id), f.get("event", ""), f.get("person", ""),
                  f.get("provider", ""), f.get("reason", ""), f.get("detail", ""))


def lag_and_pending(client: redis.Redis, keys: StreamKeys,
                    shards: Sequence[str]) -> dict[str, tuple[int, int]]:
    """(entries not yet delivered, entries delivered and not acknowledged) of each shard.

    Redis 6 reports no lag: there the first number is 1 when any entry waits after the
    group's last delivered one, else 0 (the stream's length would count entries that were
    delivered and acknowledged but are still kept for another group).
    """
    pipe = client.pipeline(transaction=False)
    for shard in shards:
        pipe.xlen(keys.shard(shard))
        pipe.xinfo_groups(keys.shard(shard))
    replies = pipe.execute(raise_on_error=False)
    out: dict[str, tuple[int, int]] = {}
    for index, shard in enumerate(shards):
        length, groups = replies[2 * index], replies[2 * index + 1]
        length = 0 if isinstance(length, Exception) else int(length)
        if isinstance(groups, Exception):
            groups = []
        group = next((g for g in groups if _text(g["name"]) == keys.group), None)
        if group is None:
            out[shard] = (length, 0)
            continue
        lag = group.get("lag")
        if lag is None:
            after = _text(group["last-delivered-id"])
            waiting: Any = client.xrange(keys.shard(shard), f"({after}", "+", count=1)
            lag = len(waiting)
        out[shard] = (int(lag), int(group.get("pending", 0)))
    return out


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

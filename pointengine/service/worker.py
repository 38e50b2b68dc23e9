"""Workers: a consumer group evaluates the sharded ingestion stream on a shared Redis store.

Order. The service writes each person's events to one shard stream
(:mod:`pointengine.service.streams`) and a shard is evaluated by one worker at a time, in stream
order, so every person's events are applied in the order they were accepted, whatever the number of
workers.

Leases. A worker works on a shard only while it holds the shard's lease: ``SET <lease> <token>
NX PX lease_ms``, renewed every ``lease_ms / 3`` with a compare-and-extend script and released
on exit with a compare-and-delete script (the token is unique to the worker instance). Before a
batch is applied the worker makes sure its leases have more than half their time to run. Live
workers keep a heartbeat in a sorted set; each one holds at most ``ceil(shards / live workers)``
shards, releasing the surplus when workers join and taking free shards when workers leave or
die, so the work spreads fairly.

Failover. A worker that takes a shard (at start, or when the lease of a dead worker expired)
first takes over the shard's pending entries, in ID order (``XAUTOCLAIM`` from ``0-0`` with no
idle time: the lease makes the taker the shard's only worker), evaluates and acknowledges them,
and only then reads new entries (``XREADGROUP >``). A batch is evaluated with
:meth:`Engine.process <pointengine.decide.engine.Engine.process>` on a
:class:`~pointengine.store.redis_store.RedisStore` and acknowledged afterwards, with its counters,
in one ``MULTI``. Delivery is at least once; the store applies each event key once, so every event
takes effect exactly once.

Trimming. In that ``MULTI``, after the acknowledgements, each shard stream it touched is trimmed
(``XTRIM MINID``, in one script) of the entries that every consumer group has acknowledged:
those before a group's first pending entry, or up to its last delivered entry when none is
pending. An entry not yet delivered to a group, or delivered and not acknowledged, is never
dropped, so the streams hold only the work still to do.

Lottery draws concern many persons; they travel in their own shard (``draws``). Entry IDs are
the service's acceptance time, so a draw is evaluated only once every person shard has
acknowledged all its entries with a smaller ID, and person shards evaluate only entries whose ID
is smaller than the first draw not yet acknowledged. Entries accepted in the same millisecond as
a draw (equal time part) count as later than it: for them the order between the draw and other
persons' events is that of the ID, not necessarily that of the requests.

Refunds before their transaction. A refund that reaches the store before the transaction it
refunds (``unknown transaction``: the provider posted the refund a moment before the purchase)
is parked, acknowledged in the same ``MULTI``, in its shard's sorted set
(:meth:`StreamKeys.parked <pointengine.service.streams.StreamKeys.parked>`) with the time before
which it is not tried again: ``retry_delay_ms`` after the first attempt, then twice as long each
time, at most ``retry_max_delay_ms`` apart (1 s, 2 s, 4 s, ... 60 s by default). The worker that
holds the
shard moves due refunds back to the end of the shard stream (one script, so a refund is never
lost nor doubled). The last try is ``retry_window_ms`` after the first (10 minutes by default), so
a transaction accepted within that window is always applied before the refund's last try; a
refund whose transaction is still unknown then is refused and recorded in ``rejects``.

A caveat every lease has: a worker stalled for longer than its lease (a long GC pause, a frozen
VM) may still apply the batch it holds after another worker took the shard; the store's
idempotency keeps each event applied once, but that batch may then be applied out of order.

Counting. A worker that dies after the store applied its batch and before the acknowledgement
leaves entries whose events the next attempt finds applied: duplicates, to the store. So before
applying a batch the worker records, per entry, which of its events were applied before
(:meth:`StreamKeys.delivered <pointengine.service.streams.StreamKeys.delivered>`; an entry
recorded by an earlier attempt keeps its record), and counts a duplicate that was not applied
before as ``applied``: every event is counted once, by what it did, however often it is
delivered.

Redis failures. Every command of a client made by
:func:`~pointengine.store.redis_store.connect` answers or fails within its socket timeout
(:data:`WORKER_TIMEOUT` for the ``worker`` command), so a frozen Redis makes batches fail, not
hang: the worker logs each failure, counts it (``failures`` in its report), waits a moment and
tries again, and goes on once Redis answers. A missing consumer group (``NOGROUP``: the group
was deleted, or its stream with it) while the store's state is intact is made again at once,
from the start of the stream (the events it delivers again are applied once by their key),
logged, and counted (``groups_recreated`` in the stats). A lost state (the store's generation
marker gone or replaced, :mod:`pointengine.store.generation`) stops all applying: the store's
script refuses every batch, and the worker waits, reporting the loss (``state_lost`` in its
report, an error in its log), until an operator runs ``pointengine reinit``; it then makes the
groups again and goes on.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis

from pointengine.decide.engine import Engine
from pointengine.decide.reload import CatalogWatcher, ReloadResult
from pointengine.errors import InputError, OperationalError, StateLost
from pointengine.model.events import AnyEvent
from pointengine.model.refusals import Refusal
from pointengine.service.streams import (
    DEFAULT_SHARDS,
    DRAWS,
    StreamKeys,
    decode_entry,
    encode_parked,
    first_attempt_ms,
    lag_and_pending,
    record_reject,
    shard_count,
)
from pointengine.store.generation import Generation
from pointengine.store.redis_store import Keys, RedisStore

__all__ = ["WORKER_TIMEOUT", "Entry", "Worker", "WorkerReport"]

log = logging.getLogger("pointengine.service.worker")
report_log = logging.getLogger("pointengine.service.worker.report")
"""The worker's reports (:meth:`Worker.log_report`): the command's result, so they are written
at any ``--log-level`` (``worker`` sets this logger to info)."""

WORKER_TIMEOUT = 5.0
"""Seconds a worker's Redis command may take (``worker --redis-timeout``): longer than the
service's, since one apply script call carries a whole batch."""

Entry = tuple[str, str, dict[Any, Any] | None]
"""One stream entry to evaluate: (shard, entry ID, fields; None when it was deleted)."""

_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
# Trim the entries of a shard's stream that every consumer group acknowledged: those before
# each group's first pending entry, or up to its last delivered one when none is pending.
# Without a group nothing is known to be acknowledged, and nothing is trimmed.
# KEYS[1] the shard's stream. Returns the number of entries trimmed.
_TRIM = """
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
if #groups == 0 then return 0 end
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local min_ms, min_seq
for i = 1, #groups do
  local g, name, last = groups[i], nil, nil
  for k = 1, #g, 2 do
    if g[k] == 'name' then name = g[k + 1] end
    if g[k] == 'last-delivered-id' then last = g[k + 1] end
  end
  local ms, seq
  local pending = redis.call('XPENDING', KEYS[1], name)
  if pending[1] > 0 then
    ms, seq = parse(pending[2])
  else
    ms, seq = parse(last)
    seq = seq + 1
  end
  if min_ms == nil or ms < min_ms or (ms == min_ms and seq < min_seq) then
    min_ms, min_seq = ms, seq
  end
end
return redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d-%d', min_ms, min_seq))
"""
# Move the due refunds of one shard back to its stream, in the order they come due.
# KEYS[1] parked (sorted set, member = JSON object of the entry's fields, all strings)
# KEYS[2] the shard's stream; ARGV[1] now (Unix ms); ARGV[2] most to move
_UNPARK = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for i = 1, #due do
  local f = cjson.decode(due[i])
  redis.call('XADD', KEYS[2], '*', 'p', f.p, 'a', f.a, 'f', f.f, 'e', f.e)
  redis.call('ZREM', KEYS[1], due[i])
end
return #due
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
# Record, for the entries of a batch about to be applied, which of their events were applied
# before or come earlier in the batch: one character each, 1 or 0. An entry that an earlier
# attempt recorded keeps that record.
# KEYS[1] the store's applied set; KEYS[1 + i] the delivered hash of entry i's shard
# ARGV[2i - 1] entry i's ID, ARGV[2i] its event keys (a JSON array)
# Returns, per entry: 1 if an earlier attempt recorded it, else 0; then its record.
_RECORD = """
local out, seen = {}, {}
for i = 1, #KEYS - 1 do
  local key, id, events = KEYS[i + 1], ARGV[2 * i - 1], cjson.decode(ARGV[2 * i])
  local record = redis.call('HGET', key, id)
  if record then
    out[#out + 1] = 1
    for j = 1, #events do seen[events[j]] = true end
  else
    local hits, flags = {}, {}
    for s = 1, #events, 1000 do
      local e = math.min(s + 999, #events)
      local r = redis.call('SMISMEMBER', KEYS[1], unpack(events, s, e))
      for j = 1, #r do hits[s + j - 1] = r[j] end
    end
    for j = 1, #events do
      if hits[j] == 1 or seen[events[j]] then flags[j] = '1' else flags[j] = '0' end
      seen[events[j]] = true
    end
    record = table.concat(flags)
    redis.call('HSET', key, id, record)
    out[#out + 1] = 0
  end
  out[#out + 1] = record
end
return out
"""


@dataclass
class WorkerReport:
    """What one worker did."""

    entries: int = 0
    events: int = 0
    claimed: int = 0
    retried: int = 0
    taken: int = 0
    """Shard leases acquired (at start, by rebalancing, or from a dead worker)."""
    statuses: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    failures: int = 0
    """Reads or batches that failed on Redis (not answering, in time or at all)."""
    groups_recreated: int = 0
    """Consumer groups found missing (NOGROUP) and made again."""
    state_lost: str | None = None
    """Why nothing is applied, while the store's state is lost; None otherwise."""

    def doc(self) -> dict[str, Any]:
        """The report as a JSON-ready dict (the counters as objects, never as Python text)."""
        return {"entries": self.entries, "events": self.events, "claimed": self.claimed,
                "retried": self.retried, "taken": self.taken,
                "statuses": dict(self.statuses), "rejected": dict(self.rejected),
                "failures": self.failures, "groups_recreated": self.groups_recreated,
                "state_lost": self.state_lost}


class Worker:
    """One consumer of the group; ``engine`` must run on a RedisStore with the same prefix.

    ``lease_ms`` is how long a shard stays with a worker that stopped renewing (a dead one's
    shards are taken over after that); ``claim_idle_ms`` is its former name. ``shards`` is K if
    Redis does not hold one yet. ``watcher``, when given, is polled before every batch, so
    changed rule files take effect without a restart (see :mod:`pointengine.decide.reload`).
    ``retry_delay_ms``, ``retry_max_delay_ms`` and ``retry_window_ms`` say when a refund of a
    transaction not seen yet is tried again, and for how long (see the module's docstring).

    The worker checks the store's generation (:attr:`generation`) and gives it to the engine's
    RedisStore when that has none, so that no batch is applied onto a lost state. A blocking
    read waits at most half the client's socket timeout, so that it returns before the socket
    gives up.
    """

    def __init__(self, client: redis.Redis, engine: Engine, *, prefix: str = "pe:",
                 name: str | None = None, count: int = 100, block_ms: int = 1000,
                 lease_ms: int = 10_000, claim_idle_ms: int | None = None,
                 retry_delay_ms: int = 1_000, retry_max_delay_ms: int = 60_000,
                 retry_window_ms: int = 600_000, shards: int = DEFAULT_SHARDS,
                 watcher: CatalogWatcher | None = None) -> None:
        self.client = client
        self.engine = engine
        self.watcher = watcher
        self.keys = StreamKeys.under(prefix)
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{threading.get_ident()}"
        self.token = f"{self.name}/{uuid.uuid4().hex}"
        self.count = count
        self.lease_ms = max(30, claim_idle_ms if claim_idle_ms is not None else lease_ms)
        self.block_ms = max(1, min(block_ms, self.lease_ms // 3))
        timeout = client.connection_pool.connection_kwargs.get("socket_timeout")
        if timeout:
            self.block_ms = max(1, min(self.block_ms, int(timeout * 500)))
        self.retry_delay_ms = max(1, retry_delay_ms)
        self.retry_max_delay_ms = max(self.retry_delay_ms, retry_max_delay_ms)
        self.retry_window_ms = max(0, retry_window_ms)
        self.default_shards = shards
        self.report = WorkerReport()
        self._reported = (time.monotonic(), 0)
        """When the report was last logged, and the events counted then."""
        self.held: dict[str, None] = {}
        """Shards whose lease this worker holds, in the order taken."""
        self._fresh: set[str] = set()
        """Held shards whose pending entries must be evaluated before new ones are read."""
        self._shards: list[str] = []
        self._valid_until = 0.0
        self._next_maintain = 0.0
        self._next_unpark = 0.0
        self._extend = client.register_script(_EXTEND)
        self._release = client.register_script(_RELEASE)
        self._unpark_script = client.register_script(_UNPARK)
        self._trim = client.register_script(_TRIM)
        self._record = client.register_script(_RECORD)
        self._applied_set = Keys.under(prefix).applied
        self.generation = Generation(client, prefix)
        """The store's generation as this worker knows it."""
        store = getattr(engine, "store", None)
        if isinstance(store, RedisStore) and store.generation is None:
            store.generation = self.generation

    # -- the group, the registry and the leases -------------------------------------------

    @property
    def shards(self) -> list[str]:
        """Every shard (person shards, then the draws); read from Redis on first use."""
        if not self._shards:
            self._shards = self.keys.all_shards(
                shard_count(self.client, self.keys, self.default_shards))
        return self._shards

    def ensure_group(self) -> int:
        """Check the store's generation (StateLost when the state is lost: nothing is created
        then), create the consumer group on every shard stream unless it exists, register;
        the number of groups created.

        A group is created at the start of its stream, so that the entries appended before
        it are delivered too."""
        self.generation.check()
        created = 0
        for shard in self.shards:
            try:
                self.client.xgroup_create(self.keys.shard(shard), self.keys.group, id="0",
                                          mkstream=True)
                created += 1
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise OperationalError(f"cannot create the consumer group: {exc}") from exc
        self.client.zadd(self.keys.workers, {self.name: _now_ms() + self.lease_ms})
        return created

    def recover_groups(self) -> int:
        """Make the consumer groups that are missing (after NOGROUP) again, when the store's
        state is intact (StateLost otherwise); how many were made. Logged and counted: the
        report's and the stats' ``groups_recreated``."""
        created = self.ensure_group()
        if created:
            self.report.groups_recreated += created
            self.client.hincrby(self.keys.stats, "groups_recreated", created)
            log.warning("consumer group recreated", extra={"fields": {
                "worker": self.name, "groups": created}})
        self._fresh.update(self.held)
        return created

    def maintain(self, *, force: bool = False) -> None:
        """Heartbeat, renew the leases held, release a surplus or take free shards."""
        now = time.monotonic()
        if not force and now < self._next_maintain:
            return
        self._next_maintain = now + self.lease_ms / 3000
        wall = _now_ms()
        pipe = self.client.pipeline(transaction=False)
        pipe.get(self.generation.keys.marker)
        pipe.get(self.generation.keys.lost)
        pipe.zadd(self.keys.workers, {self.name: wall + self.lease_ms})
        pipe.zremrangebyscore(self.keys.workers, "-inf", wall)
        pipe.zcard(self.keys.workers)
        for shard in self.held:
            self._extend(keys=[self.keys.lease(shard)], args=[self.token, self.lease_ms],
                         client=pipe)
        marker, lost, _, _, live, *renewed = pipe.execute()
        # found here even while no batch comes, so that the loss is reported at once
        self.generation.judge(marker, lost)
        self._valid_until = now + self.lease_ms / 1000
        for shard, ok in zip(list(self.held), renewed, strict=True):
            if not int(ok):
                log.warning("lease lost", extra={"fields": {"worker": self.name,
                                                             "shard": shard}})
                self._drop(shard)
        fair = math.ceil(len(self.shards) / max(1, int(live)))
        for shard in list(self.held)[fair:]:
            self.release(shard)
        if len(self.held) >= fair:
            return
        start = zlib.crc32(self.name.encode()) % len(self.shards)
        for offset in range(len(self.shards)):
            shard = self.shards[(start + offset) % len(self.shards)]
            if shard in self.held:
                continue
            if self.client.set(self.keys.lease(shard), self.token, nx=True, px=self.lease_ms):
                self.held[shard] = None
                self._fresh.add(shard)
                self.report.taken += 1
                log.info("shard taken", extra={"fields": {"worker": self.name,
                                                           "shard": shard}})
                if len(self.held) >= fair:
                    return

    def release(self, shard: str) -> None:
        """Give ``shard`` back (compare-and-delete: only while this worker holds it)."""
        self._drop(shard)
        self._release(keys=[self.keys.lease(shard)], args=[self.token])

    def _drop(self, shard: str) -> None:
        self.held.pop(shard, None)
        self._fresh.discard(shard)

    def leave(self) -> None:
        """Release every lease and leave the registry (on exit)."""
        for shard in list(self.held):
            self.release(shard)
        self.client.zrem(self.keys.workers, self.name)

    # -- reading --------------------------------------------------------------------------

    def read(self, block_ms: int | None = None) -> list[Entry]:
        """Entries to evaluate, of held shards only: a shard's pending entries (its former
        worker's, or those of a batch that failed) first, then new ones."""
        self.maintain()
        if not self.held:
            time.sleep(min(self.block_ms if block_ms is None else block_ms, 100) / 1000)
            return []
        self.unpark()
        barrier = self.first_unacked(DRAWS)
        for shard in sorted(self._fresh, key=_shard_order):
            reply: Any = self.client.xautoclaim(self.keys.shard(shard), self.keys.group,
                                               self.name, 0, "0-0", count=self.count)
            deleted = [_text(i) for i in (reply[2] if len(reply) > 2 else [])]
            if deleted:
                pipe = self.client.pipeline(transaction=True)
                pipe.xack(self.keys.shard(shard), self.keys.group, *deleted)
                pipe.hdel(self.keys.delivered(shard), *deleted)
                pipe.execute()
            entries = [(shard, _text(i), f) for i, f in reply[1]]
            if not entries and not deleted:
                self._fresh.discard(shard)
                continue
            ready = self._ready(entries, barrier)
            if ready:
                self.report.claimed += len(ready)
                log.info("pending taken over", extra={"fields": {
                    "worker": self.name, "shard": shard, "entries": len(ready)}})
                return ready
        streams: Any = {self.keys.shard(s): ">" for s in self.held if s not in self._fresh}
        if not streams:
            time.sleep(min(self.block_ms, 50) / 1000)
            return []
        reply = self.client.xreadgroup(self.keys.group, self.name, streams, count=self.count,
                                       block=self.block_ms if block_ms is None else block_ms)
        entries = []
        prefix = self.keys.stream + ":"
        for stream, items in reply or []:
            shard = _text(stream).removeprefix(prefix)
            entries.extend((shard, _text(i), f) for i, f in items)
        return self._ready(entries, barrier)

    def unpark(self, *, force: bool = False) -> int:
        """Move the held shards' refunds that are due back to their streams; how many."""
        now = time.monotonic()
        if not force and now < self._next_unpark:
            return 0
        self._next_unpark = now + min(self.retry_delay_ms, 250) / 1000
        pipe = self.client.pipeline(transaction=False)
        wall = _now_ms()
        for shard in self.held:
            self._unpark_script(keys=[self.keys.parked(shard), self.keys.shard(shard)],
                                args=[wall, self.count], client=pipe)
        return sum(int(n) for n in pipe.execute())

    def _ready(self, entries: Sequence[Entry], barrier: tuple[int, int] | None) -> list[Entry]:
        """The entries that may be evaluated now; the shards of the others wait (their entries
        stay pending and are taken again, in order, once the draw barrier moved on)."""
        ready: list[Entry] = []
        waiting: set[str] = set()
        draw_ok: bool | None = None
        for entry in entries:
            shard, entry_id, _ = entry
            if shard in waiting:
                continue
            if shard == DRAWS:
                if draw_ok is None:
                    draw_ok = self._draw_may_run(_id(entry_id))
                if draw_ok and not any(e[0] == DRAWS for e in ready):
                    ready.append(entry)  # one draw entry at a time
                    continue
            elif barrier is None or _id(entry_id) < barrier:
                ready.append(entry)
                continue
            waiting.add(shard)
        self._fresh.update(waiting)
        return ready

    def _draw_may_run(self, draw: tuple[int, int]) -> bool:
        """True when every person shard acknowledged all its entries before ``draw``."""
        for shard in self.shards:
            if shard != DRAWS:
                first = self.first_unacked(shard)
                if first is not None and first < draw:
                    return False
        return True

    def first_unacked(self, shard: str) -> tuple[int, int] | None:
        """The smallest ID of ``shard`` not yet acknowledged (pending or undelivered)."""
        stream = self.keys.shard(shard)
        pipe = self.client.pipeline(transaction=False)
        pipe.xpending(stream, self.keys.group)
        pipe.xinfo_groups(stream)
        try:
            pending, groups = pipe.execute()
        except redis.ResponseError:  # no stream (nothing to wait for) or no group
            return self._first_entry(stream)
        found: list[tuple[int, int]] = []
        if int(pending.get("pending", 0)) and pending.get("min"):
            found.append(_id(_text(pending["min"])))
        group = next((g for g in groups if _text(g["name"]) == self.keys.group), None)
        if group is None:
            return self._first_entry(stream)
        if group.get("lag") != 0:
            after = _text(group["last-delivered-id"])
            reply: Any = self.client.xrange(stream, f"({after}", "+", count=1)
            if reply:
                found.append(_id(_text(reply[0][0])))
        return min(found) if found else None

    def _first_entry(self, stream: str) -> tuple[int, int] | None:
        """The first entry of ``stream``, or None when it has none: a group found missing is
        made again from the start of its stream, so every entry there is still to be done."""
        reply: Any = self.client.xrange(stream, "-", "+", count=1)
        return _id(_text(reply[0][0])) if reply else None

    # -- evaluating -----------------------------------------------------------------------

    def step(self, block_ms: int | None = None) -> int:
        """Read, evaluate and acknowledge one batch; the number of entries handled."""
        if self.watcher is not None:
            self.watcher.poll()
        entries = self.read(block_ms)
        if not entries:
            return 0
        if time.monotonic() > self._valid_until - self.lease_ms / 2000:
            self.maintain(force=True)  # renew before applying; shards lost are left alone
            entries = [e for e in entries if e[0] in self.held]
        try:
            self.handle(entries)
        except BaseException:
            self._fresh.update(e[0] for e in entries if e[0] in self.held)
            raise
        return len(entries)

    def handle(self, entries: Sequence[Entry]) -> None:
        """Evaluate ``entries`` in order, then acknowledge them with the counters, atomically."""
        events: list[AnyEvent] = []
        origin: list[tuple[str, str, int, int | None]] = []
        readable: list[tuple[str, str, list[AnyEvent]]] = []
        stats: Counter[str] = Counter()
        rejects: list[dict[str, str]] = []
        for shard, entry_id, fields in entries:
            if fields is None:
                continue
            try:
                provider, attempt, batch = decode_entry(fields)
            except InputError as exc:
                stats[f"rejected:{exc.reason_code}"] += 1
                rejects.append({"event": f"entry {shard}/{entry_id}", "person": "",
                                "provider": "", "reason": exc.reason_code,
                                "detail": str(exc)})
                continue
            events.extend(batch)
            origin.extend([(shard, provider, attempt, first_attempt_ms(fields))] * len(batch))
            readable.append((shard, entry_id, batch))
        earlier = self._applied_earlier(readable)
        decisions = self.engine.process(events) if events else []
        now = _now_ms()
        parked: list[tuple[str, bytes, int]] = []
        for decision, (shard, provider, attempt, first), by_earlier in zip(
                decisions, origin, earlier, strict=True):
            status = decision.applied.status
            if status == "duplicate" and by_earlier:
                # an earlier attempt of this entry applied it and died before the ack
                status = "applied"
            if status == "rejected":
                code, detail = decision.applied.refusal()
                # a refund may arrive before its purchase, which a later entry carries
                if code is Refusal.UNKNOWN_TRANSACTION:
                    first = now if first is None else first
                    due = self._retry_at(attempt, first, now)
                    if due is not None:
                        parked.append((shard, encode_parked(provider, decision.event,
                                                            attempt + 1, first), due))
                        stats["retried"] += 1
                        continue
                    detail += (f"; given up after {attempt + 1} attempts over "
                               f"{(now - first) / 1000:.0f} s")
                stats[f"rejected:{code}"] += 1
                self.report.rejected[str(code)] += 1
                rejects.append({"event": decision.event.key, "person": decision.event.person,
                                "provider": provider, "reason": code, "detail": detail})
            stats[status] += 1
            self.report.statuses[status] += 1
        stats["events"] += len(events)
        pipe = self.client.pipeline(transaction=True)
        for r in rejects:
            record_reject(pipe, self.keys, event=r["event"], person=r["person"],
                          provider=r["provider"], reason=r["reason"], detail=r["detail"])
        for shard, member, due in parked:
            pipe.zadd(self.keys.parked(shard), {member: due})
        acks: dict[str, list[str]] = {}
        for shard, entry_id, _ in entries:
            acks.setdefault(shard, []).append(entry_id)
        for shard, ids in acks.items():
            pipe.xack(self.keys.shard(shard), self.keys.group, *ids)
            pipe.hdel(self.keys.delivered(shard), *ids)
            self._trim(keys=[self.keys.shard(shard)], client=pipe)
        for name, value in stats.items():
            pipe.hincrby(self.keys.stats, name, value)
        pipe.execute()
        for reject in rejects:  # once they are recorded; the MyKey ID stays in Redis
            log.warning("event rejected", extra={"fields": {
                "worker": self.name, "event": reject["event"], "reason": reject["reason"],
                "detail": reject["detail"]}})
        self.report.entries += len(entries)
        self.report.events += len(events)
        self.report.retried += len(parked)

    def _applied_earlier(self, entries: Sequence[tuple[str, str, list[AnyEvent]]]) -> list[bool]:
        """For each event of ``entries``, before any is applied: True when an earlier attempt
        to apply its entry may have applied it (the entry was recorded then, and the event was
        neither applied before it nor repeated earlier in that batch); see the module's
        docstring. Records the entries that no attempt recorded yet."""
        entries = [e for e in entries if e[2]]
        if not entries:
            return []
        keys = [self._applied_set, *(self.keys.delivered(shard) for shard, _, _ in entries)]
        args: list[Any] = []
        for _, entry_id, batch in entries:
            args += [entry_id, orjson.dumps([event.key for event in batch])]
        reply: Any = self._record(keys=keys, args=args)
        out: list[bool] = []
        for index, (_, _, batch) in enumerate(entries):
            recorded_before, record = int(reply[2 * index]), _text(reply[2 * index + 1])
            if recorded_before and len(record) == len(batch):
                out.extend(flag == "0" for flag in record)
            else:
                out.extend([False] * len(batch))
        return out

    def _retry_at(self, attempt: int, first: int, now: int) -> int | None:
        """When to try a refund of an unknown transaction again (Unix ms), None to give up:
        the delay doubles from ``retry_delay_ms`` up to ``retry_max_delay_ms``, and the last
        try is at the end of the window, ``retry_window_ms`` after the first."""
        end = first + self.retry_window_ms
        if now >= end:
            return None
        delay = min(self.retry_delay_ms << min(attempt, 40), self.retry_max_delay_ms)
        return min(now + delay, end)

    def drained(self) -> bool:
        """True when every entry of every shard was delivered and acknowledged, and no
        refund waits to be tried again."""
        if not all(lag == 0 and pending == 0
                   for lag, pending in lag_and_pending(self.client, self.keys,
                                                       self.shards).values()):
            return False
        pipe = self.client.pipeline(transaction=False)
        for shard in self.shards:
            pipe.zcard(self.keys.parked(shard))
        return not any(int(n) for n in pipe.execute())

    def run(self, *, stop: threading.Event | None = None, until_empty: bool = False,
            report_every: float = 0.0) -> None:
        """Work until ``stop`` is set, or (``until_empty``) until every shard is drained;
        log the report every ``report_every`` seconds (0: never), so that a worker without a
        terminal shows that it is alive and how fast it goes.

        Redis failures are logged, counted and retried after a pause; the entries of a failed
        batch stay pending and are evaluated again first. A missing consumer group is made
        again. While the store's state is lost nothing is applied: the worker checks again
        after each pause until an operator re-initialises the store (a worker with
        ``until_empty`` keeps waiting too). The leases are released on the way out. Only a
        Redis that does not answer at the start ends it (with the error).
        """
        try:
            self.ensure_group()
        except StateLost as exc:
            self._lose(exc)
        next_report = time.monotonic() + report_every
        try:
            while stop is None or not stop.is_set():
                if report_every > 0 and time.monotonic() >= next_report:
                    self.log_report()
                    next_report = time.monotonic() + report_every
                try:
                    if self.report.state_lost is not None:
                        self._await_state(stop)
                        continue
                    handled = self.step()
                    if not handled and until_empty and self.drained():
                        return
                except (OperationalError, redis.RedisError) as exc:
                    self._failed(exc, stop)
        finally:
            with contextlib.suppress(redis.RedisError):
                self.leave()

    def log_report(self, *, final: bool = False) -> None:
        """Log the report as one JSON line (:data:`report_log`), with the events applied per
        second since the last report (or the start)."""
        now = time.monotonic()
        since, events = self._reported
        rate = (self.report.events - events) / (now - since) if now > since else 0.0
        self._reported = (now, self.report.events)
        report_log.info("worker report", extra={"fields": {
            "worker": self.name, "final": final, **self.report.doc(),
            "events_per_second": round(rate, 1)}})

    def _failed(self, exc: OperationalError | redis.RedisError,
                stop: threading.Event | None) -> None:
        """What a failed step leads to: waiting for the state, groups made again, or a
        failure logged and counted; then a pause (except after groups were made again)."""
        if isinstance(exc, redis.ResponseError) and str(exc).startswith("NOGROUP"):
            try:
                self.recover_groups()
                return
            except (OperationalError, redis.RedisError) as again:
                exc = again
        if isinstance(exc, StateLost):
            self._lose(exc)
        else:
            self.report.failures += 1
            log.error("batch failed", extra={"fields": {"worker": self.name,
                                                        "detail": str(exc)}})
        self._pause(stop)

    def _lose(self, exc: StateLost) -> None:
        """Stop applying: the store's state is lost."""
        if self.report.state_lost is None:
            log.error("store state lost: nothing is applied until `pointengine reinit`",
                      extra={"fields": {"worker": self.name, "detail": str(exc)}})
        self.report.state_lost = str(exc)
        # The leases went with the state (or expire by themselves); the shards are taken
        # again, and their groups made again, once the state is re-initialised.
        self.held.clear()
        self._fresh.clear()

    def _await_state(self, stop: threading.Event | None) -> None:
        """Check the store's generation once: go on when an operator re-initialised it,
        else pause."""
        try:
            self.generation.check()
        except StateLost as exc:
            self.report.state_lost = str(exc)
            self._pause(stop)
            return
        log.warning("store re-initialised: applying again", extra={"fields": {
            "worker": self.name, "generation": self.generation.known}})
        self._shards = []  # K is read (or stored) again with the new state
        self._next_maintain = 0.0
        self.ensure_group()
        self.report.state_lost = None

    def _pause(self, stop: threading.Event | None) -> None:
        pause = min(1.0, self.lease_ms / 3000)
        if stop is not None:
            stop.wait(pause)
        else:
            time.sleep(pause)


def log_reload(result: ReloadResult) -> None:
    """Log what a rules reload did: a swap as info, a refused edit as an error."""
    lines = result.lines()
    if lines:
        level = log.error if result.status == "rejected" else log.info
        level(lines[0], extra={"fields": {"changed": list(result.changed),
                                          "details": lines[1:]}})


def _now_ms() -> int:
    return int(time.time() * 1000)


def _id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _shard_order(shard: str) -> tuple[int, int]:
    return (1, 0) if shard == DRAWS else (0, int(shard))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value

"""An exclusive replay onto Redis: the embedded store in front, written through to Redis.

The shared Redis store (:mod:`pointengine.redis_store`) decides every intent in its Lua
script, so that any number of workers can apply at once; that script, not the engine, is
what limits a replay there. A bulk replay (a load test, a re-run of a provider's file) does
not need to share the store while it runs. :class:`WriteBackStore` takes the store for
itself instead:

1. it takes the store's **lease** (``SET lease token NX PX``): while the lease is held, the
   apply script refuses every batch (workers see an :class:`OperationalError` that names the
   holder and try again later), and a second exclusive replay cannot start;
2. it **loads** the store's state from Redis into the embedded store, which it is (a
   :class:`MemoryStore`): the compiled lane and the Python path apply there, as embedded;
3. after each batch it **writes back** what the batch changed, recorded in its
   :class:`Journal`, in one script call that checks the lease and renews it: the applied
   event keys, the admissions, the transactions, the counters, the persons, the totals, the
   tallies, ``seq`` and one ledger stream entry per line, in the shared store's layout. The
   call is sent without waiting: Redis writes one batch while the next is decided, and its
   answer is read before the next is sent (:meth:`WriteBackStore.confirm` waits for it);
4. :meth:`WriteBackStore.close` waits for the last answer and gives the lease back.

The result is the shared store's, key for key (the tests replay the same streams both ways
and compare every key). A batch is written back atomically; if the replay stops in
between, Redis holds every batch written back so far, and a replay from the last confirmed
position (``--from-start`` finds the rest applied) completes it. If the lease expires (a
replay stalled longer than ``lease_ms``) the next write-back fails with
:class:`~pointengine.errors.OperationalError` and writes nothing.
"""

from __future__ import annotations

import os
import socket
import sys
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgpack
import orjson
import redis
from redis.exceptions import NoScriptError

from pointengine.errors import IntegrityError, OperationalError
from pointengine.lane import bulk_strings, ledger_arguments
from pointengine.ledger import LedgerEntry
from pointengine.memory_store import PAID_SHIFT, MemoryStore, _paid_key
from pointengine.records import Award, Transaction
from pointengine.redis_store import RedisStore, person_from_json, person_to_json

__all__ = ["Journal", "WriteBackStore"]

LEASE_MS = 60_000
"""How long a lease lasts without a write-back renewing it."""

_pack: Callable[[object], bytes] = msgpack.Packer().pack
_SCAN = 1000  # members per SSCAN / HSCAN while loading

# write_back: ARGV = [token, lease ms, then sections of (count, items...)]: applied event keys
# (SADD), member keys (SADD), transaction (id, record) pairs, counter (key, value) pairs,
# person (id, JSON) pairs, total (field, value) pairs, tally (key, value) pairs (HSET, a later
# pair of the same field wins), then the ledger (count, then per line: n, n field/value
# arguments for XADD), then seq ('' when unchanged).
_WRITE_LUA = r"""
if redis.call('GET', KEYS[10]) ~= ARGV[1] then
  return redis.error_reply('LEASE lost: the store is no longer held by this replay')
end
redis.call('PEXPIRE', KEYS[10], ARGV[2])
local CHUNK, unpack = 4000, unpack
local i = 3
local function each(command, key)
  local n = tonumber(ARGV[i])
  local last = i + n
  for s = i + 1, last, CHUNK do
    local e = s + CHUNK - 1
    if e > last then e = last end
    redis.call(command, key, unpack(ARGV, s, e))
  end
  i = last + 1
end
each('SADD', KEYS[1])
each('SADD', KEYS[3])
each('HSET', KEYS[4])
each('HSET', KEYS[2])
each('HSET', KEYS[5])
each('HSET', KEYS[6])
each('HSET', KEYS[7])
local lines = tonumber(ARGV[i])
i = i + 1
for _ = 1, lines do
  local n = tonumber(ARGV[i])
  redis.call('XADD', KEYS[9], '*', unpack(ARGV, i + 1, i + n))
  i = i + n + 1
end
if ARGV[i] ~= '' then redis.call('SET', KEYS[8], ARGV[i]) end
return lines
"""

_RELEASE_LUA = r"""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass
class Journal:
    """What the store wrote since the last write-back, appended to by the store and by the
    compiled lane (which holds these lists: they are emptied in place, never replaced)."""

    applied: list[str] = field(default_factory=list)
    """Event keys applied."""
    transactions: list[str | bytes] = field(default_factory=list)
    """Flat (id, ``amount|refunded|payer``) pairs of transactions that earned nothing."""
    kept: list[str] = field(default_factory=list)
    """Ids of the transactions the store keeps as a :class:`Transaction` (they earned
    points), written after the others: the store's record is the one it keeps."""
    slots: list[int] = field(default_factory=list)
    """Counter slots the lane changed."""
    counters: list[str] = field(default_factory=list)
    """Counter keys the Python path changed."""
    members: list[str] = field(default_factory=list)
    persons: list[str] = field(default_factory=list)
    tallies: list[str] = field(default_factory=list)
    ledger: list[bytes] = field(default_factory=list)
    """Ledger lines (:meth:`LedgerEntry.to_json`), in order."""

    def clear(self) -> None:
        """Empty every list in place."""
        for name in ("applied", "transactions", "kept", "slots", "counters", "members", "persons",
                     "tallies", "ledger"):
            del getattr(self, name)[:]


class _JournalSink:
    """The embedded store's ledger sink: the lines go to the journal, then to Redis."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def append(self, entries: Iterable[LedgerEntry]) -> None:
        """Journal entries of the Python path."""
        self.journal.ledger.extend(entry.to_json() for entry in entries)

    def append_lines(self, lines: bytes) -> None:
        """Journal the lane's lines."""
        self.journal.ledger.extend(lines.splitlines())


def _record(tx: Transaction) -> bytes:
    """A transaction as the shared store's script keeps it (see :mod:`redis_store`)."""
    awards = tx.awards
    if not awards:
        return b"%d|%d|%s" % (tx.amount, tx.refunded, tx.payer.encode())
    back = tx.reversed
    if back is None and len(awards) == 1:  # most: one award, never refunded
        a = awards[0]
        return _pack([tx.amount, 0, [[a.program, a.version, a.points, a.provider, 0, *a.caps]],
                      tx.payer])
    back = back or [0] * len(awards)
    return _pack([tx.amount, tx.refunded,
                  [[a.program, a.version, a.points, a.provider, back[k], *a.caps]
                   for k, a in enumerate(awards)], tx.payer])


def _xadd_arguments(line: bytes) -> list[Any]:
    """A ledger line that the compiled reader cannot take (an id with an escape in its
    JSON) as the field/value arguments of its stream entry."""
    entry = orjson.loads(line)
    return [x for name, value in entry.items() if value is not None for x in (name, value)]


def _ledger_arguments(lines: list[bytes]) -> tuple[int, bytes]:
    """The stream entries' arguments of ``lines`` (see :func:`ledger_arguments`)."""
    try:
        return ledger_arguments(lines)
    except ValueError:
        parts: list[Any] = []
        for line in lines:
            fields = _xadd_arguments(line)
            parts += (len(fields), *fields)
        return len(parts), bulk_strings(parts)


class WriteBackStore(MemoryStore):
    """The embedded store, loaded from a :class:`RedisStore` it holds exclusively under a
    lease, that writes each batch back to it (see the module).

    Raises :class:`OperationalError` when another replay holds the store, or Redis fails.
    """

    def __init__(self, shared: RedisStore, *, lease_ms: int = LEASE_MS) -> None:
        self.log = Journal()
        super().__init__(_JournalSink(self.log))
        self.journal = self.log
        self.shared = shared
        self.lease_ms = lease_ms
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._keys = [k.encode() for k in shared.keys]
        self._total_fields: dict[tuple[str, str], bytes] = {}
        self._written_totals: dict[tuple[str, str], int] = {}
        self._written_seq = 0
        self._connection: Any = None
        self._waiting: bytes | None = None  # the last write-back sent, not yet answered
        client = shared.client
        try:
            if not client.set(shared.keys.lease, self.token, nx=True, px=lease_ms):
                holder = client.get(shared.keys.lease)
                raise OperationalError(
                    f"the Redis store under {shared.prefix!r} is held by another exclusive "
                    f"replay ({holder!r}); wait until it ends or its lease expires")
            self._sha = client.script_load(_WRITE_LUA).encode()
            self._release = client.register_script(_RELEASE_LUA)
        except redis.RedisError as exc:
            raise OperationalError(f"Redis failed to lease the store: {exc}") from exc
        try:
            self._load()
        except BaseException:
            self._give_back()
            raise

    # -- loading -----------------------------------------------------------------------------

    def _load(self) -> None:
        """Read the shared store's whole state into this one."""
        keys, client = self.shared.keys, self.shared.client

        def text(value: bytes | str) -> str:
            return value.decode() if isinstance(value, bytes) else value

        try:
            for raw in client.sscan_iter(keys.applied, count=_SCAN):
                self._applied.add(text(raw))
            for raw in client.sscan_iter(keys.members, count=_SCAN):
                self._members.add(text(raw))
            for name, value in client.hscan_iter(keys.counters, count=_SCAN):
                self._counters[sys.intern(text(name))] = int(value)
            for name, value in client.hscan_iter(keys.persons, count=_SCAN):
                self._persons[text(name)] = person_from_json(value)
            for name, value in client.hscan_iter(keys.transactions, count=_SCAN):
                self._load_transaction(text(name), value if isinstance(value, bytes)
                                       else value.encode())
            for name, value in client.hgetall(keys.totals).items():
                program, provider = orjson.loads(name)
                field_name = name if isinstance(name, bytes) else name.encode()
                self._total_fields[(program, provider)] = field_name
                self._totals[(program, provider)] = int(value)
            for name, value in client.hscan_iter(keys.tallies, count=_SCAN):
                self._tallies[text(name)] = int(value)
            seq = client.get(keys.seq)
        except redis.RedisError as exc:
            raise OperationalError(f"Redis failed to load the store: {exc}") from exc
        self._seq = self._written_seq = int(seq) if seq is not None else 0
        self._written_totals = dict(self._totals)

    def _load_transaction(self, tx_id: str, raw: bytes) -> None:
        if raw[:1].isdigit():
            amount, refunded, payer = raw.decode().split("|", 2)
            if 0 <= int(amount) < 1 << 31:
                self._paid.add(_paid_key(tx_id, payer),
                               int(amount) << PAID_SHIFT | int(refunded))
            else:
                self._keep(tx_id, int(amount), int(refunded), (), payer, None)
            return
        amount, refunded, rows, payer = msgpack.unpackb(raw)
        awards = tuple(Award(row[0], row[1], row[2], row[3],
                             tuple(sys.intern(cap) for cap in row[5:])) for row in rows)
        back = [row[4] for row in rows]
        self._keep(tx_id, amount, refunded, awards, payer, back if any(back) else None)

    def _keep(self, tx_id: str, amount: int, refunded: int, awards: tuple[Award, ...],
              payer: str, back: list[int] | None) -> None:
        tx = Transaction(amount, awards, sys.intern(payer))
        tx.refunded = refunded
        tx.reversed = back if back is not None and awards else (
            [0] * len(awards) if refunded and awards else None)
        self._transactions[tx_id] = tx

    # -- writing back ------------------------------------------------------------------------

    def write_back(self) -> None:
        """Send what changed since the last call (nothing: nothing is sent); first read the
        answer to the previous call, so that at most one is in flight."""
        arguments = self._arguments()
        if arguments is None:
            self.log.clear()
            self.confirm()
            return
        count, ledger = _ledger_arguments(self.log.ledger)
        seq = self._seq if self._seq != self._written_seq else ""
        self._written_seq = self._seq
        self.log.clear()
        self.confirm()
        command = b"".join((b"*%d\r\n$7\r\nEVALSHA\r\n$%d\r\n%s\r\n$2\r\n10\r\n"
                            % (len(arguments) + count + 14, len(self._sha), self._sha),
                            bulk_strings([*self._keys, *arguments]), ledger,
                            bulk_strings([seq])))
        self._send(command)
        self._waiting = command

    def confirm(self) -> None:
        """Wait until Redis has written everything sent back so far."""
        if self._waiting is None:
            return
        try:
            try:
                self._connection.read_response()
            except NoScriptError:  # the server lost its scripts: load it again, send again
                self.shared.client.script_load(_WRITE_LUA)
                self._send(self._waiting)
                self._connection.read_response()
        except redis.RedisError as exc:
            raise OperationalError(f"Redis failed to write a batch back: {exc}") from exc
        finally:
            self._waiting = None

    def _send(self, command: bytes) -> None:
        try:
            if self._connection is None:
                self._connection = self.shared.client.connection_pool.get_connection()
            self._connection.send_packed_command([command])
        except redis.RedisError as exc:
            raise OperationalError(f"Redis failed to take a batch: {exc}") from exc

    def _arguments(self) -> list[Any] | None:
        """The script's arguments for what the journal holds; None when nothing changed."""
        j = self.log
        totals = [(pair, value) for pair, value in self._totals.items()
                  if self._written_totals.get(pair) != value]
        if not (j.applied or j.members or j.transactions or j.kept or j.slots or j.counters
                or j.persons or j.tallies or j.ledger or totals):
            return None
        args: list[Any] = [self.token, self.lease_ms, len(j.applied), *j.applied,
                           len(j.members), *j.members]
        kept = self._transactions
        records = [(tx_id, _record(kept[tx_id])) for tx_id in dict.fromkeys(j.kept)
                   if tx_id in kept]  # one the Python path made plain since: that record
        args.append(len(j.transactions) + 2 * len(records))
        args += j.transactions
        for record in records:
            args += record
        changed = dict.fromkeys(self._counters.names_of(j.slots))
        changed.update(dict.fromkeys(j.counters))
        args.append(2 * len(changed))
        args += self._counters.flat_items(changed)
        persons = dict.fromkeys(j.persons)
        args.append(2 * len(persons))
        for person_id in persons:
            args += (person_id, person_to_json(self._persons[person_id]))
        args.append(2 * len(totals))
        for pair, value in totals:
            name = self._total_fields.get(pair)
            if name is None:
                name = self._total_fields[pair] = orjson.dumps(list(pair))
            args += (name, value)
            self._written_totals[pair] = value
        tallies = dict.fromkeys(j.tallies)
        args.append(2 * len(tallies))
        for key in tallies:
            args += (key, self._tallies[key])
        args.append(len(j.ledger))
        return args

    # -- the end -----------------------------------------------------------------------------

    def close(self) -> None:
        """Write back what is left, wait for Redis, give the lease back and close the
        shared store's client."""
        try:
            self.write_back()
            self.confirm()
        finally:
            self._give_back()
            self.shared.close()

    def _give_back(self) -> None:
        if self._connection is not None:
            self.shared.client.connection_pool.release(self._connection)
            self._connection = None
        try:
            self._release(keys=[self.shared.keys.lease], args=[self.token])
        except redis.RedisError as exc:
            raise OperationalError(f"Redis failed to give the lease back: {exc}") from exc

    def __getstate__(self) -> dict[str, object]:
        raise IntegrityError("a write-back store is kept in Redis, not in a checkpoint")

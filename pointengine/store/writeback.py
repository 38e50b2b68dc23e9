"""An exclusive replay onto Redis: the embedded store in front, written through to Redis.

The shared Redis store (:mod:`pointengine.store.redis_store`) decides every intent in its Lua
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
   :class:`Journal`, in the shared store's layout: the applied event keys, the admissions,
   the transactions, the counters, the persons, the totals, the tallies, ``seq`` and one
   ledger stream entry per line, as plain commands in one ``MULTI``/``EXEC`` transaction
   that also renews the lease. No Lua runs: the script's decoding and re-encoding of every
   argument was half of Redis's work;
4. :meth:`WriteBackStore.close` waits for the last batch and gives the lease back.

**Fencing.** The connection that writes back ``WATCH``es the lease key; ``EXEC`` runs only if
nobody touched it since (an expiry counts, from Redis 6.0.9). The ``WATCH`` for the next batch
is set right after ``EXEC``, before a ``GET`` of the lease: that ``GET`` shows the value this
batch's transaction set, so the lease was held when the watch began. Replies are off during
the transaction (``CLIENT REPLY OFF``/``ON``), which would otherwise answer every command
(one per ledger line, hundreds a batch), each answer read by a Python call. The one reply
read is that ``GET``: if it is not this
batch's value, the transaction did not run (or the lease was taken since), and
:meth:`WriteBackStore.confirm` raises :class:`~pointengine.errors.OperationalError`.

**Pipelining.** A batch is sent without waiting: Redis writes it while the next is decided,
and its reply is read before the next is sent.

The result is the shared store's, key for key (the tests replay the same streams both ways
and compare every key). A batch is written back atomically (a client that dies mid-batch
leaves an unfinished ``MULTI``, which Redis discards); if the replay stops in between, Redis
holds every batch written back so far, and replaying the same file again completes it (the
events already written back count as duplicates). If the lease is lost (a replay stalled
longer than ``lease_ms``, or an operator deleted it) nothing more is written back.
"""

from __future__ import annotations

import os
import socket
import sys
import uuid
from collections.abc import Iterable
from typing import Any

import msgpack
import orjson
import redis

from pointengine.errors import IntegrityError, OperationalError
from pointengine.model.ledger import LedgerEntry
from pointengine.store.apply import PAID_SHIFT, paid_key
from pointengine.store.journal import Journal
from pointengine.store.memory import MemoryStore
from pointengine.store.records import Award, Transaction
from pointengine.store.redis_store import RedisStore, person_from_json, person_to_json
from pointengine.store.wire import command, ledger_commands, transaction_record

__all__ = ["Journal", "WriteBackStore"]

LEASE_MS = 60_000
"""How long a lease lasts without a write-back renewing it."""

_SCAN = 1000  # members per SSCAN / HSCAN while loading
_CHUNK = 10_000  # items per SADD / HSET

_RELEASE_LUA = r"""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


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


def _xadd_arguments(line: bytes) -> list[Any]:
    """A ledger line that the compiled reader cannot take (an id with an escape in its
    JSON) as the field/value arguments of its stream entry."""
    entry = orjson.loads(line)
    return [x for name, value in entry.items() if value is not None for x in (name, value)]


def _ledger_commands(lines: list[bytes], stream: bytes) -> bytes:
    """``XADD stream * ...`` for each of ``lines`` (see :func:`ledger_commands`)."""
    try:
        return ledger_commands(lines, stream)
    except ValueError:
        return b"".join(command(b"XADD", [stream, b"*", *_xadd_arguments(line)])
                        for line in lines)


def _chunked(name: bytes, key: str, items: list[Any]) -> list[bytes]:
    """``name key item...`` for ``items``, in commands of at most :data:`_CHUNK` items (an
    even number: pairs stay whole)."""
    return [command(name, [key, *items[start:start + _CHUNK]])
            for start in range(0, len(items), _CHUNK)]


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
        self._total_fields: dict[tuple[str, str], bytes] = {}
        self._written_totals: dict[tuple[str, str], int] = {}
        self._written_seq = 0
        self._connection: Any = None
        self._waiting: bytes | None = None  # the lease's value the last batch sent sets
        self._value: bytes | None = None  # the lease's value, as last confirmed
        self._lost = False
        self._batch = 0
        self._acquire()
        try:
            self._load()
        except BaseException:
            self._give_back()
            raise

    def _acquire(self) -> None:
        """Take the lease and WATCH it, on the connection that writes back."""
        lease = self.shared.keys.lease
        value = f"{self.token}:0".encode()
        client = self.shared.client
        try:
            self._release = client.register_script(_RELEASE_LUA)
            self._connection = client.connection_pool.get_connection()
            connection = self._connection
            connection.send_command("SET", lease, value, "NX", "PX", self.lease_ms)
            if connection.read_response() is None:
                holder = client.get(lease)
                raise OperationalError(
                    f"the Redis store under {self.shared.prefix!r} is held by another "
                    f"exclusive replay ({holder!r}); wait until it ends or its lease expires")
            self._value = value
            connection.send_command("WATCH", lease)
            connection.read_response()
            connection.send_command("GET", lease)
            if connection.read_response() != value:
                self._lost = True
                raise OperationalError("the lease was lost as soon as it was taken")
        except redis.RedisError as exc:
            raise OperationalError(f"Redis failed to lease the store: {exc}") from exc

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
        """One record of the shared store's transactions, kept as :class:`MemoryStore`
        keeps it: compact when it earned nothing, else a :class:`Transaction`."""
        if raw[:1].isdigit():  # 'amount|refunded|payer': it earned nothing
            text_amount, text_refunded, payer = raw.decode().split("|", 2)
            amount, refunded = int(text_amount), int(text_refunded)
            if 0 <= amount < 1 << 31:
                self._paid.add(paid_key(tx_id, payer), amount << PAID_SHIFT | refunded)
                return
            rows: list[list[Any]] = []
        else:
            amount, refunded, rows, payer = msgpack.unpackb(raw)
        tx = Transaction(amount, tuple(Award(row[0], row[1], row[2], row[3],
                                             tuple(sys.intern(cap) for cap in row[5:]))
                                       for row in rows), sys.intern(payer))
        tx.refunded = refunded
        if rows and refunded:  # what each award gave back: a refund's next share counts it
            tx.reversed = [row[4] for row in rows]
        self._transactions[tx_id] = tx

    # -- writing back ------------------------------------------------------------------------

    def write_back(self) -> None:
        """Send what changed since the last call as one transaction (nothing changed: nothing
        is sent); first wait for the previous one, so that at most one is in flight."""
        if self._lost:
            raise OperationalError("the lease on the Redis store was lost: nothing more is "
                                   "written back")
        commands = self._commands()
        self.log.clear()
        self.confirm()
        if commands is None:
            return
        self._batch += 1
        value = b"%s:%d" % (self.token.encode(), self._batch)
        lease = self.shared.keys.lease.encode()
        # Replies are off for the transaction: the one reply read is the lease's value after
        # it, which is this batch's only if EXEC ran (see the module).
        self._send(b"".join((
            command(b"CLIENT", [b"REPLY", b"OFF"]), command(b"MULTI", []), *commands,
            command(b"SET", [lease, value, b"PX", self.lease_ms]), command(b"EXEC", []),
            command(b"WATCH", [lease]), command(b"CLIENT", [b"REPLY", b"ON"]),
            command(b"GET", [lease]))))
        self._waiting = value

    def confirm(self) -> None:
        """Wait until Redis has written everything sent back so far.

        Raises :class:`OperationalError` when the last batch sent was not written: the lease
        was lost (it expired, or was taken away) or Redis refused the transaction."""
        waiting, self._waiting = self._waiting, None
        if waiting is None:
            return
        try:
            self._connection.read_response()  # CLIENT REPLY ON
            holder = self._connection.read_response()
        except redis.RedisError as exc:
            raise OperationalError(f"Redis failed to write a batch back: {exc}") from exc
        if holder != waiting:
            self._lost = True
            raise OperationalError(
                f"a batch was not written back to the Redis store under "
                f"{self.shared.prefix!r}: the lease is no longer held by this replay "
                f"(its value is {holder!r}), or Redis refused the transaction")
        self._value = waiting

    def _send(self, data: bytes) -> None:
        try:
            self._connection.send_packed_command([data])
        except redis.RedisError as exc:
            raise OperationalError(f"Redis failed to take a batch: {exc}") from exc

    def _commands(self) -> list[bytes] | None:
        """The commands for what the journal holds; None when nothing changed."""
        j = self.log
        keys = self.shared.keys
        totals = [(pair, value) for pair, value in self._totals.items()
                  if self._written_totals.get(pair) != value]
        if not (j.applied or j.members or j.transactions or j.kept or j.slots or j.counters
                or j.persons or j.tallies or j.ledger or totals):
            return None
        commands = [*_chunked(b"SADD", keys.applied, j.applied),
                    *_chunked(b"SADD", keys.members, j.members)]
        kept = self._transactions
        pairs: list[Any] = list(j.transactions)
        for tx_id in dict.fromkeys(j.kept):
            if tx_id in kept:  # else the Python path made it plain since: that record
                pairs += (tx_id, transaction_record(kept[tx_id]))
        commands += _chunked(b"HSET", keys.transactions, pairs)
        changed = dict.fromkeys(self._counters.names_of(j.slots))
        changed.update(dict.fromkeys(j.counters))
        commands += _chunked(b"HSET", keys.counters, self._counters.flat_items(changed))
        pairs = []
        for person_id in dict.fromkeys(j.persons):
            pairs += (person_id, person_to_json(self._persons[person_id]))
        commands += _chunked(b"HSET", keys.persons, pairs)
        pairs = []
        for pair, value in totals:
            name = self._total_fields.get(pair)
            if name is None:
                name = self._total_fields[pair] = orjson.dumps(list(pair))
            pairs += (name, value)
            self._written_totals[pair] = value
        commands += _chunked(b"HSET", keys.totals, pairs)
        pairs = []
        for key in dict.fromkeys(j.tallies):
            pairs += (key, self._tallies[key])
        commands += _chunked(b"HSET", keys.tallies, pairs)
        if j.ledger:
            commands.append(_ledger_commands(j.ledger, keys.ledger.encode()))
        if self._seq != self._written_seq:
            commands.append(command(b"SET", [keys.seq, self._seq]))
            self._written_seq = self._seq
        return commands

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
        """Forget the WATCH and give the connection and the lease back (unless lost)."""
        try:
            connection, self._connection = self._connection, None
            if connection is not None:
                if self._waiting is None:
                    connection.send_command("UNWATCH")
                    connection.read_response()
                else:  # its answers were never read: it cannot serve anyone else
                    connection.disconnect()
                self.shared.client.connection_pool.release(connection)
            if self._value is not None and not self._lost:
                self._release(keys=[self.shared.keys.lease], args=[self._value])
        except redis.RedisError as exc:
            raise OperationalError(f"Redis failed to give the lease back: {exc}") from exc

    def __getstate__(self) -> dict[str, object]:
        raise IntegrityError("a write-back store is kept in Redis, not in a checkpoint")

"""Replay onto the Redis store through the compiled lane.

On the Redis store the caps, budgets, refunds and the ledger are applied by the store's Lua
script, atomically against every other client, as for the Python path. What the lane
(:mod:`pointengine.lane.lane`, in its intents mode) replaces is the Python engine's part: it
decides each line and writes a compact batch of intents that the same script applies; the
script's answer gives each intent's outcome (applied, a duplicate, a refund refused, or a
refusal of the engine's, which the script turns into a duplicate when the event was applied
before, as the engine would have found first).

Persons are read for every block, as the Python path reads them for every batch: one
``HMGET`` of the block's persons, and a person is parsed again only when its JSON changed
since it was last read. While the script applies one block, the next one is decided: its
persons are read just before the script runs, and the persons the running block changes
are taken from it. A line the lane leaves to the Python
path is applied in its turn, after everything before it (and the persons of the rest of the
block are read again). A new catalog (``--watch``) takes effect from the next block, as on
the embedded store: a block decided with the old one and not yet sent is decided again.

Rejects are written in line order, as by the embedded replay; the ledger is the store's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson
import redis
from redis.exceptions import NoScriptError

from pointengine.errors import IntegrityError, OperationalError, StateLost
from pointengine.lane.attach import lane_for
from pointengine.lane.lane import fresh, tally
from pointengine.model.persons import Person
from pointengine.model.refusals import Refusal, refusal_message
from pointengine.replay.reading import Lines, Parser, flagged_lines, read_blocks
from pointengine.replay.report import (
    InLineOrder,
    Position,
    Rejects,
    ReplayReport,
    count_decision,
    count_lane,
)
from pointengine.store.redis_store import _APPLY_LUA, RedisStore, person_from_json
from pointengine.store.wire import command, hmget

if TYPE_CHECKING:
    from pointengine.decide.engine import Engine
    from pointengine.lane.lane import Batch, Lane

_PAGE = 1000  # persons per HMGET


@dataclass
class _Block:
    """One block of lines on its way: decided (up to ``done``), sent, then counted."""

    lines: Lines
    position: Position
    lane: Lane
    report: ReplayReport
    held: Rejects  # the block's refusals, written in line order when it is counted
    raws: list[bytes] = field(default_factory=list)
    flagged: set[int] | None = None
    done: int = 0
    batch: Batch | None = None  # decided, not yet sent
    keys: set[str] = field(default_factory=set)  # the keys it sends
    inherited: set[str] = field(default_factory=set)  # the keys the block before it sends


class RedisLaneReplay:
    """Replays blocks of lines onto a :class:`RedisStore` for an engine (see the module)."""

    def __init__(self, engine: Engine, store: RedisStore) -> None:
        self.engine = engine
        self.store = store
        self._read: dict[str, tuple[bytes, Person]] = {}  # id -> (JSON, Person) last read
        self._keys = [key.encode() for key in store._key_list]
        self._sha = b""
        self._connection: Any = None

        self._parser = Parser(Rejects(None), ReplayReport())  # given each block's own

    # -- the connection ----------------------------------------------------------------------

    def _send(self, *commands: bytes) -> None:
        try:
            if self._connection is None:
                self._connection = self.store.client.connection_pool.get_connection()
                self._sha = self.store.client.script_load(_APPLY_LUA).encode()
            self._connection.send_packed_command([b"".join(commands)])
        except redis.RedisError as exc:
            raise OperationalError(f"Redis failed to take a batch: {exc}") from exc

    def _receive(self) -> Any:
        try:
            return self._connection.read_response()
        except NoScriptError:
            raise
        except redis.RedisError as exc:
            raise OperationalError(f"Redis failed to apply a batch: {exc}") from exc

    def close(self) -> None:
        """Give the connection back to the client's pool."""
        if self._connection is not None:
            self.store.client.connection_pool.release(self._connection)
            self._connection = None

    def _hmget(self, ids: list[str]) -> list[bytes]:
        key = self.store.keys.persons.encode()
        return [hmget(key, ids[page:page + _PAGE]) for page in range(0, len(ids), _PAGE)]

    def _evalsha(self, batch: Batch) -> bytes:
        generation = self.store.generation
        if generation is None:
            return command(b"EVALSHA", [self._sha, len(self._keys), *self._keys,
                                        batch.intents, batch.plans])
        # applied only while Redis holds the generation this process knows (see the script)
        marker = generation.keys
        keys = [*self._keys, marker.marker.encode(), marker.lost.encode()]
        return command(b"EVALSHA", [self._sha, len(keys), *keys, batch.intents, batch.plans,
                                    generation.expected().encode()])

    # -- replaying ---------------------------------------------------------------------------

    def blocks(self, handle: BinaryIO, sink: Rejects, report: ReplayReport, batch: int,
               start: Position) -> Iterator[Position]:
        """Replay every block of ``handle`` from ``start``; yield the position after each
        block once the store applied it."""

        try:
            source = read_blocks(handle, batch, start)
            first = next(source, None)
            block = self._new(first, sink) if first is not None else None
            if block is not None:
                self._persons(block, None, self._fetch(self._ids(block, 0)))
                self._decide(block, None)
            while block is not None:
                following = next(source, None)
                upcoming = self._new(following, sink) if following is not None else None
                ids = self._ids(upcoming, 0) if upcoming is not None else []
                sending = block.batch is not None and bool(block.batch.lines)
                # Redis answers commands read together only when the last is done: the
                # persons are read first, on their own, then the script runs meanwhile.
                fetched = self._fetch(ids)
                if sending and block.batch is not None:
                    self._send(self._evalsha(block.batch))
                if upcoming is not None:
                    # decided while the script applies ``block``, with the persons it changes
                    self._persons(upcoming, block, fetched)
                    self._decide(upcoming, block if sending else None)
                if sending and block.batch is not None:
                    self.count_decision(block, block.batch, self._answer(block.batch))
                block.batch = None
                self._commit(block, report)
                yield block.position
                if (upcoming is not None and following is not None
                        and upcoming.lane is not lane_for(self.engine)):
                    upcoming = self._new(following, sink)  # a new catalog: decide it again
                    self._persons(upcoming, None, self._fetch(self._ids(upcoming, 0)))
                    self._decide(upcoming, None)
                if upcoming is not None and upcoming.done < len(upcoming.raws):
                    # what waited for ``block`` to be applied: the lines before it first
                    self._flush(upcoming)
                    self._decide(upcoming, None)
                block = upcoming
        finally:
            self.close()

    def _new(self, read: tuple[Lines, Position], sink: Rejects) -> _Block:

        lines, position = read
        lane = lane_for(self.engine)
        if lane is None:
            raise IntegrityError("the engine has no lane for the Redis store")
        block = _Block(lines, position, lane, ReplayReport(), InLineOrder(sink))
        block.raws = lines.raws
        block.flagged = flagged_lines(block.raws)
        return block

    def _ids(self, block: _Block, start: int) -> list[str]:
        flagged = block.flagged
        return block.lane.persons_of(
            block.raws[start:], None if flagged is None else {i - start for i in flagged
                                                              if i >= start})

    def _fetch(self, ids: list[str]) -> dict[str, Person]:
        """The stored persons among ``ids``, read now."""
        self._send(*self._hmget(ids))
        return self._collect(ids)

    def _collect(self, ids: list[str]) -> dict[str, Person]:
        """Read the answers of :meth:`_hmget` for ``ids`` (sent before)."""
        values = [value for _ in range(0, len(ids), _PAGE) for value in self._receive()]
        if len(values) != len(ids):
            raise IntegrityError(f"Redis answered {len(values)} persons for {len(ids)}")
        return fresh(ids, values, self._read, person_from_json)

    def _persons(self, block: _Block, applying: _Block | None,
                 found: dict[str, Person]) -> None:
        """Give the lane the block's persons, as read and as ``applying`` changes them, and
        the keys ``applying`` sends (a repeat of one is a duplicate)."""
        if applying is not None and applying.batch is not None:
            for _, person_id, _, person in applying.batch.persons:
                found[person_id] = person
        block.lane.persons = found
        block.inherited = set() if applying is None else applying.keys
        block.lane.seen = set(block.inherited)

    def _decide(self, block: _Block, applying: _Block | None) -> None:
        """Decide the block from ``block.done``; with ``applying`` in flight, stop before a
        line for the Python path (it waits until ``applying`` is applied)."""

        lane = block.lane
        parser = self._parser
        parser.rejects, parser.report = block.held, block.report
        raws, i = block.raws, block.done
        while i < len(raws):
            i = lane.run(raws, i, block.flagged)
            count_lane(block.report, block.held, lane, block.lines.first)
            if i == len(raws):
                break
            number, raw = block.lines[i]
            if raw.strip():
                if applying is not None:
                    break
                event = parser.parse(number, raw, block.flagged is not None and i in
                                     block.flagged)
                if event is not None:
                    self._flush(block)
                    decision = self.engine.process([event])[0]
                    count_decision(block.report, block.held, number, decision)
                    lane.persons = self._fetch(self._ids(block, i + 1))
            i += 1
        block.done = i
        block.keys = lane.seen - block.inherited
        if block.batch is not None:
            raise IntegrityError("a block's batch was decided twice")
        block.batch = lane.take_batch()

    def _flush(self, block: _Block) -> None:
        """Apply what was decided of ``block`` so far, now (a Python-path line follows)."""
        if block.batch is not None:
            self._apply_now(block, block.batch)
            block.batch = None
        self._apply_now(block, block.lane.take_batch())

    def _apply_now(self, block: _Block, batch: Batch) -> None:
        if batch.lines:
            self._send(self._evalsha(batch))
            self.count_decision(block, batch, self._answer(batch))

    def _answer(self, batch: Batch) -> list[Any]:
        """The script's answer for ``batch`` (sent last); StateLost when Redis no longer holds
        the store's generation (nothing of the batch was applied)."""
        try:
            reply = self._receive()
        except NoScriptError:
            self._sha = self.store.client.script_load(_APPLY_LUA).encode()
            self._send(self._evalsha(batch))
            reply = self._receive()
        if reply is None and self.store.generation is not None:
            self.store.generation.check()  # says which, and records it for every process
            raise StateLost("the store's generation changed before the batch was applied; "
                            "nothing of it was")
        return list(reply)

    def count_decision(self, block: _Block, batch: Batch, reply: list[Any]) -> None:
        """Count what the script answered for ``batch``, one of ``block``'s."""
        statuses, others = tally(reply, batch.claims)
        for position, person_id, data, person in batch.persons:
            if statuses[position] == 0:
                self._read[person_id] = (data, person)  # as the script stored it
            else:
                self._read.pop(person_id, None)
        report = block.report
        report.applied += statuses.count(0)
        report.duplicates += statuses.count(1)
        refusals = {position: (code, message) for position, code, message in batch.refusals}
        for position, status, left, whole in others:
            index = batch.lines[position]
            if status == 4:
                code, message = refusals[position]
            else:
                line = orjson.loads(block.lines[index][1])
                if status == 2:
                    code = Refusal.UNKNOWN_TRANSACTION
                    message = refusal_message(
                        code, transaction=f"{line['source']}/{line['transaction']}",
                        person=line["person"])
                else:
                    code = Refusal.REFUND_EXCEEDS_PAYMENT
                    message = refusal_message(code, amount=line["amount"], left=left,
                                              whole=whole)
            report.rejected += 1
            report.reasons[str(code)] += 1
            block.held.write(block.lines[index][0], code, message)

    @staticmethod
    def _commit(block: _Block, report: ReplayReport) -> None:
        """Add a block that the store applied to the replay's report and write its rejects."""
        done = block.report
        report.lines += done.lines
        report.lane_lines += done.lane_lines
        report.applied += done.applied
        report.duplicates += done.duplicates
        report.rejected += done.rejected
        report.reasons.update(done.reasons)
        block.held.release()  # type: ignore[attr-defined]

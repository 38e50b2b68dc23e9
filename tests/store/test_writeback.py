"""The exclusive replay onto Redis: the store contract on what it writes back, its lease, its
loading.

That it leaves every key as the shared store's script does is tested on whole streams in
tests/replay/test_redis_replay.py; here, a store that already holds events, and the lease.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis

from pointengine.catalog.loading import Catalog
from pointengine.decide.engine import Engine
from pointengine.errors import OperationalError
from pointengine.model.ledger import LedgerEntry
from pointengine.model.persons import Person
from pointengine.replay.run import replay
from pointengine.store.contract import Applied, Intent, Store
from pointengine.store.redis_store import RedisStore
from pointengine.store.writeback import WriteBackStore
from pointengine.synth.generate import generate
from tests.lane.test_lane import national
from tests.redis_fixtures import redis_client, redis_server
from tests.replay.test_redis_replay import redis_keys
from tests.store_contract import StoreContract

__all__ = ["national", "redis_client", "redis_server"]  # the fixtures this module uses


def _replay(catalog: Catalog, events: Path, client: redis.Redis, *, exclusive: bool) -> None:
    shared = RedisStore(client)
    store = WriteBackStore(shared) if exclusive else shared
    engine = Engine(catalog, store)
    try:
        replay(events, engine, batch=89)
    finally:
        engine.close()
        if exclusive:
            store.close()


def _halves(tmp_path: Path) -> tuple[Path, Path, Path]:
    whole = tmp_path / "events.jsonl"
    generate(whole, persons=150, events=3_000, seed=31,
             adversarial=frozenset({"duplicates", "out_of_order"}))
    lines = whole.read_bytes().splitlines(keepends=True)
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_bytes(b"".join(lines[:1_500]))
    second.write_bytes(b"".join(lines[1_500:]))
    return whole, first, second


@pytest.mark.parametrize("exclusive_half", ["first", "second", "both"])
def test_a_store_written_in_halves_is_the_store_written_at_once(
        national: Catalog, redis_client: redis.Redis, tmp_path: Path,
        exclusive_half: str) -> None:
    # the second half refunds and repeats transactions of the first: the exclusive replay
    # must load them (and the shared script read what the exclusive replay wrote)
    whole, first, second = _halves(tmp_path)
    _replay(national, whole, redis_client, exclusive=False)
    expected = redis_keys(redis_client, RedisStore(redis_client).keys)
    redis_client.flushall()
    _replay(national, first, redis_client, exclusive=exclusive_half in ("first", "both"))
    _replay(national, second, redis_client, exclusive=exclusive_half in ("second", "both"))
    assert redis_keys(redis_client, RedisStore(redis_client).keys) == expected
    assert expected["ledger"] and expected["transactions"]


def _intent(event: str) -> Intent:
    return Intent(event=event, person="MK-1", at="2022-01-10T12:00:00+09:00",
                  person_state=Person(id="MK-1"))


def test_while_the_lease_is_held_the_shared_store_and_a_second_replay_are_refused(
        redis_client: redis.Redis) -> None:
    holder = WriteBackStore(RedisStore(redis_client))
    shared = RedisStore(redis_client)
    with pytest.raises(OperationalError, match="held by an exclusive replay"):
        shared.apply_many([_intent("mykey/e1")])
    with pytest.raises(OperationalError, match="held by another exclusive replay"):
        WriteBackStore(RedisStore(redis_client))
    assert shared.applied(["mykey/e1"]) == set()
    holder.apply_many([_intent("mykey/e2")])
    holder.close()
    assert redis_client.get(shared.keys.lease) is None
    assert [a.status for a in shared.apply_many([_intent("mykey/e1"), _intent("mykey/e2")])
            ] == ["applied", "duplicate"]


def test_a_lost_lease_writes_nothing_and_says_so(redis_client: redis.Redis) -> None:
    store = WriteBackStore(RedisStore(redis_client), lease_ms=60_000)
    store.apply_many([_intent("mykey/e1")])
    store.write_back()
    store.confirm()
    redis_client.delete(store.shared.keys.lease)  # expired, or taken away by an operator
    store.apply_many([_intent("mykey/e2")])
    store.write_back()
    with pytest.raises(OperationalError, match="no longer held by this replay"):
        store.confirm()
    assert RedisStore(redis_client).applied(["mykey/e1", "mykey/e2"]) == {"mykey/e1"}


def test_an_expired_lease_writes_nothing_and_lets_another_replay_in(
        redis_client: redis.Redis) -> None:
    import time

    store = WriteBackStore(RedisStore(redis_client), lease_ms=100)
    time.sleep(0.3)  # stalled past its lease: the watched key expires
    store.apply_many([_intent("mykey/e1")])
    store.write_back()
    with pytest.raises(OperationalError, match="no longer held by this replay"):
        store.confirm()
    other = WriteBackStore(RedisStore(redis_client))  # the store is free again
    other.close()
    with pytest.raises(OperationalError, match=r"lease .* was lost"):
        store.write_back()
    store._give_back()
    assert RedisStore(redis_client).applied(["mykey/e1"]) == set()


def test_a_write_back_survives_the_server_forgetting_its_scripts(
        redis_client: redis.Redis) -> None:
    store = WriteBackStore(RedisStore(redis_client))
    redis_client.script_flush()
    store.apply_many([_intent("mykey/e1")])
    store.close()
    assert RedisStore(redis_client).applied(["mykey/e1"]) == {"mykey/e1"}


def test_a_write_back_store_is_not_a_checkpoint(redis_client: redis.Redis) -> None:
    import pickle

    store = WriteBackStore(RedisStore(redis_client))
    try:
        with pytest.raises(Exception, match="kept in Redis"):
            pickle.dumps(store)
    finally:
        store.close()


class _WrittenBack(Store):
    """A write-back store as the contract sees it: each batch is applied in memory and
    written back at once, and everything is read back from Redis, so each rule of the contract
    holds of what reached Redis."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.view = RedisStore(client, prefix=prefix)
        self.store = WriteBackStore(RedisStore(client, prefix=prefix))

    def apply_many(self, intents: Sequence[Intent]) -> list[Applied]:
        results = self.store.apply_many(intents)
        self.store.write_back()
        self.store.confirm()
        return results

    def persons(self, ids: Iterable[str]) -> dict[str, Person]:
        return self.view.persons(ids)

    def applied(self, events: Iterable[str]) -> set[str]:
        return self.view.applied(events)

    def counter(self, key: str) -> int:
        return self.view.counter(key)

    def totals(self) -> dict[tuple[str, str], int]:
        return self.view.totals()

    def tallies(self, prefix: str) -> dict[str, int]:
        return self.view.tallies(prefix)

    def close(self) -> None:
        self.store.close()
        self.store.shared.close()
        self.view.close()


class TestWriteBackStore(StoreContract):
    """Every contract test on the exclusive replay's store, read back from Redis."""

    client: redis.Redis
    prefixes: Any

    @pytest.fixture(autouse=True)
    def _on_redis(self, request: pytest.FixtureRequest,
                  redis_client: redis.Redis) -> None:
        request.instance.client = redis_client
        request.instance.prefixes = itertools.count()

    def make_store(self) -> Store:
        return _WrittenBack(self.client, f"wb{next(self.prefixes)}:")

    def ledger_entries(self, store: Store) -> list[LedgerEntry]:
        assert isinstance(store, _WrittenBack)
        return list(store.view.ledger())

"""The generation marker on a real Redis: a new store starts one, a lost one is found lost by
every process, and only the operator's re-initialisation lets the store be used again."""

from __future__ import annotations

import pytest
import redis

from pointengine.errors import OperationalError, StateLost
from pointengine.store.contract import Cap, Claim, Intent
from pointengine.store.generation import Generation, GenerationKeys, read_generation, reinit
from pointengine.store.redis_server import RedisServer
from pointengine.store.redis_store import RedisStore
from tests.redis_fixtures import redis_client, redis_server

__all__ = ["redis_client", "redis_server"]

KEYS = GenerationKeys.under("pe:")


def purchase(n: int, amount: int = 10_000) -> Intent:
    """A purchase earning 20 % under a per-person cap of 5,000 points."""
    caps = (Cap("pp|nat|MK1", 5000, "person cap"),)
    return Intent(f"e{n}", "MK1", "2022-03-01T10:00:00+09:00",
                  (Claim("nat", 1, amount * 20 // 100, "paypay", caps),),
                  transaction=f"t{n}", amount=amount)


def test_a_new_store_starts_a_generation_that_every_process_shares(
        redis_server: RedisServer, redis_client: redis.Redis) -> None:
    first = Generation(redis_client).check()
    assert first.startswith("new:")
    assert Generation(redis_server.client()).check() == first
    assert read_generation(redis_client, "pe:") == (first, None)


def test_a_store_from_before_the_marker_is_taken_as_it_is(redis_client: redis.Redis) -> None:
    store = RedisStore(redis_client)
    store.apply_many([purchase(1)])
    assert Generation(redis_client).check().startswith("new:")
    assert store.counter("pp|nat|MK1") == 2000


def test_a_store_that_lost_its_marker_is_lost_for_every_process(
        redis_server: RedisServer, redis_client: redis.Redis) -> None:
    seen = Generation(redis_client)
    seen.check()
    redis_client.flushall()  # Redis comes back empty
    with pytest.raises(StateLost) as raised:
        seen.check()
    assert raised.value.reason_code == "state_lost"
    assert isinstance(raised.value, OperationalError)
    assert seen.lost is not None
    with pytest.raises(StateLost):  # a process started now cannot take it for a new store
        Generation(redis_server.client()).check()
    assert redis_client.get(KEYS.marker) is None


def test_a_marker_started_again_by_a_new_process_is_not_taken_for_the_state(
        redis_server: RedisServer, redis_client: redis.Redis) -> None:
    seen = Generation(redis_client)
    seen.check()
    redis_client.flushall()
    newcomer = Generation(redis_server.client())
    newcomer.check()  # started before anyone noticed: it cannot know
    with pytest.raises(StateLost):
        seen.check()
    with pytest.raises(StateLost):  # but it is told now
        newcomer.check()


def test_reinit_starts_a_generation_that_every_process_takes_up(
        redis_server: RedisServer, redis_client: redis.Redis) -> None:
    seen = Generation(redis_client)
    seen.check()
    redis_client.flushall()
    with pytest.raises(StateLost):
        seen.check()
    generation = reinit(redis_client, "pe:")
    assert generation.startswith("reset:")
    assert seen.check() == generation and seen.lost is None
    assert Generation(redis_server.client()).check() == generation
    assert read_generation(redis_client, "pe:") == (generation, None)


def test_a_loss_seen_before_a_reinit_is_not_recorded_after_it(
        redis_server: RedisServer, redis_client: redis.Redis) -> None:
    """A process that read the empty Redis just before the operator's reinit, and records
    the loss just after it, leaves the operator's decision standing."""
    slow = Generation(redis_client)
    slow.check()
    redis_client.flushall()
    generation = reinit(redis_server.client(), "pe:")  # lands between the read and the record
    with pytest.raises(StateLost):
        slow.judge(None, None)  # what it read before
    assert read_generation(redis_client, "pe:") == (generation, None)
    assert Generation(redis_server.client()).check() == generation


def test_a_guarded_store_applies_nothing_once_the_state_is_lost(
        redis_client: redis.Redis) -> None:
    generation = Generation(redis_client)
    store = RedisStore(redis_client, generation=generation)
    [first] = store.apply_many([purchase(1)])
    assert first.status == "applied" and store.counter("pp|nat|MK1") == 2000
    redis_client.flushall()  # the cap's counter is gone with everything else
    with pytest.raises(StateLost):
        store.apply_many([purchase(2)])
    assert redis_client.keys("pe:[^g]*") == []  # not one key of the store was written
    reinit(redis_client, "pe:")
    generation.check()
    [second] = store.apply_many([purchase(2)])
    assert second.status == "applied" and store.counter("pp|nat|MK1") == 2000


def test_an_unguarded_store_is_not_slowed_by_the_marker(redis_client: redis.Redis) -> None:
    store = RedisStore(redis_client)
    store.apply_many([purchase(1)])
    assert redis_client.get(KEYS.marker) is None

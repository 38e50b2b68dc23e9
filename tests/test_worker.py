"""Workers on a real Redis: several at once, one that dies, refunds before their purchase.

The reference is the same events evaluated in stream order by one engine on the embedded
store. Refunds are left out where totals are compared: what a refund takes back depends on the
order in which it meets other awards under the same cap, and entries taken by different
workers at the same time have no order between them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis

from load.service_scenario import Scenario, build, rules_with_tight_budget
from pointengine.catalog import Catalog, load_catalog
from pointengine.engine import Engine
from pointengine.events import AnyEvent, event_from_dict
from pointengine.ledger import ListSink
from pointengine.memory_store import MemoryStore
from pointengine.redis_server import RedisServer
from pointengine.redis_store import RedisStore
from pointengine.settlement import settle_redis
from pointengine.streams import StreamKeys, encode_entry
from pointengine.worker import Worker
from tests.redis_fixtures import redis_client, redis_server

__all__ = ["redis_client", "redis_server"]

ROOT = Path(__file__).resolve().parents[1]
BUDGET = 60_000
TIGHT = "test-chiyoda-tight"
CARD = "national-phase2-card"


@pytest.fixture(scope="module")
def rules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The rules plus a 千代田区 program whose budget runs out."""
    return rules_with_tight_budget(ROOT / "rules", tmp_path_factory.mktemp("rules") / "r",
                                   BUDGET)


@pytest.fixture(scope="module")
def catalog(rules: Path) -> Catalog:
    """The catalog of :func:`rules`."""
    return load_catalog(rules)


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    """400 persons on four providers, 3,000 transactions without refunds."""
    return build(400, 3000, seed=7, refunds=False)


def enqueue(client: redis.Redis, events: Sequence[AnyEvent], *, per_entry: int = 25,
            prefix: str = "pe:") -> None:
    """Write ``events`` to the stream as the service does, ``per_entry`` to an entry."""
    keys = StreamKeys.under(prefix)
    pipe = client.pipeline(transaction=False)
    for start in range(0, len(events), per_entry):
        chunk = events[start:start + per_entry]
        pipe.xadd(keys.stream, encode_entry(chunk[0].source, chunk))  # type: ignore[arg-type]
    pipe.execute()


def reference(catalog: Catalog, events: Sequence[AnyEvent]) -> tuple[MemoryStore, ListSink]:
    """One engine, the embedded store, stream order."""
    sink = ListSink()
    store = MemoryStore(sink)
    engine = Engine(catalog, store)
    for start in range(0, len(events), 500):
        engine.process(events[start:start + 500])
    engine.close()
    return store, sink


def make_worker(server: RedisServer, catalog: Catalog, name: str, *, count: int = 100,
                claim_idle_ms: int = 30_000, max_attempts: int = 5) -> Worker:
    """A worker with its own connections and engine."""
    engine = Engine(catalog, RedisStore(server.client()))
    return Worker(server.client(), engine, name=name, block_ms=50, count=count,
                  claim_idle_ms=claim_idle_ms, max_attempts=max_attempts)


def run_workers(server: RedisServer, catalog: Catalog, n: int, **kwargs: Any) -> list[Worker]:
    """``n`` workers in threads until the stream is drained."""
    workers = [make_worker(server, catalog, f"w{i}", **kwargs) for i in range(n)]
    workers[0].ensure_group()
    threads = [threading.Thread(target=w.run, kwargs={"until_empty": True}) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
        assert not thread.is_alive(), "a worker did not finish"
    for worker in workers:
        worker.engine.close()
    return workers


def points_per_person(entries: Iterator[object] | list[object], program: str) -> Counter[str]:
    """Net points of ``program`` per person in ledger entries."""
    out: Counter[str] = Counter()
    for entry in entries:
        if getattr(entry, "program") == program:  # noqa: B009 - ledger entries of two kinds
            out[getattr(entry, "person")] += getattr(entry, "points")  # noqa: B009
    return out


def test_several_workers_respect_caps_and_budget_and_match_one(
        redis_server: RedisServer, redis_client: redis.Redis, catalog: Catalog,
        scenario: Scenario) -> None:
    expected, sink = reference(catalog, scenario.applications + scenario.transactions)
    assert expected.totals()[(TIGHT, "quickpay")] == BUDGET  # demand exceeds the budget
    enqueue(redis_client, scenario.applications, per_entry=100)
    run_workers(redis_server, catalog, 1)  # persons first: an application must precede
    enqueue(redis_client, scenario.transactions)
    workers = run_workers(redis_server, catalog, 3, count=4)
    assert all(w.report.entries > 0 for w in workers), "every worker took a share"
    store = RedisStore(redis_server.client())
    assert store.totals() == expected.totals()
    ledger = list(store.ledger())
    per_person = points_per_person(list(ledger), CARD)
    assert per_person == points_per_person(list(sink.entries), CARD)
    assert max(per_person.values()) <= 5000
    assert max(points_per_person(list(ledger), TIGHT).values()) <= 3000
    assert sum(e.points for e in ledger if e.program == TIGHT) == BUDGET
    budget_keys = [k.decode() for k in redis_client.hkeys("pe:counters")
                   if isinstance(k, bytes) and TIGHT.encode() in k]
    assert budget_keys and all(store.counter(k) <= BUDGET for k in budget_keys)
    assert settle_redis(store).reconciled_with_totals
    statuses = sum((w.report.statuses for w in workers), Counter())
    assert statuses == Counter({"applied": len(scenario.transactions)})


def test_a_worker_that_reads_and_never_acks_is_taken_over(
        redis_server: RedisServer, redis_client: redis.Redis, catalog: Catalog,
        scenario: Scenario) -> None:
    events = scenario.applications + scenario.transactions[:1500]
    expected, _ = reference(catalog, events)
    enqueue(redis_client, scenario.applications, per_entry=100)
    run_workers(redis_server, catalog, 1)
    enqueue(redis_client, scenario.transactions[:1500], per_entry=50)
    dead = make_worker(redis_server, catalog, "dead", count=5)
    dead.ensure_group()
    taken = dead.read(block_ms=0)  # read, then die: never applied, never acknowledged
    assert len(taken) == 5
    survivors = run_workers(redis_server, catalog, 2, claim_idle_ms=300)
    assert sum(w.report.claimed for w in survivors) >= 5
    assert RedisStore(redis_server.client()).totals() == expected.totals()
    dead.engine.close()


def test_a_worker_killed_mid_batch_leaves_the_ledger_exact(
        redis_server: RedisServer, redis_client: redis.Redis, catalog: Catalog,
        scenario: Scenario, rules: Path) -> None:
    events = scenario.applications + scenario.transactions
    expected, _ = reference(catalog, events)
    enqueue(redis_client, scenario.applications, per_entry=100)
    run_workers(redis_server, catalog, 1)
    enqueue(redis_client, scenario.transactions, per_entry=20)
    child = subprocess.Popen(
        [sys.executable, "-m", "pointengine.cli", "worker", "--redis-url", redis_server.url,
         "--rules", str(rules), "--name", "doomed", "--count", "10", "--log-level", "error"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # kill it once it has worked and holds entries
            stats = redis_client.hgetall("pe:stats")
            pending = redis_client.xpending("pe:stream", "workers")["pending"]
            if int(stats.get(b"events", 0)) > len(scenario.applications) + 100 and pending:
                break
            time.sleep(0.005)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=10)
    left = redis_client.xpending("pe:stream", "workers")["pending"]
    done = int(redis_client.hget("pe:stats", "events") or 0)
    assert done < len(events), "the worker was killed before the end of the stream"
    survivors = run_workers(redis_server, catalog, 2, claim_idle_ms=300)
    store = RedisStore(redis_server.client())
    assert store.totals() == expected.totals()
    assert settle_redis(store).reconciled_with_totals
    if left:
        assert sum(w.report.claimed for w in survivors) >= 1


def test_a_refund_before_its_purchase_is_retried_then_applied(
        redis_server: RedisServer, redis_client: redis.Redis, catalog: Catalog,
        scenario: Scenario) -> None:
    application = scenario.applications[0]  # a quickpay member
    person = application.person
    purchase = event_from_dict({
        "type": "purchase", "source": "quickpay", "id": "P1", "person": person,
        "at": "2022-03-02T10:00:00+09:00", "provider": "quickpay", "amount": 8000,
        "store": "S0001", "store_municipality": "131016"})
    refund = event_from_dict({
        "type": "refund", "source": "quickpay", "id": "R1", "person": person,
        "at": "2022-03-03T10:00:00+09:00", "provider": "quickpay", "transaction": "P1",
        "amount": 8000})
    orphan = refund.model_copy(update={"id": "R2", "transaction": "NEVER"})
    enqueue(redis_client, [application], per_entry=1)
    enqueue(redis_client, [refund, orphan], per_entry=1)
    enqueue(redis_client, [purchase], per_entry=1)
    workers = run_workers(redis_server, catalog, 1, max_attempts=3)
    report = workers[0].report
    assert report.rejected == Counter({"unknown_transaction": 1})  # only the orphan, at last
    assert report.retried >= 3
    totals = RedisStore(redis_server.client()).totals()
    assert totals.get((CARD, "quickpay"), 0) == 0  # awarded, then fully reversed
    stats = redis_client.hgetall("pe:stats")
    assert stats[b"rejected:unknown_transaction"] == b"1"


def test_a_duplicate_delivery_changes_nothing(
        redis_server: RedisServer, redis_client: redis.Redis, catalog: Catalog,
        scenario: Scenario) -> None:
    events = scenario.applications[:20] + [
        e for e in scenario.transactions if e.person in
        {a.person for a in scenario.applications[:20]}]
    enqueue(redis_client, events)
    run_workers(redis_server, catalog, 1)
    store = RedisStore(redis_server.client())
    before, lines = store.totals(), len(list(store.ledger()))
    enqueue(redis_client, events, per_entry=7)
    workers = run_workers(redis_server, catalog, 2)
    assert store.totals() == before and len(list(store.ledger())) == lines
    statuses = sum((w.report.statuses for w in workers), Counter())
    assert statuses == Counter({"duplicate": len(events)})

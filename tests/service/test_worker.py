"""Workers on a real Redis: per-person order across shards, failover, refunds, lottery draws.

The reference is the same stream evaluated in order by one engine on the embedded store. The
streams mix everything: applications interleaved with the purchases and refunds of the same
persons (a purchase before its person's application earns nothing, in both runs). Every person's
points per program must equal the reference's. The exception is the test program whose yen
budget runs out: which persons get the last yen depends on the order between persons, which
several workers do not keep (only its sum and caps are checked).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from typer.testing import CliRunner

from load.harness import enqueue, make_worker, reference, run_workers
from load.service_scenario import Scenario, build, rules_with_tight_budget
from pointengine.catalog.loading import Catalog, load_catalog
from pointengine.cli.main import app
from pointengine.decide.engine import Engine
from pointengine.decide.reload import CatalogWatcher
from pointengine.model.events import AnyEvent, event_from_dict
from pointengine.model.ledger import ListSink
from pointengine.service.settlement import settle_redis
from pointengine.service.streams import DRAWS, StreamKeys, read_rejects, shard_count
from pointengine.service.worker import Worker
from pointengine.store.memory import MemoryStore
from pointengine.store.redis_server import RedisServer
from pointengine.store.redis_store import RedisStore
from tests.redis_fixtures import redis_client, redis_server

__all__ = ["redis_client", "redis_server"]

ROOT = Path(__file__).resolve().parents[2]
BUDGET = 60_000
TIGHT = "test-chiyoda-tight"
CARD = "national-phase2-card"
KEYS = StreamKeys.under("pe:")


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
    """400 persons on four providers, 3,000 transactions with their refunds."""
    return build(400, 3000, seed=7)


def mixed(scenario: Scenario, seed: int = 1) -> list[AnyEvent]:
    """Applications dropped at random places among the transactions (each list keeps its
    order, so refunds follow their purchases; some purchases precede their application)."""
    rng = random.Random(seed)
    out = list(scenario.transactions)
    for application in scenario.applications:
        out.insert(rng.randrange(len(out) + 1), application)
    return out


def per_person(entries: Iterable[object]) -> Counter[tuple[str, str]]:
    """Net points per (program, person) in ledger entries, the budget-bound program aside."""
    out: Counter[tuple[str, str]] = Counter()
    for entry in entries:
        program = getattr(entry, "program")  # noqa: B009 - ledger entries of two kinds
        if program != TIGHT:
            out[(program, getattr(entry, "person"))] += getattr(entry, "points")  # noqa: B009
    return +out


def assert_same_as_reference(server: RedisServer, expected: MemoryStore,
                             sink: ListSink) -> RedisStore:
    """Per person and program, and per program and provider, the Redis store equals the
    reference; the budget-bound program keeps its budget and caps."""
    store = RedisStore(server.client())
    ledger = list(store.ledger())
    assert per_person(ledger) == per_person(sink.entries)
    totals = {k: v for k, v in store.totals().items() if k[0] != TIGHT and v}
    assert totals == {k: v for k, v in expected.totals().items() if k[0] != TIGHT and v}
    tight = Counter[str]()
    for entry in ledger:
        if entry.program == TIGHT:
            tight[entry.person] += entry.points
    assert 0 < sum(tight.values()) <= BUDGET
    assert max(tight.values()) <= 3000
    assert settle_redis(store).reconciled_with_totals
    return store


def test_several_workers_keep_each_persons_order_and_match_one(
        redis_server: RedisServer, redis_client: redis.Redis, catalog: Catalog,
        scenario: Scenario) -> None:
    events = mixed(scenario)
    expected, sink = reference(catalog, events)
    assert expected.totals()[(TIGHT, "quickpay")] <= BUDGET
    assert any(e.type == "refund" for e in events)
    enqueue(redis_client, events)
    workers = run_workers(redis_server, catalog, 3, count=4)
    assert all(w.report.entries > 0 for w in workers), "every worker took a share"
    assert all(w.report.taken <= 9 for w in workers)
    store = assert_same_as_reference(redis_server, expected, sink)
    assert max(v for (p, _), v in per_person(store.ledger()).items() if p == CARD) <= 5000
    assert sum(w.report.retried for w in workers) == 0  # no refund met an unknown purchase
    assert not redis_client.zcard(KEYS.workers), "the workers left the registry"
    assert not list(redis_client.scan_iter("pe:stream:lease:*")), "leases were released"


def test_leases_are_shared_fairly_and_only_the_holder_can_release(
        redis_server: RedisServer, redis_client: redis.Redis, catalog: Catalog) -> None:
    first = make_worker(redis_server, catalog, "first", lease_ms=600)
    first.ensure_group()
    first.maintain(force=True)
    assert len(first.held) == 17  # alone: the 16 person shards and the draws
    second = make_worker(redis_server, catalog, "second", lease_ms=600)
    second.ensure_group()
    second.maintain(force=True)
    assert not second.held  # nothing free yet
    first.maintain(force=True)
    assert len(first.held) == 9  # ceil(17 / 2): the rest released
    second.maintain(force=True)
    assert len(second.held) == 8 and not set(first.held) & set(second.held)
    shard = next(iter(first.held))
    second._release(keys=[KEYS.lease(shard)], args=[second.token])  # not its lease
    assert redis_client.get(KEYS.lease(shard)) == first.token.encode()
    first.leave()
    second.maintain(force=True)
    assert len(second.held) == 17
    second.leave()
    for worker in (first, second):
        worker.engine.close()


def test_a_worker_that_reads_and_never_acks_is_taken_over(
        redis_server: RedisServer, redis_client: redis.Redis, catalog: Catalog,
        scenario: Scenario) -> None:
    events = mixed(scenario, seed=2)[:2000]
    expected, sink = reference(catalog, events)
    enqueue(redis_client, events, per_entry=50)
    dead = make_worker(redis_server, catalog, "dead", count=5, lease_ms=300)
    dead.ensure_group()
    dead.maintain(force=True)
    taken = [dead.read(block_ms=0) for _ in range(3)]  # read, then die: never applied
    assert sum(len(t) for t in taken) >= 5
    survivors = run_workers(redis_server, catalog, 2, lease_ms=300)
    assert sum(w.report.claimed for w in survivors) >= 5
    assert_same_as_reference(redis_server, expected, sink)
    dead.engine.close()


def test_a_worker_killed_mid_batch_is_replaced_and_the_ledger_is_exact(
        redis_server: RedisServer, redis_client: redis.Redis, catalog: Catalog,
        scenario: Scenario, rules: Path) -> None:
    events = mixed(scenario, seed=3)
    expected, sink = reference(catalog, events)
    enqueue(redis_client, events, per_entry=20)
    child = subprocess.Popen(
        [sys.executable, "-m", "pointengine.cli.main", "worker", "--redis-url", redis_server.url,
         "--rules", str(rules), "--name", "doomed", "--count", "10", "--lease-ms", "500",
         "--log-level", "error"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # kill it once it has worked
            if int(redis_client.hget(KEYS.stats, "events") or 0) > 600:
                break
            time.sleep(0.005)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=10)
    done = int(redis_client.hget(KEYS.stats, "events") or 0)
    assert 0 < done < len(events), "the worker was killed before the end of the stream"
    assert list(redis_client.scan_iter("pe:stream:lease:*")), "it died holding its leases"
    survivors = run_workers(redis_server, catalog, 2, lease_ms=500)
    assert sum(w.report.taken for w in survivors) >= 17
    assert_same_as_reference(redis_server, expected, sink)


def purchase_and_refund(person: str, amount: int, refunded_at: str) -> tuple[AnyEvent, AnyEvent]:
    """A QuickPay purchase P1 of ``amount`` yen on 2022-03-02 and its full refund R1 (JST)."""
    purchase = event_from_dict({
        "type": "purchase", "source": "quickpay", "id": "P1", "person": person,
        "at": "2022-03-02T10:00:00+09:00", "provider": "quickpay", "amount": amount,
        "store": "S0001", "store_municipality": "131016"})
    refund = event_from_dict({
        "type": "refund", "source": "quickpay", "id": "R1", "person": person,
        "at": f"{refunded_at}+09:00", "provider": "quickpay", "transaction": "P1",
        "amount": amount})
    return purchase, refund


def test_a_refund_before_its_purchase_is_retried_then_applied(
        redis_server: RedisServer, redis_client: redis.Redis, catalog: Catalog,
        scenario: Scenario) -> None:
    application = scenario.applications[0]  # a quickpay member
    purchase, refund = purchase_and_refund(application.person, 8000, "2022-03-03T10:00:00")
    orphan = refund.model_copy(update={"id": "R2", "transaction": "NEVER"})
    enqueue(redis_client, [application], per_entry=1)
    enqueue(redis_client, [refund, orphan], per_entry=1)
    enqueue(redis_client, [purchase], per_entry=1)
    started = time.monotonic()
    workers = run_workers(redis_server, catalog, 1, retry_delay_ms=20, retry_window_ms=400)
    assert time.monotonic() - started >= 0.4  # the orphan was tried until the window's end
    report = workers[0].report
    assert report.rejected == Counter({"unknown_transaction": 1})  # only the orphan, at last
    assert report.retried >= 3
    totals = RedisStore(redis_server.client()).totals()
    assert totals.get((CARD, "quickpay"), 0) == 0  # awarded, then fully reversed
    stats = redis_client.hgetall(KEYS.stats)
    assert stats[b"rejected:unknown_transaction"] == b"1"
    [given_up] = read_rejects(redis_client, KEYS)
    assert (given_up.event, given_up.reason) == ("quickpay/R2", "unknown_transaction")
    assert "given up after" in given_up.detail


def test_a_refund_posted_shortly_before_its_purchase_waits_for_it(
        redis_server: RedisServer, redis_client: redis.Redis, catalog: Catalog,
        scenario: Scenario) -> None:
    application = scenario.applications[0]  # a quickpay member
    purchase, refund = purchase_and_refund(application.person, 4000, "2022-03-02T10:05:00")
    worker = make_worker(redis_server, catalog, "w")  # the default retry schedule
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, kwargs={"stop": stop})
    thread.start()
    try:
        enqueue(redis_client, [application, refund], per_entry=1)
        deadline = time.monotonic() + 10
        while not int(redis_client.hget(KEYS.stats, "retried") or 0):
            assert time.monotonic() < deadline, "the refund was not tried"
            time.sleep(0.01)
        time.sleep(0.3)  # the purchase comes a little later
        enqueue(redis_client, [purchase])
        deadline = time.monotonic() + 30
        while not worker.drained():
            assert time.monotonic() < deadline, "the refund was not applied"
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=10)
        worker.engine.close()
    totals = RedisStore(redis_server.client()).totals()
    assert totals.get((CARD, "quickpay"), 0) == 0  # the 1,000 points were taken back
    assert worker.report.statuses == Counter({"applied": 3})
    assert not read_rejects(redis_client, KEYS)


def test_a_duplicate_delivery_changes_nothing(
        redis_server: RedisServer, redis_client: redis.Redis, catalog: Catalog,
        scenario: Scenario) -> None:
    persons = {a.person for a in scenario.applications[:20]}
    events = [e for e in mixed(scenario) if e.person in persons]
    enqueue(redis_client, events)
    run_workers(redis_server, catalog, 1)
    store = RedisStore(redis_server.client())
    before, lines = store.totals(), len(list(store.ledger()))
    enqueue(redis_client, events, per_entry=7)
    workers = run_workers(redis_server, catalog, 2)
    assert store.totals() == before and len(list(store.ledger())) == lines
    statuses = sum((w.report.statuses for w in workers), Counter())
    assert statuses == Counter({"duplicate": len(events)})


def test_a_lottery_draw_sees_exactly_the_entries_before_it(
        redis_server: RedisServer, redis_client: redis.Redis, catalog: Catalog) -> None:
    def event(kind: str, person: str, day: str, **fields: Any) -> AnyEvent:
        return event_from_dict({"type": kind, "source": fields.pop("source", "mykey"),
                                "id": fields.pop("id"), "person": person,
                                "at": f"{day}T12:00:00+09:00", **fields})

    def entrants(persons: range, step: str) -> list[AnyEvent]:
        out: list[AnyEvent] = []
        for n in persons:
            person = f"MKL{n:05d}"
            out += [event("mynapoint_application", person, "2022-04-10", id=f"a{n}", phase=2,
                          provider="quickpay", card_applied_on="2021-12-01",
                          residence="431001"),
                    event("participation", person, "2022-05-01", id=f"{step}{n}",
                          source="kumamoto", municipality="431001", activity="walk",
                          health_points=100)]
        return out

    draw = event("lottery_draw", "MKOFFICIAL", "2023-04-03", id="d1", source="kumamoto",
                 program="kumamoto-health-lottery")
    before, after = entrants(range(40), "p"), entrants(range(40, 80), "q")
    _, sink = reference(catalog, [*before, draw, *after])
    winners = {e.person for e in sink.entries if e.program == "kumamoto-health-lottery"}
    assert len(winners) == 40  # the entrants before the draw, none after
    enqueue(redis_client, before, per_entry=4)
    time.sleep(0.005)  # entry IDs order shards by the millisecond (see pointengine.service.worker)
    enqueue(redis_client, [draw])
    time.sleep(0.005)
    enqueue(redis_client, after, per_entry=4)
    assert redis_client.xlen(KEYS.shard(DRAWS)) == 1
    run_workers(redis_server, catalog, 3, count=2)
    got = {e.person for e in RedisStore(redis_server.client()).ledger()
           if e.program == "kumamoto-health-lottery"}
    assert got == winners


CHIYODA_NEW = """\
id: test-chiyoda-new
name: 千代田区 reload test (+10% for residents)
jurisdiction: "131016"
phase: 2
on: [purchase]
restriction: {persons: residents}
award: {kind: premium, rate: 10%, cap: 1000}
"""


def _purchase(n: int, person: str) -> AnyEvent:
    return event_from_dict({
        "type": "purchase", "source": "paypay", "id": f"reload-{n}", "person": person,
        "at": "2022-03-01T12:00:00+09:00", "provider": "paypay", "amount": 4000,
        "store": "ST1", "store_municipality": "131016"})


def test_a_worker_takes_up_changed_rule_files_without_a_restart(
        redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    engine = Engine(load_catalog(rules), RedisStore(redis_server.client()))
    watcher = CatalogWatcher(rules, engine, interval=0)
    worker = Worker(redis_server.client(), engine, name="w", block_ms=50, watcher=watcher)
    person = "MK-RELOAD"
    enqueue(redis_client, [event_from_dict({
        "type": "mynapoint_application", "source": "mykey", "id": "a-reload", "person": person,
        "at": "2022-02-01T09:00:00+09:00", "phase": 2, "provider": "paypay",
        "card_applied_on": "2021-12-01", "residence": "131016"}), _purchase(1, person)])
    worker.run(until_empty=True)
    (rules / "131016-test").mkdir()
    (rules / "131016-test" / "new.yaml").write_text(CHIYODA_NEW, encoding="utf-8")
    enqueue(redis_client, [_purchase(2, person)])
    worker.run(until_empty=True)
    engine.close()
    awards = [(e.event, e.program, e.points) for e in RedisStore(redis_server.client()).ledger()]
    assert awards == [("paypay/reload-1", CARD, 1000), ("paypay/reload-2", CARD, 1000),
                      ("paypay/reload-2", "test-chiyoda-new", 400)]


def test_events_refused_after_acceptance_are_recorded_with_their_key_and_reason(
        redis_server: RedisServer, redis_client: redis.Redis, catalog: Catalog,
        scenario: Scenario) -> None:
    application = scenario.applications[0]  # a quickpay member
    person = application.person
    stranger = application.model_copy(update={"id": "A-NOBODY", "person": "MK-NOBODY",
                                              "provider": "nopay"})
    purchase = event_from_dict({
        "type": "purchase", "source": "quickpay", "id": "P1", "person": person,
        "at": "2022-03-02T10:00:00+09:00", "provider": "quickpay", "amount": 8000,
        "store": "S0001", "store_municipality": "131016"})
    refund = event_from_dict({
        "type": "refund", "source": "quickpay", "id": "R1", "person": person,
        "at": "2022-03-03T10:00:00+09:00", "provider": "quickpay", "transaction": "P1",
        "amount": 5000})
    again = refund.model_copy(update={"id": "R2"})
    enqueue(redis_client, [application, stranger, purchase, refund, again], per_entry=1)
    run_workers(redis_server, catalog, 1)
    rejects = sorted(read_rejects(redis_client, KEYS), key=lambda r: r.event)  # two shards
    assert [(r.event, r.person, r.provider, r.reason) for r in rejects] == [
        ("mykey/A-NOBODY", "MK-NOBODY", "mykey", "unknown_provider"),
        ("quickpay/R2", person, "quickpay", "refund_exceeds_payment")]
    assert "nopay" in rejects[0].detail and "5000" in rejects[1].detail
    result = CliRunner().invoke(app, ["rejects", "--redis-url", redis_server.url])
    assert result.exit_code == 0, result.output
    lines = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert sorted((line["event"], line["reason"]) for line in lines) == [
        ("mykey/A-NOBODY", "unknown_provider"), ("quickpay/R2", "refund_exceeds_payment")]


def stream_lengths(client: redis.Redis) -> dict[str, int]:
    """The length of every shard stream."""
    count = shard_count(client, KEYS)
    return {s: int(client.xlen(KEYS.shard(s))) for s in KEYS.all_shards(count)}


def enqueue_forty_persons(client: redis.Redis, scenario: Scenario) -> None:
    """The mixed events of the scenario's first 40 applicants, five to an entry."""
    persons = {a.person for a in scenario.applications[:40]}
    enqueue(client, [e for e in mixed(scenario) if e.person in persons], per_entry=5)


def test_acknowledged_entries_are_trimmed_from_the_streams(
        redis_server: RedisServer, redis_client: redis.Redis, catalog: Catalog,
        scenario: Scenario) -> None:
    enqueue_forty_persons(redis_client, scenario)
    assert sum(stream_lengths(redis_client).values()) > 16
    run_workers(redis_server, catalog, 2, count=3)
    assert set(stream_lengths(redis_client).values()) == {0}
    groups: Any = redis_client.xinfo_groups(KEYS.shard("0"))  # the empty stream stays
    assert [g["name"] for g in groups] == [b"workers"]


def test_trimming_keeps_every_entry_a_group_has_not_acknowledged(
        redis_server: RedisServer, redis_client: redis.Redis, catalog: Catalog,
        scenario: Scenario) -> None:
    enqueue_forty_persons(redis_client, scenario)
    before = stream_lengths(redis_client)
    for shard in before:  # another reader of the streams, which has read nothing yet
        redis_client.xgroup_create(KEYS.shard(shard), "audit", id="0", mkstream=True)
    workers = run_workers(redis_server, catalog, 1)
    assert workers[0].report.entries == sum(before.values())
    assert stream_lengths(redis_client) == before  # audit acknowledged none of them
    stream = KEYS.shard(max(before, key=before.__getitem__))
    read: Any = redis_client.xreadgroup("audit", "a1", {stream: ">"}, count=4)
    ids = [i for i, _ in read[0][1]]
    redis_client.xack(stream, "audit", ids[0], ids[2])  # the second stays pending
    worker = workers[0]
    assert worker._trim(keys=[stream]) == 1
    assert redis_client.xrange(stream, count=1)[0][0] == ids[1]
    redis_client.xack(stream, "audit", ids[1], ids[3])  # all four acknowledged by both
    assert worker._trim(keys=[stream]) == 3
    assert redis_client.xlen(stream) == before[stream.rsplit(":", 1)[1]] - 4


def test_events_redelivered_after_a_crash_are_counted_by_what_they_did(
        redis_server: RedisServer, redis_client: redis.Redis, catalog: Catalog,
        scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    events = [e for e in mixed(scenario, seed=4) if e.type != "refund"][:400]
    repeated = events[:10]  # a provider delivering these twice: true duplicates
    stream = [*repeated, *repeated, *events[10:]]
    engine = Engine(catalog, MemoryStore())
    expected = Counter(d.applied.status for d in engine.process(stream))
    engine.close()
    assert expected["duplicate"] == len(repeated) and expected["applied"] > 300
    enqueue(redis_client, stream, per_entry=5)
    crashed = make_worker(redis_server, catalog, "crashed", count=10, lease_ms=300)
    crashed.ensure_group()
    crashed.maintain(force=True)
    applied: list[int] = []
    process = crashed.engine.process

    def apply_then_crash(batch: Sequence[AnyEvent]) -> list[Any]:
        applied.append(sum(d.applied.status == "applied" for d in process(batch)))
        raise RuntimeError("crashed after the store applied the batch, before the ack")

    monkeypatch.setattr(crashed.engine, "process", apply_then_crash)
    with pytest.raises(RuntimeError):
        while True:
            crashed.step(block_ms=0)
    assert applied and applied[0] > 0
    survivors = run_workers(redis_server, catalog, 1, lease_ms=300)
    assert survivors[0].report.claimed > 0
    stats = {k.decode(): int(v) for k, v in redis_client.hgetall(KEYS.stats).items()}
    assert stats["events"] == len(stream)
    assert (stats.get("applied", 0), stats.get("duplicate", 0)) == (
        expected["applied"], expected["duplicate"])
    assert survivors[0].report.statuses == expected
    assert not list(redis_client.scan_iter("pe:stream:delivered:*")), "journal left behind"
    crashed.engine.close()


def test_a_shard_whose_group_was_deleted_still_holds_back_a_draw(
        redis_server: RedisServer, redis_client: redis.Redis, catalog: Catalog,
        scenario: Scenario) -> None:
    """Its group is made again from the start of the stream: every entry there comes first."""
    enqueue(redis_client, scenario.applications[:3], per_entry=1)
    worker = Worker(redis_server.client(), Engine(catalog, MemoryStore()), name="w",
                    block_ms=50)
    count = shard_count(redis_client, KEYS)
    shard = next(s for s in KEYS.all_shards(count) if redis_client.xlen(KEYS.shard(s)))
    first = redis_client.xrange(KEYS.shard(shard), "-", "+", count=1)[0][0].decode()
    with contextlib.suppress(redis.ResponseError):
        redis_client.xgroup_destroy(KEYS.shard(shard), KEYS.group)
    assert worker.first_unacked(shard) == tuple(map(int, first.split("-")))

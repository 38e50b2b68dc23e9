"""A per-child grant to a known household, through the engine, on each store.

The engine makes one claim per birth date for a household (several claims of one program for
one event); each store must apply them in order, write a ledger line each and count every one
in its caps, the group total and the budget. The embedded store and Redis must agree to the yen.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from pointengine.catalog.loading import Catalog, load_catalog
from pointengine.decide.engine import Decision, Engine
from pointengine.model.events import event_from_dict
from pointengine.model.ledger import LedgerEntry, ListSink
from pointengine.store.contract import Outcome, Store
from pointengine.store.memory import MemoryStore
from pointengine.store.redis_server import RedisServer
from pointengine.store.redis_store import RedisStore
from tests.redis_fixtures import redis_client, redis_server
from tests.world import RULES

__all__ = ["redis_client", "redis_server"]  # the fixtures this module uses

GRANT = "miyazaki-child-grant"
LIMITED = "paid for the household's children"


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    """An empty store of each kind."""
    if request.param == "memory":
        made: Store = MemoryStore(ListSink())
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        request.getfixturevalue("redis_client")  # flushed before and after the test
        made = RedisStore(server.client())
    yield made
    made.close()


def ledger(store: Store) -> list[LedgerEntry]:
    """The store's ledger lines, in order."""
    if isinstance(store, RedisStore):
        return list(store.ledger())
    assert isinstance(store, MemoryStore) and isinstance(store.sink, ListSink)
    return list(store.sink.entries)


def application(n: int, person: str, children: list[str], household: str | None = "H-1",
                residence: str = "452017") -> dict[str, object]:
    """A phase-2 application listing ``children``' birth dates."""
    extra = {"household": household} if household else {}
    return {"type": "mynapoint_application", "source": "mykey", "id": f"a{n}", "person": person,
            "at": f"2022-02-{n:02d}T10:00:00+09:00", "phase": 2, "provider": "paypay",
            "card_applied_on": "2021-06-01", "residence": residence,
            "children_birth_dates": children, **extra}


def grants(decision: Decision) -> list[Outcome]:
    """The outcomes of the child grant's claims for one event."""
    return [o for o in decision.applied.outcomes if o.program == GRANT]


def test_two_parents_are_paid_once_per_child_on_each_store(catalog: Catalog,
                                                           store: Store) -> None:
    engine = Engine(catalog, store)
    lines = [
        application(1, "MK-MOM", ["2020-06-01"]),
        application(2, "MK-DAD", ["2021-02-02"]),  # another child: paid
        application(3, "MK-DAD", ["2020-06-01"]),  # the mother's child: nothing
        application(4, "MK-DAD", ["2021-03-03", "2020-06-01", "2020-06-01", "2021-02-02"]),
        application(5, "MK-AUNT", ["2020-06-01"], household="H-2"),
        application(6, "MK-UNCLE", ["2020-06-01"], household=None),
        application(7, "MK-UNCLE", ["2020-06-01", "2021-02-02"], household=None),
    ]
    # one batch for the first three, then one event a batch: both paths through the store
    decisions = engine.process([event_from_dict(line) for line in lines[:3]])
    for line in lines[3:]:
        decisions += engine.process([event_from_dict(line)])
    engine.close()

    assert [grants(d) for d in decisions] == [
        [Outcome(GRANT, 1, 30_000, 30_000)],
        [Outcome(GRANT, 1, 30_000, 30_000)],
        [Outcome(GRANT, 1, 30_000, 0, LIMITED)],
        # in date order: the twin the mother's 2020-06-01 left, 2021-02-02 paid, a new child
        [Outcome(GRANT, 1, 60_000, 30_000, LIMITED), Outcome(GRANT, 1, 30_000, 0, LIMITED),
         Outcome(GRANT, 1, 30_000, 30_000)],
        [Outcome(GRANT, 1, 30_000, 30_000)],  # another household
        [Outcome(GRANT, 1, 30_000, 30_000)],  # no household: the person's own cap
        [Outcome(GRANT, 1, 60_000, 30_000, "person cap")],
    ]
    assert [(e.seq, e.event, e.person, e.points) for e in ledger(store)
            if e.program == GRANT] == [
        (1, "mykey/a1", "MK-MOM", 30_000), (2, "mykey/a2", "MK-DAD", 30_000),
        (3, "mykey/a4", "MK-DAD", 30_000), (4, "mykey/a4", "MK-DAD", 30_000),
        (5, "mykey/a5", "MK-AUNT", 30_000), (6, "mykey/a6", "MK-UNCLE", 30_000),
        (7, "mykey/a7", "MK-UNCLE", 30_000)]
    assert store.totals() == {(GRANT, "paypay"): 210_000}
    assert store.counter(f"bu|{GRANT}") == 210_000
    assert {day: store.counter(f"pp|{GRANT}|household:H-1|{day}")
            for day in ("2020-06-01", "2021-02-02", "2021-03-03")} == {
        "2020-06-01": 60_000, "2021-02-02": 30_000, "2021-03-03": 30_000}
    assert store.counter(f"pp|{GRANT}|household:H-2|2020-06-01") == 30_000
    assert store.counter(f"pp|{GRANT}|MK-UNCLE") == 60_000
    assert store.counter(f"pp|{GRANT}|MK-DAD") == 0  # a household's parent: no own cap


def test_the_budget_counts_each_claim_of_one_application_in_turn(store: Store,
                                                                  tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    grant = rules / "452017-miyazaki" / "child-grant.yaml"
    grant.write_text(grant.read_text(encoding="utf-8").replace(
        "budget: {yen: 120000000}", "budget: {yen: 100000}"), encoding="utf-8")
    engine = Engine(load_catalog(rules), store)
    first = engine.process([event_from_dict(application(1, "MK-MOM", ["2020-06-01"]))])
    second = engine.process([event_from_dict(application(
        2, "MK-DAD", ["2021-03-03", "2020-06-01", "2020-06-01", "2021-02-02"]))])
    engine.close()
    assert grants(first[0]) == [Outcome(GRANT, 1, 30_000, 30_000)]
    assert grants(second[0]) == [
        Outcome(GRANT, 1, 60_000, 30_000, LIMITED),
        Outcome(GRANT, 1, 30_000, 30_000),
        Outcome(GRANT, 1, 30_000, 10_000, "program budget")]
    assert store.counter(f"bu|{GRANT}") == 100_000
    assert store.counter(f"pp|{GRANT}|household:H-1|2021-03-03") == 10_000
    assert [e.points for e in ledger(store) if e.program == GRANT] == [
        30_000, 30_000, 30_000, 10_000]

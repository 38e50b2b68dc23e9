"""Invariants over random streams: caps hold, the ledger adds up, replaying changes nothing."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pointengine.catalog.loading import Catalog
from pointengine.model.events import AnyEvent
from tests.world import World

PERSONS = ("MK-A", "MK-B", "MK-C")
PROVIDERS = ("paypay", "waon", "rakuten-pay")

step = st.one_of(
    st.tuples(st.just("purchase"), st.sampled_from(PERSONS), st.integers(1, 30_000),
              st.sampled_from(PROVIDERS)),
    st.tuples(st.just("charge"), st.sampled_from(PERSONS), st.integers(1, 30_000),
              st.sampled_from(PROVIDERS)),
    st.tuples(st.just("refund"), st.sampled_from(PERSONS), st.integers(1, 30_000),
              st.integers(0, 40)),
    st.tuples(st.sampled_from(["health_insurance_registration",
                               "public_funds_account_registration"]),
              st.sampled_from(PERSONS), st.just(0), st.just(0)),
)


def stream(world: World, steps: list[tuple[str, str, int, Any]]) -> list[AnyEvent]:
    """Applications for every person, then the steps, each a day apart within phase 2."""
    events = [world.event("mynapoint_application", p, "2022-01-05", phase=2, provider=prov,
                          card_applied_on="2021-12-01", residence="342092")
              for p, prov in zip(PERSONS, PROVIDERS, strict=True)]
    transactions: list[AnyEvent] = []
    for n, (kind, person, amount, extra) in enumerate(steps):
        at = f"2022-{2 + n // 28:02d}-{1 + n % 28:02d}"
        if kind in ("purchase", "charge"):
            event = world.event(kind, person, at, provider=extra, amount=amount, store=f"S{n}",
                                store_municipality="342092")
            transactions.append(event)
        elif kind == "refund":
            if not transactions:
                continue
            target = transactions[extra % len(transactions)]
            event = world.event("refund", target.person, at, provider=target.provider,
                                transaction=target.id, amount=amount)
        else:
            event = world.event(kind, person, at)
        events.append(event)
    return events


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, max_size=40), st.integers(1, 7))
def test_caps_hold_and_the_ledger_adds_up(catalog: Catalog,
                                          steps: list[tuple[str, str, int, Any]],
                                          batch: int) -> None:
    world = World(catalog)
    try:
        events = stream(world, steps)
        decisions = [d for i in range(0, len(events), batch)
                     for d in world.run(*events[i:i + batch])]
        net: Counter[tuple[str, str]] = Counter()
        for entry in world.sink.entries:
            net[(entry.person, entry.program)] += entry.points
        for (_person, program), points in net.items():
            assert points >= 0
            if program == "national-phase2-card":
                assert points <= 5_000
            if program in ("national-phase2-health-insurance",
                           "national-phase2-public-funds-account"):
                assert points in (0, 7_500)
            if program == "miyoshi-premium":
                assert points <= 6_000
        for person in PERSONS:
            national = sum(p for (who, prog), p in net.items()
                           if who == person and prog.startswith("national-phase2"))
            assert national <= 20_000

        awarded = sum(o.awarded for d in decisions for o in d.applied.outcomes)
        reversed_ = sum(v for d in decisions for v in d.applied.reversed.values())
        ledger_total = sum(e.points for e in world.sink.entries)
        assert ledger_total == awarded - reversed_
        assert sum(world.store.totals().values()) == ledger_total

        before = list(world.sink.entries)
        again = world.run(*events)
        # Applied events come back as duplicates; rejected ones are rejected again.
        assert [d.applied.status for d in again] == [
            "duplicate" if d.applied.status == "applied" else d.applied.status
            for d in decisions]
        assert world.sink.entries == before
    finally:
        world.engine.close()


CHILD_GRANT = "miyazaki-child-grant"
BIRTHS = ("2020-06-01", "2020-09-09", "2021-02-02", "2021-04-02")  # the last is out of range

application = st.tuples(st.sampled_from(PERSONS), st.sampled_from(["H-1", "H-2", None]),
                        st.lists(st.sampled_from(BIRTHS), max_size=4))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(application, max_size=12), st.integers(1, 5))
def test_a_household_is_paid_once_for_each_child(catalog: Catalog,
                                                 steps: list[tuple[str, str | None, list[str]]],
                                                 batch: int) -> None:
    """Whoever of a household applies, and in whatever order, the household is paid for as many
    children born on a day as the most any of its applications listed; a person with no known
    household, for as many children as the most their own applications listed."""
    world = World(catalog)
    try:
        events: list[AnyEvent] = []
        household: dict[str, str] = {}
        most: Counter[tuple[str, str]] = Counter()  # (household or person, day) → children
        for n, (person, named, children) in enumerate(steps):
            fields: dict[str, Any] = {"household": named} if named else {}
            events.append(world.event("mynapoint_application", person,
                                      f"2022-02-{1 + n:02d}", phase=2, provider="paypay",
                                      card_applied_on="2021-12-01", residence="452017",
                                      children_birth_dates=children, **fields))
            if named:
                household[person] = named
            paid = [c for c in children if c != "2021-04-02"]
            if person in household:
                for day in set(paid):
                    key = (f"household:{household[person]}", day)
                    most[key] = max(most[key], paid.count(day))
            else:
                most[(person, "")] = max(most[(person, "")], len(paid))
        for i in range(0, len(events), batch):
            world.run(*events[i:i + batch])
        for (who, day), count in most.items():
            cap = f"pp|{CHILD_GRANT}|{who}|{day}" if day else f"pp|{CHILD_GRANT}|{who}"
            assert world.store.counter(cap) == 30_000 * count
        assert sum(e.points for e in world.sink.entries if e.program == CHILD_GRANT) \
            == 30_000 * sum(most.values())
    finally:
        world.engine.close()

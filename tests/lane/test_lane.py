"""The fast lane gives exactly the Python path's results: ledger, rejects, report and state.

Every stream here is replayed twice on a fresh embedded store: through the lane (what
``replay`` does on the embedded store) and through the Python path alone (what it does when a
caller asks for every decision). Both must write the same ledger bytes, the same rejects and
leave the same state behind.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pointengine.catalog.loading import Catalog, load_catalog
from pointengine.decide.engine import Engine
from pointengine.model.ledger import FileSink
from pointengine.replay.run import ReplayReport, replay
from pointengine.store.memory import MemoryStore
from pointengine.synth.generate import generate
from tests.world import RULES

NATIONAL_ONLY = RULES / "national"


@dataclass
class Outcome:
    """What one replay left behind."""

    report: ReplayReport
    ledger: bytes
    rejects: bytes
    state: dict[str, Any]


def _state(store: MemoryStore) -> dict[str, Any]:
    return {
        "counters": dict(store._counters), "members": set(store._members),
        "totals": dict(store._totals), "tallies": dict(store._tallies), "seq": store._seq,
        "persons": dict(store._persons),
        "transactions": {k: (t.amount, t.refunded, t.awards, t.payer, t.reversed)
                         for k, t in store._transactions.items()},
        "paid": store._paid.__reduce__()[1], "applied": store._applied.__reduce__()[1],
    }


def replay_once(catalog: Catalog, events: Path, out: Path, *, lane: bool) -> Outcome:
    """Replay ``events`` on a fresh store, through the lane or through the Python path."""
    out.mkdir(parents=True, exist_ok=True)
    sink = FileSink(out / "ledger.jsonl")
    store = MemoryStore(sink)
    engine = Engine(catalog, store)
    try:
        report = replay(events, engine, rejects=out / "rejects.jsonl", batch=97,
                        on_decisions=None if lane else (lambda decisions: None))
    finally:
        sink.close()
        engine.close()
    return Outcome(report, (out / "ledger.jsonl").read_bytes(),
                   (out / "rejects.jsonl").read_bytes(), _state(store))


def assert_same(catalog: Catalog, events: Path, tmp_path: Path) -> Outcome:
    """Replay both ways, compare everything, and return the lane's outcome."""
    fast = replay_once(catalog, events, tmp_path / "lane", lane=True)
    slow = replay_once(catalog, events, tmp_path / "python", lane=False)
    assert fast.ledger == slow.ledger
    assert fast.rejects == slow.rejects
    for name in ("lines", "applied", "duplicates", "rejected", "reasons", "totals"):
        assert getattr(fast.report, name) == getattr(slow.report, name), name
    for name, value in slow.state.items():
        assert fast.state[name] == value, name
    assert slow.report.lane_lines == 0
    return fast


@pytest.fixture(scope="module")
def national(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    root = tmp_path_factory.mktemp("national")
    (root / "providers.yaml").write_bytes((RULES / "providers.yaml").read_bytes())
    (root / "national").mkdir()
    for path in NATIONAL_ONLY.glob("*.yaml"):
        (root / "national" / path.name).write_bytes(path.read_bytes())
    return load_catalog(root)


@pytest.mark.parametrize("mixes", [frozenset(), frozenset({"duplicates", "malformed",
                                                            "out_of_order"})])
def test_a_generated_stream_gives_the_same_results_both_ways(
        national: Catalog, tmp_path: Path, mixes: frozenset[str]) -> None:
    events = tmp_path / "events.jsonl"
    generate(events, persons=300, events=6_000, seed=11, adversarial=mixes)
    fast = assert_same(national, events, tmp_path)
    assert fast.report.lane_lines > 0.8 * fast.report.lines
    assert fast.ledger.count(b'"kind":"reversal"') > 0


def test_every_shipped_program_gives_the_same_results_both_ways(
        catalog: Catalog, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    generate(events, persons=600, events=8_000, seed=12,
             adversarial=frozenset({"duplicates", "malformed"}))
    fast = assert_same(catalog, events, tmp_path)
    assert fast.report.lane_lines > 0.5 * fast.report.lines


# Hand-written streams: the national rules' exact yen, through the lane.

def _line(**fields: Any) -> bytes:
    return orjson.dumps(fields)


def _apply(person: str = "MK-A", provider: str = "paypay", at: str = "2022-01-10",
           **fields: Any) -> bytes:
    return _line(type="mynapoint_application", source="mykey", id=f"a-{person}-{at}",
                 person=person, at=f"{at}T12:00:00+09:00", phase=2, provider=provider,
                 card_applied_on="2021-12-01", residence="131016", **fields)


def _buy(n: int, amount: int, person: str = "MK-A", provider: str = "paypay",
         day: str = "2022-02-01", kind: str = "purchase") -> bytes:
    where = {"store": "ST1", "store_municipality": "131016"} if kind == "purchase" else {}
    return _line(type=kind, source=provider, id=f"t{n}", person=person,
                 at=f"{day}T12:00:00+09:00", provider=provider, amount=amount, **where)


def _refund(n: int, of: int, amount: int, person: str = "MK-A",
            provider: str = "paypay") -> bytes:
    return _line(type="refund", source=provider, id=f"r{n}", person=person,
                 at="2022-02-03T12:00:00+09:00", provider=provider, transaction=f"t{of}",
                 amount=amount)


def _points(outcome: Outcome) -> list[tuple[str, int]]:
    return [(e["event"], e["points"]) for e in map(orjson.loads, outcome.ledger.splitlines())]


def run_lines(national: Catalog, tmp_path: Path, *lines: bytes) -> Outcome:
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")
    return assert_same(national, events, tmp_path)


def test_the_cap_crossing_purchase_earns_the_remainder_in_the_lane(
        national: Catalog, tmp_path: Path) -> None:
    out = run_lines(national, tmp_path, _apply(), _buy(1, 19_000), _buy(2, 2_000),
                    _buy(3, 999), _buy(4, 10_000, kind="charge"))
    assert _points(out) == [("paypay/t1", 4_750), ("paypay/t2", 250)]
    assert out.report.lane_lines == 5


def test_a_refund_after_the_cap_frees_exactly_its_share_in_the_lane(
        national: Catalog, tmp_path: Path) -> None:
    out = run_lines(national, tmp_path, _apply(), _buy(1, 19_000), _buy(2, 2_000),
                    _refund(1, 1, 4_000), _buy(3, 4_000), _refund(2, 3, 4_000),
                    _refund(3, 3, 1))
    assert _points(out) == [("paypay/t1", 4_750), ("paypay/t2", 250), ("paypay/r1", -1_000),
                            ("paypay/t3", 1_000), ("paypay/r2", -1_000)]
    assert out.report.reasons == {"refund_exceeds_payment": 1}


def test_refunds_the_lane_refuses(national: Catalog, tmp_path: Path) -> None:
    out = run_lines(national, tmp_path, _apply(), _buy(1, 1_000),
                    _refund(1, 9, 100),                        # no such transaction
                    _refund(2, 1, 100, person="MK-B"),         # another person's
                    _refund(3, 1, 100, provider="au-pay"),     # with another provider
                    _refund(4, 1, 1_001),                      # more than was paid
                    _refund(5, 1, 1_000), _refund(5, 1, 1_000))  # then a duplicate
    assert out.report.reasons == {"unknown_transaction": 3, "refund_exceeds_payment": 1}
    assert out.report.duplicates == 1
    assert _points(out) == [("paypay/t1", 250), ("paypay/r5", -250)]


def test_unknown_providers_and_persons_in_the_lane(national: Catalog, tmp_path: Path) -> None:
    out = run_lines(national, tmp_path, _apply(), _buy(1, 1_000, provider="nopay"),
                    _buy(2, 1_000, person="MK-NOBODY"), _refund(1, 2, 500, person="MK-NOBODY"))
    assert out.report.reasons == {"unknown_provider": 1}
    assert out.report.applied == 3
    assert _points(out) == []


def test_a_new_version_decides_events_from_its_effective_time(
        national: Catalog, tmp_path: Path) -> None:
    # The card deadline moved from 2022-09-30 to 2022-12-31 (version 2, from 2022-10-01).
    late = _line(type="mynapoint_application", source="mykey", id="a-late", person="MK-L",
                 at="2022-09-20T12:00:00+09:00", phase=2, provider="paypay",
                 card_applied_on="2022-11-15", residence="131016")
    out = run_lines(national, tmp_path, late,
                    _buy(1, 4_000, person="MK-L", day="2022-09-25"),
                    _buy(2, 4_000, person="MK-L", day="2022-10-02"))
    ledger = [orjson.loads(line) for line in out.ledger.splitlines()]
    assert [(e["event"], e["version"], e["points"]) for e in ledger] == [("paypay/t2", 2, 1_000)]


def test_a_person_the_python_path_changed_is_read_again_by_the_lane(
        catalog: Catalog, tmp_path: Path) -> None:
    # The move takes the Python path; the purchases before and after it, the lane. The lane
    # keeps a digest of each person, and must see that the store wrote this one meanwhile.
    move = _line(type="residence_change", source="ministry", id="m1", person="MK-A",
                 at="2022-02-02T00:00:00+09:00", residence="342092")
    in_miyoshi = {"store": "ST9", "store_municipality": "342092"}
    buy = [_line(type="purchase", source="paypay", id=f"t{n}", person="MK-A",
                 at=f"2022-02-0{n}T12:00:00+09:00", provider="paypay", amount=1_000,
                 **in_miyoshi) for n in (1, 3)]
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join([_apply(), buy[0], move, buy[1]]) + b"\n")
    out = assert_same(catalog, events, tmp_path)
    assert out.report.lane_lines == 3
    ledger = [orjson.loads(line) for line in out.ledger.splitlines()]
    assert [(e["event"], e["program"], e["points"]) for e in ledger] == [
        ("paypay/t1", "national-phase2-card", 250),
        ("paypay/t3", "national-phase2-card", 250),
        ("paypay/t3", "miyoshi-premium", 300)]


# Property: any stream of these events, in any order, gives the same results both ways.

PERSONS = ("MK-A", "MK-B", "MK-C")
MALFORMED = (b'{"type":"purchase","amount":1.5}', b'{"type":"refund"', b'[]',
             b'{"type":"health_insurance_registration","source":"s","id":"x","person":"MK-A",'
             b'"at":"2022-13-01T00:00:00+09:00"}')
PROVIDERS = ("paypay", "waon", "au-pay", "nopay")


@st.composite
def _streams(draw: st.DrawFn) -> list[bytes]:
    lines: list[bytes] = []
    for n in range(draw(st.integers(1, 40))):
        person = draw(st.sampled_from(PERSONS))
        provider = draw(st.sampled_from(PROVIDERS))
        day = dt.date(2021, 11, 1) + dt.timedelta(days=draw(st.integers(0, 500)))
        at = f"{day.isoformat()}T{draw(st.integers(0, 23)):02d}:00:00+09:00"
        kind = draw(st.sampled_from(("purchase", "purchase", "charge", "refund", "apply",
                                     "health", "repeat", "malformed")))
        if kind == "repeat" and lines:
            lines.append(draw(st.sampled_from(lines)))
        elif kind in ("repeat", "malformed"):
            lines.append(draw(st.sampled_from(MALFORMED)))
        elif kind == "apply":
            lines.append(_line(type="mynapoint_application", source="mykey", id=f"a{n}",
                               person=person, at=at, phase=draw(st.sampled_from((1, 2))),
                               provider=provider, card_applied_on="2021-12-01",
                               residence=draw(st.sampled_from(("131016", "192015")))))
        elif kind == "health":
            lines.append(_line(type="health_insurance_registration", source="mykey",
                               id=f"h{n}", person=person, at=at))
        elif kind == "refund":
            lines.append(_line(type="refund", source=provider, id=f"r{n}", person=person,
                               at=at, provider=provider,
                               transaction=f"t{draw(st.integers(0, max(n, 1)))}",
                               amount=draw(st.integers(1, 30_000))))
        else:
            where = ({"store": "ST1", "store_municipality": "131016"}
                     if kind == "purchase" else {})
            lines.append(_line(type=kind, source=provider, id=f"t{n}", person=person, at=at,
                               provider=provider, amount=draw(st.integers(1, 30_000)),
                               **where))
    return lines


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=_streams())
def test_any_stream_gives_the_same_results_both_ways(
        national: Catalog, tmp_path_factory: pytest.TempPathFactory, lines: list[bytes]) -> None:
    tmp_path = tmp_path_factory.mktemp("prop")
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")
    assert_same(national, events, tmp_path)


def test_the_lane_makes_persons_and_enrolments_as_their_constructors_do(
        national: Catalog, tmp_path: Path) -> None:
    from pointengine.model.events import parse_event
    from pointengine.model.persons import Enrolment

    line = _line(type="mynapoint_application", source="mykey", id="a1", person="MK-Z",
                 at="2022-03-31T23:30:00-02:00", phase=2, provider="paypay",
                 card_applied_on="2021-12-01", residence="131016", birth_date="1980-02-29",
                 children_birth_dates=["2010-01-01", "2012-05-05"], household="H-1",
                 applied_in_phase1=True)
    out = run_lines(national, tmp_path, line)
    person = out.state["persons"]["MK-Z"]
    event = parse_event(line)
    made = person.enrolments[2]
    expected = Enrolment("paypay", event.at, event.card_applied_on)  # type: ignore[union-attr]
    assert (made.provider, made.applied_at, made.card_applied_on, made.applied_day,
            made.card_day) == (expected.provider, expected.applied_at,
                               expected.card_applied_on, expected.applied_day,
                               expected.card_day)
    assert made.applied_day == 20220401  # 23:30 at UTC-2 is the next morning in JST
    assert out.report.lane_lines == 1

"""The load generator, the independent oracle and the benchmark, on small streams."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import orjson
import pytest

from load.bench import main as bench_main
from load.oracle import ALL_PROGRAMS, Oracle, compare, expected_points
from pointengine.model.events import LotteryDraw, MynapointApplication, Participation, parse_event
from pointengine.store.redis_server import RedisServer
from pointengine.store.redis_store import RedisStore
from pointengine.synth.generate import OFFICIAL, Activities, generate
from tests.redis_fixtures import redis_server

__all__ = ["redis_server"]  # the fixture this module uses


def _line(**fields: object) -> bytes:
    return orjson.dumps(fields)


def _apply(person: str, provider: str, at: str = "2022-02-01T10:00:00+09:00") -> bytes:
    return _line(type="mynapoint_application", source="mykey", id=f"a-{person}", person=person,
                 at=at, phase=2, provider=provider, card_applied_on="2021-06-01",
                 residence="131016")


def _buy(n: int, person: str, provider: str, amount: int, kind: str = "purchase") -> bytes:
    extra = {"store": "ST131016-1", "store_municipality": "131016"} if kind == "purchase" else {}
    return _line(type=kind, source=provider, id=f"t{n}", person=person,
                 at=f"2022-03-{n:02d}T10:00:00+09:00", provider=provider, amount=amount, **extra)


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("load") / "events.jsonl"
    generate(path, persons=400, events=6_000, seed=7)
    return path


def test_the_generator_is_deterministic(tmp_path: Path) -> None:
    a = generate(tmp_path / "a.jsonl", persons=200, events=2_000, seed=3)
    b = generate(tmp_path / "b.jsonl", persons=200, events=2_000, seed=3)
    assert a.sha256 == b.sha256
    assert a.lines == 2_000


def test_every_generated_line_is_a_valid_canonical_event(stream: Path) -> None:
    with stream.open("rb") as handle:
        events = [parse_event(line) for line in handle]
    assert {e.type for e in events} >= {"mynapoint_application", "purchase", "charge", "refund"}


def test_the_adversarial_mixes_add_what_they_announce(tmp_path: Path) -> None:
    report = generate(tmp_path / "bad.jsonl", persons=300, events=5_000, seed=5,
                      adversarial={"duplicates", "malformed", "out_of_order"})
    assert report.duplicates > 0 and report.malformed_lines > 0
    assert report.lines == 5_000 + report.duplicates


def test_participations_come_from_active_residents_after_their_application(
        tmp_path: Path) -> None:
    plain = generate(tmp_path / "plain.jsonl", persons=600, events=8_000, seed=4,
                     focus=("192015",))
    draw_at = dt.datetime(2022, 12, 1, 20, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    activities = Activities(("192015",), ("health-walk", "health-checkup"), (10, 50),
                            draws=(("kumamoto-health-lottery", draw_at),))
    runs = [generate(tmp_path / f"{n}.jsonl", persons=600, events=8_000, seed=4,
                     focus=("192015",), activities=activities) for n in ("a", "b")]
    assert runs[0].sha256 == runs[1].sha256 != plain.sha256
    assert runs[0].lines == 8_000 + 1  # the draw comes on top of the events asked for
    events = [parse_event(line) for line in (tmp_path / "a.jsonl").read_bytes().splitlines()]
    applied = {e.person: e.at for e in events
               if isinstance(e, MynapointApplication) and e.phase == 2}
    taking_part = [e for e in events if isinstance(e, Participation)]
    assert len(taking_part) > 100
    for event in taking_part:
        assert event.municipality == "192015"
        assert event.activity in activities.names and event.health_points in (10, 50)
        assert applied[event.person] <= event.at
    draws = [(i, e) for i, e in enumerate(events) if isinstance(e, LotteryDraw)]
    assert [(e.program, e.at, e.person) for _, e in draws] == [
        ("kumamoto-health-lottery", draw_at, OFFICIAL)]
    index = draws[0][0]
    assert events[index - 1].at <= draw_at <= events[index + 1].at


def test_the_oracle_pays_a_households_children_once_and_refunds_only_the_payer() -> None:
    oracle = Oracle(ALL_PROGRAMS)
    for n, person in enumerate(("MKM", "MKD")):
        oracle.feed(_line(type="mynapoint_application", source="mykey", id=f"a{n}",
                          person=person, at="2022-02-01T10:00:00+09:00", phase=2,
                          provider="paypay", card_applied_on="2021-06-01", residence="452017",
                          household="H-1", children_birth_dates=["2020-06-01"]))
    oracle.feed(_buy(3, "MKM", "paypay", 4_000))
    for n, person in enumerate(("MKD", "MKM")):
        oracle.feed(_line(type="refund", source="paypay", id=f"r{n}", person=person,
                          at="2022-03-20T10:00:00+09:00", provider="paypay", transaction="t3",
                          amount=2_000))
    expected = oracle.expected()
    assert expected["MKM"]["miyazaki-child-grant"] == 30_000
    assert "miyazaki-child-grant" not in expected.get("MKD", {})
    assert expected["MKM"]["national-phase2-card"] == 500  # only MKM's own refund took back


def _miyazaki(n: int, person: str, children: list[str], household: str | None = "H-1",
              day: str = "2022-02-01") -> bytes:
    extra = {"household": household} if household else {}
    return _line(type="mynapoint_application", source="mykey", id=f"m{n}", person=person,
                 at=f"{day}T10:00:00+09:00", phase=2, provider="paypay",
                 card_applied_on="2021-06-01", residence="452017",
                 children_birth_dates=children, **extra)


def _child_grants(*lines: bytes) -> dict[str, int]:
    oracle = Oracle(ALL_PROGRAMS)
    for line in lines:
        oracle.feed(line)
    return {person: programs.get("miyazaki-child-grant", 0)
            for person, programs in oracle.expected().items()}


def test_the_oracle_pays_each_child_of_a_household_once_by_birth_date() -> None:
    # different children: both parents paid
    assert _child_grants(_miyazaki(1, "MKM", ["2020-06-01"]),
                         _miyazaki(2, "MKD", ["2021-02-02"])) == {"MKM": 30_000, "MKD": 30_000}
    # the same child: paid once
    assert _child_grants(_miyazaki(1, "MKM", ["2020-06-01"]),
                         _miyazaki(2, "MKD", ["2020-06-01"])) == {"MKM": 30_000}
    # twins, then one of them, then triplets of that day
    twins = ["2020-09-09", "2020-09-09"]
    assert _child_grants(_miyazaki(1, "MKM", twins), _miyazaki(2, "MKD", ["2020-09-09"])) \
        == {"MKM": 60_000}
    assert _child_grants(_miyazaki(1, "MKM", twins), _miyazaki(2, "MKD", ["2020-09-09"] * 3)) \
        == {"MKM": 60_000, "MKD": 30_000}
    # a third child the second parent adds; a child born out of the range is never paid
    assert _child_grants(_miyazaki(1, "MKM", ["2020-06-01", "2021-02-02"]),
                         _miyazaki(2, "MKD", ["2021-03-03", "2020-06-01", "2021-02-02",
                                              "2021-04-02"])) == {"MKM": 60_000, "MKD": 30_000}
    # no household: each parent is paid, and a second application only for new children
    assert _child_grants(_miyazaki(1, "MKM", ["2020-06-01"], None),
                         _miyazaki(2, "MKD", ["2020-06-01"], None),
                         _miyazaki(3, "MKD", ["2020-06-01", "2021-02-02"], None)) \
        == {"MKM": 30_000, "MKD": 60_000}
    # the household an earlier application named stays the person's
    assert _child_grants(_miyazaki(1, "MKM", ["2020-06-01"]), _miyazaki(2, "MKD", []),
                         _miyazaki(3, "MKD", ["2020-06-01"], None)) == {"MKM": 30_000}


def _household_stream(seed: int, applications: int) -> list[bytes]:
    """Miyazaki applications of a few families: parents naming their household or not, lists
    of birth dates with twins, repeats, and children born out of the grant's range."""
    rng = random.Random(seed)
    days = ["2020-04-27", "2020-04-28", "2020-06-01", "2020-09-09", "2021-02-02",
            "2021-04-01", "2021-04-02"]
    lines = []
    for n in range(applications):
        family = rng.randrange(12)
        person = f"MKP{family}-{rng.randrange(3)}"
        household = rng.choice([f"H-{family}", f"H-{family}", f"H-{family}", None,
                                f"H-{(family + 1) % 12}"])
        children = [rng.choice(days) for _ in range(rng.randrange(5))]
        lines.append(_miyazaki(n, person, children, household,
                               day=f"2022-{1 + n // 28 % 12:02d}-{1 + n % 28:02d}"))
    return lines


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_engine_matches_the_oracle_on_households(tmp_path: Path, seed: int) -> None:
    from pointengine.catalog.loading import load_catalog
    from pointengine.decide.engine import Engine
    from pointengine.model.ledger import FileSink
    from pointengine.replay.run import replay
    from pointengine.store.memory import MemoryStore

    stream = tmp_path / "events.jsonl"
    stream.write_bytes(b"\n".join(_household_stream(seed, 300)) + b"\n")
    ledger = tmp_path / "ledger.jsonl"
    sink = FileSink(ledger)
    engine = Engine(load_catalog(Path(__file__).resolve().parents[2] / "rules"),
                    MemoryStore(sink))
    replay(stream, engine)
    sink.close()
    engine.close()
    expected = expected_points(stream, ALL_PROGRAMS)
    paid = sum(p.get("miyazaki-child-grant", 0) for p in expected.values())
    assert paid > 30_000 * 20  # many children were paid for
    known = {p.id for p in ALL_PROGRAMS}
    assert [p for p in compare(expected, ledger) if p.split(" ")[1].rstrip(":") in known] == []


def test_the_oracle_counts_only_the_providers_basis() -> None:
    oracle = Oracle()
    for line in (_apply("MKA1", "paypay"), _buy(1, "MKA1", "paypay", 4_000),
                 _buy(2, "MKA1", "paypay", 4_000, kind="charge")):
        oracle.feed(line)
    assert oracle.expected() == {"MKA1": {"national-phase2-card": 1_000}}


def test_the_oracle_clips_the_crossing_transaction_and_refunds_free_room() -> None:
    oracle = Oracle()
    for line in (_apply("MKB1", "rakuten-pay"), _buy(1, "MKB1", "rakuten-pay", 19_000),
                 _buy(2, "MKB1", "rakuten-pay", 2_000)):
        oracle.feed(line)
    assert oracle.expected()["MKB1"]["national-phase2-card"] == 5_000
    oracle.feed(_line(type="refund", source="rakuten-pay", id="r1", person="MKB1",
                      at="2022-03-05T10:00:00+09:00", provider="rakuten-pay", transaction="t1",
                      amount=19_000))
    assert oracle.expected()["MKB1"]["national-phase2-card"] == 250


def test_the_engine_ledger_matches_the_oracle(stream: Path, tmp_path: Path) -> None:
    code = bench_main(["--persons", "400", "--events", "6000", "--seed", "7", "--check",
                       "--cache", str(tmp_path), "--post-events", "500"])
    assert code == 0
    assert compare(expected_points(stream), tmp_path / "ledger.jsonl") == []


def test_a_difference_is_reported(stream: Path, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_bytes(b"")
    problems = compare(expected_points(stream), ledger)
    assert problems and all("expected" in p for p in problems)


def test_the_engine_matches_the_oracle_on_municipal_programs(tmp_path: Path) -> None:
    from load.oracle import ALL_PROGRAMS
    from pointengine.catalog.loading import load_catalog
    from pointengine.decide.engine import Engine
    from pointengine.model.ledger import FileSink
    from pointengine.replay.run import replay
    from pointengine.store.memory import MemoryStore

    root = Path(__file__).resolve().parents[2]
    lines = [
        _line(type="mynapoint_application", source="mykey", id="a1", person="MKM1",
              at="2022-03-01T10:00:00+09:00", phase=2, provider="paypay",
              card_applied_on="2021-06-01", residence="452017",
              children_birth_dates=["2020-05-01", "2019-01-01", "2021-04-01"]),
        _line(type="mynapoint_application", source="mykey", id="a2", person="MKM2",
              at="2022-03-01T10:00:00+09:00", phase=2, provider="paypay",
              card_applied_on="2021-06-01", residence="342092"),
        *(_line(type="purchase", source="paypay", id=f"p{n}", person="MKM2",
                at=f"2022-04-{n:02d}T10:00:00+09:00", provider="paypay", amount=9_000,
                store=f"ST342092-{n}", store_municipality="342092") for n in range(1, 4)),
        _line(type="refund", source="paypay", id="r1", person="MKM2",
              at="2022-04-09T10:00:00+09:00", provider="paypay", transaction="p3", amount=4_500),
        _line(type="residence_change", source="juki-net", id="m1", person="MKM2",
              at="2022-05-01T10:00:00+09:00", residence="131016"),
        _line(type="purchase", source="paypay", id="p9", person="MKM2",
              at="2022-05-02T10:00:00+09:00", provider="paypay", amount=9_000,
              store="ST342092-9", store_municipality="342092"),
    ]
    stream = tmp_path / "events.jsonl"
    stream.write_bytes(b"\n".join(lines) + b"\n")
    ledger = tmp_path / "ledger.jsonl"
    sink = FileSink(ledger)
    engine = Engine(load_catalog(root / "rules"), MemoryStore(sink))
    replay(stream, engine)
    sink.close()
    engine.close()
    expected = expected_points(stream, ALL_PROGRAMS)
    assert expected["MKM1"]["miyazaki-child-grant"] == 60_000
    # the third purchase crosses the 6,000 cap (600), half of it is refunded (-300); after the
    # move away the fourth earns nothing
    assert expected["MKM2"]["miyoshi-premium"] == 2_700 + 2_700 + 600 - 300
    known = {p.id for p in ALL_PROGRAMS}
    assert [p for p in compare(expected, ledger) if p.split(" ")[1].rstrip(":") in known] == []


def test_the_oracle_and_the_engine_agree_when_budgets_and_allocations_run_out(
        tmp_path: Path) -> None:
    import dataclasses
    import shutil

    from load.oracle import ALL_PROGRAMS
    from pointengine.catalog.loading import load_catalog
    from pointengine.decide.engine import Engine
    from pointengine.model.ledger import FileSink
    from pointengine.replay.run import replay
    from pointengine.store.memory import MemoryStore

    root = Path(__file__).resolve().parents[2]
    rules = tmp_path / "rules"
    shutil.copytree(root / "rules", rules)
    miyoshi = rules / "342092-miyoshi" / "premium.yaml"
    miyoshi.write_text(miyoshi.read_text(encoding="utf-8").replace(
        "budget: {yen: 300000000}", "budget: {yen: 40000}"), encoding="utf-8")
    card = rules / "national" / "phase2-card.yaml"
    card.write_text(card.read_text(encoding="utf-8").replace(
        "budget: {persons: 69500000}", "budget: {persons: 150}"), encoding="utf-8")
    tight = {"miyoshi-premium": {"budget": 40_000}, "national-phase2-card": {"persons": 150}}
    programs = tuple(dataclasses.replace(p, **tight.get(p.id, {})) for p in ALL_PROGRAMS)

    stream = tmp_path / "events.jsonl"
    generate(stream, persons=1_500, events=20_000, seed=9, focus=("342092",), focus_share=0.3)
    ledger = tmp_path / "ledger.jsonl"
    sink = FileSink(ledger)
    engine = Engine(load_catalog(rules), MemoryStore(sink))
    replay(stream, engine)
    sink.close()
    engine.close()
    expected = expected_points(stream, programs)
    miyoshi_paid = sum(p.get("miyoshi-premium", 0) for p in expected.values())
    assert 40_000 - 2_000 < miyoshi_paid <= 40_000  # the budget ran out (refunds give back)
    assert sum(1 for p in expected.values() if "national-phase2-card" in p) <= 150
    known = {p.id for p in programs}
    assert [p for p in compare(expected, ledger) if p.split(" ")[1].rstrip(":") in known] == []


def test_repeated_runs_are_each_compared_with_the_floor_just_before_them() -> None:
    from load.bench import Phase, median_of, paired_ratios

    phases = [Phase("post()", 10, 1.0), Phase("floor #1", 100, 1.0), Phase("engine #1", 30, 1.0),
              Phase("floor #2", 100, 2.0), Phase("engine #2", 20, 1.0),
              Phase("floor #3", 100, 1.0), Phase("engine #3", 25, 1.0)]
    assert paired_ratios(phases) == [0.3, 0.4, 0.25]
    assert median_of(paired_ratios(phases)) == 0.3
    assert median_of([0.1, 0.4, 0.2, 0.3]) == 0.2


def test_each_exclusive_redis_run_is_compared_with_the_engine_run_before_it() -> None:
    from load.bench import Phase, paired_redis_ratios

    phases = [Phase("floor #1", 100, 1.0), Phase("engine #1", 40, 1.0),
              Phase("redis exclusive #1", 20, 1.0), Phase("floor #2", 100, 1.0),
              Phase("engine #2", 30, 1.0), Phase("redis exclusive #2", 24, 1.0),
              Phase("redis", 5, 1.0)]
    assert paired_redis_ratios(phases) == [0.5, 0.8]


def test_the_benchmark_replays_on_redis_both_ways(stream: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code = bench_main(["--persons", "400", "--events", "6000", "--seed", "7", "--repeat", "2",
                       "--cache", str(tmp_path), "--post-events", "0", "--redis",
                       "--redis-events", "6000", "--check"])
    assert code == 0
    out = " ".join(capsys.readouterr().out.split())  # the summary wraps
    assert "redis exclusive #2" in out
    assert "× embedded (the median of 2 runs" in out and "redis (shared)" in out
    assert "oracle check: the ledger matches" in out


def test_the_benchmark_repeats_the_floor_and_the_engine(stream: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    code = bench_main(["--persons", "400", "--events", "6000", "--seed", "7", "--repeat", "2",
                       "--cache", str(tmp_path), "--post-events", "0"])
    assert code == 0
    out = capsys.readouterr().out
    assert "engine #2" in out and "floor #2" in out
    assert "× floor (the median of 2 runs" in out


def test_the_service_benchmark_replays_on_each_store_with_the_same_points(
        redis_server: RedisServer, tmp_path: Path) -> None:
    from load.bench_service import bench_replay
    from pointengine.catalog.loading import load_catalog
    from tests.world import RULES

    figures = bench_replay(load_catalog(RULES), redis_server, 3_000, 300, 500, tmp_path)
    assert figures["embedded_points"] == figures["exclusive_points"] == figures["redis_points"]
    assert figures["embedded_points"] > 0
    assert figures["exclusive_ratio"] == figures["exclusive"] / figures["embedded"]
    client = redis_server.client()
    assert client.get(RedisStore(client).keys.lease) is None  # given back at the end

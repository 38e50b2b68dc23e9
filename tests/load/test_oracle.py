"""The independent oracle decides by event time: the same events, the same money, in any order."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections import defaultdict
from pathlib import Path

import orjson
import pytest

from load.oracle import (
    ALL_PROGRAMS,
    PROGRAMS,
    Oracle,
    Program,
    expected_points,
    main,
    shared_limits,
)
from load.shuffle import shuffle_within
from pointengine.synth.generate import generate

CARD, HEALTH = "national-phase2-card", "national-phase2-health-insurance"


def _line(**fields: object) -> bytes:
    return orjson.dumps(fields)


def _apply(person: str, day: str, provider: str = "paypay", n: int = 1,
           residence: str = "131016") -> bytes:
    return _line(type="mynapoint_application", source="mykey", id=f"a{n}-{person}",
                 person=person, at=f"2022-{day}T10:00:00+09:00", phase=2, provider=provider,
                 card_applied_on="2021-06-01", residence=residence)


def _buy(n: int, person: str, day: str, amount: int, provider: str = "paypay",
         municipality: str = "131016") -> bytes:
    return _line(type="purchase", source=provider, id=f"t{n}", person=person,
                 at=f"2022-{day}T10:00:00+09:00", provider=provider, amount=amount,
                 store=f"ST{municipality}-1", store_municipality=municipality)


def _refund(n: int, person: str, day: str, transaction: str, amount: int) -> bytes:
    return _line(type="refund", source="paypay", id=f"r{n}", person=person,
                 at=f"2022-{day}T10:00:00+09:00", provider="paypay", transaction=transaction,
                 amount=amount)


def _register(person: str, day: str) -> bytes:
    return _line(type="health_insurance_registration", source="mykey", id=f"h-{person}",
                 person=person, at=f"2022-{day}T10:00:00+09:00")


def _paid(*lines: bytes, programs: tuple[Program, ...] = PROGRAMS) -> dict[str, dict[str, int]]:
    oracle = Oracle(programs)
    for line in lines:
        oracle.feed(line)
    return oracle.expected()


def test_the_oracle_pays_a_registration_dated_before_an_application_delivered_before_it(
) -> None:
    # cause 1 of issue #19: the application (07-10) comes first in the file, the registration
    # dated 07-01 after it; "whichever comes last within the window" decides, on 07-10
    lines = (_apply("MKR1", "07-10"), _register("MKR1", "07-01"))
    assert _paid(*lines) == {"MKR1": {HEALTH: 7_500}}
    assert _paid(*reversed(lines)) == {"MKR1": {HEALTH: 7_500}}
    # registered before phase 2's grants opened (06-30), applied within: paid on the application
    early = (_apply("MKR2", "07-10"), _register("MKR2", "03-01"))
    assert _paid(*early) == _paid(*reversed(early)) == {"MKR2": {HEALTH: 7_500}}
    # both before 06-30: never paid, in either order
    before = (_apply("MKR3", "05-10"), _register("MKR3", "03-01"))
    assert _paid(*before) == _paid(*reversed(before)) == {}


def test_the_oracle_pays_a_purchase_delivered_before_an_earlier_dated_application() -> None:
    # cause 2 of issue #19: t1 (07-02, 8,000), apply (07-01), t2 (07-03, 2,000) in that order
    lines = (_buy(1, "MKP1", "07-02", 8_000), _apply("MKP1", "07-01"),
             _buy(2, "MKP1", "07-03", 2_000))
    assert _paid(*lines) == {"MKP1": {CARD: 2_500}}
    for order in itertools.permutations(lines):
        assert _paid(*order) == {"MKP1": {CARD: 2_500}}


def test_the_oracle_judges_a_purchase_on_the_residence_at_its_time() -> None:
    # cause 3 of issue #19: a 三次市 resident from 07-10, a purchase in 三次市 on 07-15 delivered
    # before the move: 30% of 9,000; moving out on 07-10 instead: nothing from the city
    move_in = _line(type="residence_change", source="juki-net", id="m1", person="MKV1",
                    at="2022-07-10T10:00:00+09:00", residence="342092")
    lines = (_buy(1, "MKV1", "07-15", 9_000, municipality="342092"), move_in,
             _apply("MKV1", "07-01"))
    paid = _paid(*lines, programs=ALL_PROGRAMS)
    assert paid["MKV1"]["miyoshi-premium"] == 2_700
    move_out = _line(type="residence_change", source="juki-net", id="m2", person="MKV2",
                     at="2022-07-10T10:00:00+09:00", residence="131016")
    lines = (_buy(2, "MKV2", "07-15", 9_000, municipality="342092"), move_out,
             _apply("MKV2", "07-01", residence="342092"))
    assert "miyoshi-premium" not in _paid(*lines, programs=ALL_PROGRAMS)["MKV2"]


def test_the_oracle_takes_refunds_back_in_time_order() -> None:
    apply = _apply("MKF1", "07-01")
    t1, t2 = _buy(1, "MKF1", "07-01", 20_000), _buy(2, "MKF1", "07-03", 10_000)
    # cause 5 of issue #19: a refund dated 07-02 frees room the 07-03 purchase then fills
    r1 = _refund(1, "MKF1", "07-02", "t1", 10_000)
    assert _paid(apply, t1, t2, r1) == {"MKF1": {CARD: 5_000}}
    # cause 4: a refund delivered before its purchase still takes back its share
    r2 = _refund(2, "MKF1", "07-05", "t1", 10_000)
    assert _paid(r2, apply, t1, t2) == {"MKF1": {CARD: 5_000 - 2_500}}
    # a refund dated before its transaction is ignored, in any order
    early = _refund(3, "MKF1", "06-30", "t1", 10_000)
    assert _paid(early, apply, t1, t2) == _paid(apply, t1, t2, early) == {"MKF1": {CARD: 5_000}}


def test_the_first_application_in_time_chooses_the_provider() -> None:
    later = _apply("MKC1", "02-01", provider="rakuten-pay", n=1)
    earlier = _apply("MKC1", "01-15", provider="paypay", n=2)
    buy = _buy(1, "MKC1", "03-01", 4_000)  # with paypay
    assert _paid(later, earlier, buy) == _paid(buy, earlier, later) == {"MKC1": {CARD: 1_000}}


def test_the_first_valid_line_of_a_key_in_the_file_is_kept() -> None:
    apply = _apply("MKD1", "07-01")
    first = _buy(1, "MKD1", "07-05", 4_000)
    again = _buy(1, "MKD1", "07-02", 8_000)  # same key, dated earlier: a duplicate
    broken = _line(type="purchase", source="paypay", id="t2", person="MKD1",
                   at="2022-07-02T10:00:00+09:00", provider="paypay", amount=-1,
                   store="ST131016-1", store_municipality="131016")
    valid = _buy(2, "MKD1", "07-06", 2_000)  # t2's first valid line comes after a broken one
    assert _paid(apply, first, again, broken, valid) == {"MKD1": {CARD: 1_000 + 500}}
    assert _paid(again, first, apply) == {"MKD1": {CARD: 2_000}}


def test_events_fed_after_a_result_are_decided_in_time_order() -> None:
    oracle = Oracle()
    oracle.feed(_apply("MKI1", "07-01"))
    oracle.feed(_buy(3, "MKI1", "07-03", 20_000))
    assert oracle.expected() == {"MKI1": {CARD: 5_000}}
    oracle.feed(_buy(4, "MKI1", "07-04", 4_000))  # after the last decided
    oracle.feed(_refund(1, "MKI1", "07-05", "t3", 20_000))
    assert oracle.expected() == {}  # t4 found the cap full; the refund took t3's 5,000 back
    oracle.feed(_buy(2, "MKI1", "07-02", 8_000))  # dated before: everything decided again
    # t2 earns 2,000; t3 the 3,000 left; t4 nothing; the refund takes t3's 3,000 back
    assert oracle.expected() == {"MKI1": {CARD: 2_000}}


def test_a_key_tie_breaks_events_of_the_same_instant_whatever_their_offsets() -> None:
    apply = _apply("MKT1", "07-01")
    # the same instant written in two offsets: t10 < t9 as strings, so t10 is decided first
    t9 = _line(type="purchase", source="paypay", id="t9", person="MKT1",
               at="2022-07-02T01:00:00+00:00", provider="paypay", amount=16_000,
               store="ST131016-1", store_municipality="131016")
    t10 = _line(type="purchase", source="paypay", id="t10", person="MKT1",
                at="2022-07-02T10:00:00+09:00", provider="paypay", amount=8_000,
                store="ST131016-1", store_municipality="131016")
    refund = _refund(1, "MKT1", "07-09", "t10", 8_000)
    # t10 earns 2,000 and t9 the 3,000 left; refunding t10 takes back its 2,000
    assert _paid(apply, t9, t10, refund) == _paid(refund, t10, t9, apply) == {
        "MKT1": {CARD: 3_000}}


def _inversions(lines: list[bytes]) -> int:
    """How many of a person's consecutive events are out of ``at`` order."""
    times: dict[str, list[dt.datetime]] = defaultdict(list)
    for line in lines:
        event = orjson.loads(line)
        times[event["person"]].append(dt.datetime.fromisoformat(event["at"]))
    return sum(1 for mine in times.values() for a, b in itertools.pairwise(mine) if a > b)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("oracle") / "events.jsonl"
    generate(path, persons=5_000, events=100_000, seed=3)
    return path


def test_the_oracle_gives_the_same_money_for_a_stream_shuffled_within_20000_lines(
        generated: Path, tmp_path: Path) -> None:
    lines = generated.read_bytes().splitlines()
    shuffled = shuffle_within(lines, 20_000, seed=1)
    assert _inversions(shuffled) > 10_000 > _inversions(lines)  # really delivered late
    path = tmp_path / "shuffled.jsonl"
    path.write_bytes(b"\n".join(shuffled) + b"\n")
    expected = expected_points(generated, ALL_PROGRAMS)
    assert len(expected) > 1_000 and {p for mine in expected.values() for p in mine} >= {
        CARD, HEALTH, "national-phase2-public-funds-account", "national-phase1-premium"}
    assert expected_points(path, ALL_PROGRAMS) == expected


def test_no_shared_limit_binds_on_the_generated_stream(generated: Path) -> None:
    limits = shared_limits(generated)
    assert {(limit.program, limit.kind) for limit in limits} >= {
        ("national-phase2-card", "persons"), ("miyoshi-premium", "yen"),
        ("shiga-purchase-premium", "allocation")}
    assert [limit for limit in limits if limit.binds] == []
    card = next(limit for limit in limits if limit.program == CARD)
    assert 1_000 < card.peak == card.gross < card.limit


def test_the_oracle_reports_the_limits_that_bind() -> None:
    programs = tuple(dataclasses.replace(p, persons=1) if p.id == CARD
                     else dataclasses.replace(p, budget=4_000) if p.id == "miyoshi-premium"
                     else p for p in ALL_PROGRAMS)
    oracle = Oracle(programs)
    for n, person in enumerate(("MKL1", "MKL2"), start=1):
        oracle.feed(_apply(person, "07-01", n=n, residence="342092"))
        oracle.feed(_buy(n, person, f"07-0{n + 1}", 10_000, municipality="342092"))
    # MKL1 is admitted to ① and takes 3,000 of the city's 4,000; MKL2 gets the 1,000 left
    assert oracle.expected() == {"MKL1": {CARD: 2_500, "miyoshi-premium": 3_000},
                                 "MKL2": {"miyoshi-premium": 1_000}}
    limits = {(limit.program, limit.kind): limit for limit in oracle.limits()}
    card, city = limits[(CARD, "persons")], limits[("miyoshi-premium", "yen")]
    assert (card.limit, card.peak, card.refused, card.binds) == (1, 1, 1, True)
    assert (city.limit, city.peak, city.gross, city.refused, city.binds) == (
        4_000, 4_000, 4_000, 1, True)
    assert not limits[(HEALTH, "persons")].binds


def test_the_oracle_command_prints_the_limits_and_refuses_a_missing_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join((_buy(1, "MKQ1", "07-02", 8_000), _apply("MKQ1", "07-01")))
                       + b"\n")
    assert main([str(events), "--limits"]) == 0
    out = capsys.readouterr().out
    assert "1 persons with points; per program: {'national-phase2-card': 2000}" in out
    assert "national-phase2-card persons: limit 69,500,000, peak 1 " in out
    assert "does not bind" in out and "BINDS" not in out
    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path / "missing.jsonl")])
    assert stop.value.code == 2
    assert "no such file" in capsys.readouterr().err

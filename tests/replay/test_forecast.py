"""The forecast's parts: whom a program concerns, the scaling arithmetic, the period check, the
series, the CSV files and the words."""

from __future__ import annotations

import datetime as dt
import hashlib
from fractions import Fraction
from pathlib import Path
from typing import Any

import orjson
import pytest

from pointengine.catalog.loading import Catalog, Program, routing_keys
from pointengine.catalog.programs import Lottery, ProgramVersion
from pointengine.i18n import check_table
from pointengine.model.ledger import LedgerEntry
from pointengine.replay.forecast import (
    SYNTHETIC_PERIOD,
    TABLE,
    Scale,
    concerned,
    day_series,
    period_warnings,
    persons_limit,
    render,
    scale_version,
    scaled_catalog,
    share_out,
    text,
)
from pointengine.synth.generate import generate
from pointengine.synth.population import Population, load_population


@pytest.fixture(scope="module")
def population() -> Population:
    return load_population()


def _version(**fields: Any) -> ProgramVersion:
    base: dict[str, Any] = {"id": "trial", "name": "試行", "jurisdiction": "011002",
                            "on": ["purchase"],
                            "award": {"kind": "premium", "rate": "10%", "cap": 1000}}
    return ProgramVersion.model_validate({**base, **fields})


def _program(*versions: ProgramVersion) -> Program:
    return Program("trial", Path("trial.yaml"), list(versions))


def test_every_message_has_both_languages_with_the_same_placeholders() -> None:
    assert check_table(TABLE) == []


def test_a_residents_program_concerns_the_residents_of_its_jurisdiction(
        population: Population) -> None:
    who = concerned(_version(restriction={"persons": "residents"}), population)
    assert (who.scope, who.area, who.population, who.source) == (
        "residents", "011002", 1_960_668, "seed")  # 札幌市, the seeds' own figure
    assert who.residents_of == ("011002",)
    assert who.card_rate == Fraction(0.644)  # the seeds' 64.4%


def test_an_unlisted_town_has_an_estimated_population(population: Population) -> None:
    who = concerned(_version(jurisdiction="342092", restriction={"persons": "residents"}),
                    population)
    assert (who.population, who.source) == (74_884, "spread")  # 三次市, spread by kind


def test_a_program_open_to_anyone_at_local_stores_concerns_the_prefecture(
        population: Population) -> None:
    who = concerned(_version(jurisdiction="015814", restriction={"stores": "in_region"}),
                    population)
    assert (who.scope, who.area, who.population) == (
        "residents_and_visitors", "010006", 5_183_687)  # 北海道
    assert (who.jurisdiction_population, who.jurisdiction_source) == (7_336, "spread")


def test_national_and_unrestricted_programs_concern_the_country(
        population: Population) -> None:
    national = concerned(_version(jurisdiction="national"), population)
    anyone = concerned(_version(), population)
    assert national.scope == "national" and anyone.scope == "anyone"
    assert national.population == anyone.population == 125_927_902  # the 47 prefectures
    assert national.residents_of == anyone.residents_of == ()
    assert anyone.jurisdiction_population == 1_960_668


def test_a_designated_city_ward_counts_as_its_city(population: Population) -> None:
    who = concerned(_version(jurisdiction="011011", restriction={"persons": "residents"}),
                    population)  # 札幌市中央区
    assert who.population == 1_960_668


def test_scaling_rounds_halves_up_and_a_budget_never_below_one() -> None:
    scale = Scale(population=3, sample=2)  # each simulated person stands for 1.5
    assert [scale.up(n) for n in (0, 1, 2, 3, -1)] == [0, 2, 3, 5, -1]  # 1.5→2, 4.5→5, -1.5→-1
    assert scale.down(1) == 1  # 0.67 rounds to 1
    assert Scale(74_884, 2_000).down(300_000_000) == 8_012_393  # 8,012,392.5004
    assert Scale(4, 2).down(1) == 1  # 0.5, halves up (and at least 1 anyway)
    assert Scale(10, 2).down(7) == 1  # 1.4
    assert Scale(10, 2).down(8) == 2  # 1.6
    assert Scale(74_884, 2_000).factor_text() == "37.44"
    with pytest.raises(ValueError, match="cannot stand for"):
        Scale(10, 20)


def test_the_budget_allocations_and_winners_are_scaled_down() -> None:
    version = _version(budget={"yen": 1_000_000, "persons": 999},
                       providers=[{"provider": "paypay", "persons": 300},
                                  {"provider": "waon"}])
    scaled = scale_version(version, Scale(1_000, 10))
    assert scaled.budget is not None
    assert (scaled.budget.yen, scaled.budget.persons) == (10_000, 10)  # 9.99 → 10
    assert [p.persons for p in scaled.providers] == [3, None]
    assert version.budget is not None and version.budget.yen == 1_000_000  # untouched
    lottery = _version(on=["participation", "lottery_draw"],
                       award={"kind": "lottery", "threshold": 100, "winners": 1_000,
                              "amount": 5_000, "seed": "s"})
    award = scale_version(lottery, Scale(731_722, 20_000)).award
    assert isinstance(award, Lottery) and award.winners == 27  # 27.33


def test_shares_add_up_to_the_total_by_largest_remainder() -> None:
    assert share_out(10, {"a": 1, "b": 1, "c": 1}) == {"a": 4, "b": 3, "c": 3}
    assert share_out(100, {"a": 2, "b": 1}) == {"a": 67, "b": 33}
    shares = share_out(67_771_705, {"x": 1_000_001, "y": 810_044, "z": 0})
    assert sum(shares.values()) == 67_771_705 and shares["z"] == 0
    assert share_out(5, {"a": 0}) == {"a": 0}


def _entry(seq: int, person: str, points: int, day: str,
           kind: str = "award") -> LedgerEntry:
    return LedgerEntry(seq, kind, f"e{seq}", person, "trial", 1, points, "paypay",  # type: ignore[arg-type]
                       f"{day}T12:00:00+09:00")


def test_the_series_scale_cumulative_figures_and_clip_them_to_the_budget() -> None:
    entries = [_entry(1, "A", 100, "2022-03-02"), _entry(2, "B", 150, "2022-03-02"),
               _entry(3, "A", 3, "2022-03-04"), _entry(4, "B", -150, "2022-03-05", "reversal")]
    series = day_series(entries, dt.date(2022, 3, 1), dt.date(2022, 3, 6), Scale(3, 2),
                        budget_yen=380, budget_persons=4)
    assert series.days == ["2022-03-01", "2022-03-02", "2022-03-03", "2022-03-04",
                           "2022-03-05", "2022-03-06"]
    # cumulative: 250 x 1.5 = 375; 253 x 1.5 = 379.5 → 380 (the budget); 103 x 1.5 = 154.5 → 155
    assert series.cumulative_points == [0, 375, 375, 380, 155, 155]
    assert series.points == [0, 375, 0, 5, -225, 0]
    assert sum(series.points) == series.cumulative_points[-1]
    assert series.budget_left == [380, 5, 5, 0, 225, 225]
    # persons with points: 2 x 1.5 = 3; B's points refunded: 1 x 1.5 = 1.5 → 2
    assert series.persons_reached == [0, 3, 3, 3, 2, 2]
    assert series.budget_persons_left == [4, 1, 1, 1, 1, 1]  # B stays admitted


def test_the_series_widen_to_every_day_with_a_line() -> None:
    series = day_series([_entry(1, "A", 10, "2022-04-01")], dt.date(2022, 3, 30),
                        dt.date(2022, 3, 31), Scale(1, 1), None, None)
    assert series.days == ["2022-03-30", "2022-03-31", "2022-04-01"]
    assert series.budget_left is None and series.budget_persons_left is None
    assert day_series([], None, None, Scale(1, 1), None, None).days == []


def _codes_and_args(program: Program) -> list[tuple[str, dict[str, object]]]:
    return [(t.code, dict(t.args)) for t in period_warnings(program, *SYNTHETIC_PERIOD)]


def test_a_period_wholly_outside_the_stream_is_said_with_both_periods() -> None:
    program = _program(_version(conditions={"period": {"from": "2020-09-01",
                                                        "to": "2021-12-31"}}))
    [(code, args)] = _codes_and_args(program)
    assert code == "w_period_outside"
    assert args == {"first": "2020-09-01", "last": "2021-12-31",
                    "stream_first": "2022-01-01", "stream_last": "2023-02-28"}
    [warning] = period_warnings(program, *SYNTHETIC_PERIOD)
    assert render(warning, "ja") == (
        "事業の期間（2020-09-01〜2021-12-31）はデータの期間（2022-01-01〜2023-02-28）の外に"
        "あるため、予測にはほとんど反映されません。")


def test_a_period_and_a_window_partly_outside_say_how_many_days() -> None:
    program = _program(_version(conditions={
        "period": {"from": "2022-04-01", "to": "2023-03-31"},
        "application_period": {"from": "2021-12-01", "to": "2022-01-31"}}))
    assert _codes_and_args(program) == [
        ("w_period_partly", {"first": "2022-04-01", "last": "2023-03-31", "outside": "31",
                             "days": "365", "stream_first": "2022-01-01",
                             "stream_last": "2023-02-28"}),
        ("w_application_partly", {"first": "2021-12-01", "last": "2022-01-31",
                                  "outside": "31", "days": "62",
                                  "stream_first": "2022-01-01", "stream_last": "2023-02-28"})]


def test_versions_never_in_force_during_the_stream_are_said() -> None:
    first = _version()
    early = _version(version=2, effective_from="2021-06-01T00:00:00+09:00")
    middle = _version(version=3, effective_from="2021-10-01T00:00:00+09:00")
    late = _version(version=4, effective_from="2023-04-01T00:00:00+09:00")
    assert [(c, a.get("version")) for c, a in _codes_and_args(
        _program(first, early, middle, late))] == [
        ("w_version_before", 1), ("w_version_before", 2), ("w_version_after", 4)]
    assert _codes_and_args(_program(first, middle)) == [
        ("w_version_before", {"version": 1, "replaced_on": "2021-10-01",
                              "stream_first": "2022-01-01", "stream_last": "2023-02-28"})]
    inside = _program(_version(conditions={"period": {"from": "2022-02-01",
                                                       "to": "2022-02-28"}}))
    assert _codes_and_args(inside) == []


def test_a_national_name_is_rendered_in_each_language() -> None:
    said = text("a_scope_residents", area=text("national"))
    assert render(said, "en").startswith("Population concerned: the residents of Japan")
    assert render(said, "ja").startswith("対象人口：全国の住民")


def test_a_scaled_catalog_changes_the_proposed_program_only(catalog: Catalog) -> None:
    scaled = scaled_catalog(catalog, "miyoshi-premium", Scale(74_884, 2_000))
    budget = scaled.programs["miyoshi-premium"].current.budget
    assert budget is not None and budget.yen == 8_012_393
    assert scaled.programs["kumamoto-health-lottery"] is catalog.programs[
        "kumamoto-health-lottery"]
    version = scaled.programs["miyoshi-premium"].current
    [key, *_] = sorted(routing_keys(version))
    assert scaled.programs["miyoshi-premium"] in scaled.candidates([key], "purchase")


def test_persons_reached_are_clipped_to_a_lottery_s_winners() -> None:
    lottery = _version(on=["participation", "lottery_draw"], budget={"persons": 2_000},
                       award={"kind": "lottery", "threshold": 100, "winners": 1_000,
                              "amount": 5_000, "seed": "s"})
    assert persons_limit(lottery) == 1_000
    assert persons_limit(_version(budget={"persons": 30})) == 30
    assert persons_limit(_version()) is None
    entries = [_entry(i, f"P{i}", 5_000, "2023-04-01") for i in range(3)]
    series = day_series(entries, None, None, Scale(731_722, 2_000), None, None,
                        persons_limit=1_000)
    assert series.persons_reached == [1_000]  # 3 x 365.86 = 1,097.6, above the winners


def test_a_sample_of_residents_lives_there_and_the_default_stream_is_unchanged(
        tmp_path: Path) -> None:
    plain = generate(tmp_path / "plain.jsonl", persons=3_000, events=30_000, seed=7)
    # the stream of these arguments before ``residents_of`` existed
    assert plain.sha256 == "b786aef9993d460c2e87063bcef7b556481c13f4e6c131e35ebbdb068ed36a67"
    out = tmp_path / "miyoshi.jsonl"
    made = generate(out, persons=2_000, events=12_000, seed=7, residents_of=("342092",))
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    homes = {e["residence"] for e in lines if e["type"] == "mynapoint_application"}
    assert homes == {"342092"}
    again = generate(tmp_path / "again.jsonl", persons=2_000, events=12_000, seed=7,
                     residents_of=("342092",))
    assert again.sha256 == made.sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    with pytest.raises(ValueError, match="no municipality"):
        generate(tmp_path / "x.jsonl", persons=10, events=100, seed=7, residents_of=("999999",))

"""``pointengine simulate``: a proposed program over a handcrafted and a generated stream."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from pointengine.catalog.drafts import load_with_proposal
from pointengine.cli.main import app
from pointengine.errors import RuleFileError
from pointengine.replay.simulate import simulate
from tests.world import RULES

PROPOSAL = """\
# A proposed program: residents of Chiyoda at stores in Chiyoda, +10% up to 1,000 (type D).
id: chiyoda-trial
name: 千代田区 試行
jurisdiction: "131016"
phase: 2
on: [purchase]
restriction: {persons: residents, stores: in_region}
conditions:
  period: {from: 2022-03-01, to: 2022-03-31}
award: {kind: premium, rate: 10%, cap: 1000}
budget: {yen: 250}
"""


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _stream(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(e, option=orjson.OPT_APPEND_NEWLINE) for e in events))
    return path


def _apply(n: int, person: str, residence: str) -> dict[str, Any]:
    return {"type": "mynapoint_application", "source": "mykey", "id": f"a{n}", "person": person,
            "at": "2022-02-20T10:00:00+09:00", "phase": 2, "provider": "paypay",
            "card_applied_on": "2022-01-05", "residence": residence}


def _buy(n: int, person: str, day: str, amount: int, where: str = "131016") -> dict[str, Any]:
    return {"type": "purchase", "source": "paypay", "id": f"p{n}", "person": person,
            "at": f"2022-03-{day}T12:00:00+09:00", "provider": "paypay", "amount": amount,
            "store": f"ST{where}-0001", "store_municipality": where}


HANDCRAFTED = [
    _apply(1, "MK-A", "131016"),
    _apply(2, "MK-B", "131016"),
    _apply(3, "MK-C", "131024"),  # lives in Chuo: not a resident
    _buy(1, "MK-A", "01", 1000),  # 100
    _buy(2, "MK-B", "02", 1200),  # 120, 220 spent
    _buy(3, "MK-C", "02", 5000),  # not a resident: nothing
    _buy(4, "MK-A", "03", 500),  # wants 50, 30 left: the budget runs out on 03-03
    _buy(5, "MK-B", "04", 1000),  # budget spent: nothing
    {"type": "refund", "source": "paypay", "id": "r1", "person": "MK-B",
     "at": "2022-03-05T09:00:00+09:00", "provider": "paypay", "transaction": "p2",
     "amount": 600},  # gives back 60 of B's 120
]


def test_a_tiny_budget_runs_out_on_a_known_day(tmp_path: Path) -> None:
    rulefile = _write(tmp_path / "chiyoda.yaml", PROPOSAL)
    stream = _stream(tmp_path / "events.jsonl", HANDCRAFTED)
    report = simulate(rulefile, rules=RULES, stream=stream)
    assert report.program == "chiyoda-trial"
    assert report.type_letter == "D"
    assert report.events == 9
    assert report.persons_reached == 2
    assert report.points_total == 100 + 120 + 30 - 60
    assert report.points_per_provider == {"paypay": 190}
    assert report.persons_per_provider == {"paypay": 2}
    assert report.points_per_day == {"2022-03-01": 100, "2022-03-02": 120, "2022-03-03": 30,
                                     "2022-03-05": -60}
    assert report.budget_yen == 250
    assert report.budget_exhausted_on == "2022-03-03"
    assert report.limited == {"program budget": 2}
    assert report.trigger_events == {"purchase": 5}


def test_a_budget_that_suffices_does_not_run_out(tmp_path: Path) -> None:
    rulefile = _write(tmp_path / "chiyoda.yaml", PROPOSAL.replace("yen: 250", "yen: 100000"))
    stream = _stream(tmp_path / "events.jsonl", HANDCRAFTED)
    report = simulate(rulefile, rules=RULES, stream=stream)
    assert report.points_total == 100 + 120 + 50 + 100 - 60
    assert report.budget_exhausted_on is None
    assert report.limited == {}


def test_an_invalid_proposal_is_reported_against_its_own_file(tmp_path: Path) -> None:
    rulefile = _write(tmp_path / "chiyoda.yaml", PROPOSAL.replace("rate: 10%", "rat: 10%"))
    with pytest.raises(RuleFileError) as caught:
        load_with_proposal(rulefile, RULES)
    [problem] = caught.value.problems
    assert problem.file == str(rulefile)
    assert problem.line == 10
    assert problem.suggestion == "rate"


def test_a_revision_of_a_shipped_program_replaces_it(tmp_path: Path) -> None:
    shipped = (RULES / "342092-miyoshi" / "premium.yaml").read_text(encoding="utf-8")
    rulefile = _write(tmp_path / "premium.yaml", shipped.replace("rate: 30%", "rate: 20%"))
    catalog, program = load_with_proposal(rulefile, RULES)
    assert program == "miyoshi-premium"
    assert catalog.programs[program].current.award.rate == 2000  # type: ignore[union-attr]


def test_generated_stream_reaches_residents_and_the_cli_prints_json(tmp_path: Path) -> None:
    rulefile = RULES / "342092-miyoshi" / "premium.yaml"
    result = CliRunner().invoke(app, ["simulate", str(rulefile), "--rules", str(RULES),
                                      "--persons", "2000", "--events", "12000", "--json"])
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    assert report["stream"]["residents_of"] == ["342092"]
    assert report["persons_reached"] > 0
    assert sum(report["points_per_provider"].values()) == report["points_total"]
    assert sum(report["points_per_day"].values()) == report["points_total"]
    assert report["budget_exhausted_on"] is None
    assert [a["code"] for a in report["assumptions"]][:2] == ["a_sample", "a_scope_residents"]
    assert report["assumptions"][0]["ja"].startswith("広島県三次市の74,884人を模擬標本2,000人で")
    assert report["assumptions"][0]["en"].startswith("2,000 simulated persons stand for the "
                                                     "74,884 persons of 広島県三次市")
    series = report["series"]
    assert len(series["days"]) == len(series["budget_left"]) == len(
        series["persons_reached"]) == 424  # 2022-01-01 to 2023-02-28
    assert series["cumulative_points"][-1] == report["points_total"]


def test_a_seeded_run_gives_exact_figures_scaled_to_the_real_population() -> None:
    report = simulate(RULES / "342092-miyoshi" / "premium.yaml", rules=RULES, persons=2_000,
                      events=12_000, seed=2022)
    assert (report.population, report.population_scope) == (74_884, "residents")
    assert report.scale == {"population": 74_884, "sample": 2_000, "factor": "37.44"}
    # the sample's budget: 300,000,000 x 2,000 / 74,884 = 8,012,392.5004, to the nearest yen
    assert report.sample["budget_yen"] == 8_012_393
    assert report.sample["persons_reached"] == 568
    assert report.sample["points_total"] == 1_810_045
    assert report.persons_reached == 21_267  # 568 x 37.442 = 21,267.06
    assert report.points_total == 67_771_705  # 1,810,045 x 37.442 = 67,771,704.89
    assert report.reached_share == round(21_267 / 74_884, 6)
    assert report.budget_share == round(67_771_705 / 300_000_000, 6)
    assert report.points_per_provider["paypay"] == 26_579_627  # 709,888 of the sample's
    assert report.persons_per_provider["paypay"] == 7_039  # 188 x 37.442 = 7,039.1
    assert report.limited == {"person cap": 2_011}
    assert report.budget_exhausted_on is None and report.notices == []
    assert report.stream_period == ["2022-01-01", "2023-02-28"]


def test_a_tight_budget_runs_out_and_the_burn_down_reaches_zero(tmp_path: Path) -> None:
    shipped = (RULES / "342092-miyoshi" / "premium.yaml").read_text(encoding="utf-8")
    rulefile = _write(tmp_path / "premium.yaml",
                      shipped.replace("yen: 300000000", "yen: 30000000"))
    report = simulate(rulefile, rules=RULES, persons=2_000, events=12_000)
    assert report.sample["budget_yen"] == 801_239  # 30,000,000 / 37.442 = 801,239.25
    assert report.sample["points_total"] == 801_239  # the sample spends its budget exactly
    # 801,239 x 37.442 = 29,999,990.6: the sample's budget spent whole is the budget spent
    assert report.points_total == 30_000_000
    day = report.budget_exhausted_on
    assert day is not None and "2022-01-01" < day < "2023-02-28"
    series = report.series
    assert series.budget_left is not None
    assert day == "2022-11-15"  # the first claim the budget clipped
    at = series.days.index(day)
    # a refund that day gave back budget (sample: 328 yen), which the next day's claims took;
    # later refunds free a little more now and then
    assert series.budget_left[at - 1:at + 2] == [278_091, 12_290, 0]
    assert report.limited["program budget"] == 2_016


def test_a_town_smaller_than_the_sample_is_simulated_whole(tmp_path: Path) -> None:
    rulefile = _write(tmp_path / "atsuma.yaml", PROPOSAL.replace('"131016"', '"015814"')
                      .replace("2022-03-01", "2022-06-01").replace("2022-03-31", "2022-12-31"))
    report = simulate(rulefile, rules=RULES, persons=20_000, events=30_000)
    assert report.population == 7_336  # 厚真町, an estimate
    assert report.stream["persons"] == 7_336
    assert report.stream["events"] == 11_004  # 30,000 x 7,336 / 20,000: the same per person
    assert report.scale["factor"] == "1.00"
    assert report.persons_reached == report.sample["persons_reached"]
    codes = [a.code for a in report.assumptions]
    assert "a_events_cut" in codes and "a_population_spread" in codes


def test_a_program_for_anyone_at_local_stores_warns_of_a_thin_sample_and_its_period() -> None:
    result = CliRunner().invoke(app, ["simulate", str(RULES / "015814-atsuma" / "premium.yaml"),
                                      "--rules", str(RULES), "--persons", "2000", "--events",
                                      "12000", "--lang", "en"])
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())
    assert ("warning: The program's period 2020-09-01 to 2021-12-31 lies wholly outside the "
            "stream's period 2022-01-01 to 2023-02-28") in out
    assert "warning: The sample holds only about 3 residents of 北海道厚真町" in out
    assert "Population concerned: the residents of 北海道, who may shop in 北海道厚真町" in out


def test_the_cli_prints_in_japanese_and_writes_csv(tmp_path: Path) -> None:
    rulefile = _write(tmp_path / "chiyoda.yaml", PROPOSAL)
    stream = _stream(tmp_path / "events.jsonl", HANDCRAFTED)
    folder = tmp_path / "csv"
    result = CliRunner().invoke(app, ["simulate", str(rulefile), "--rules", str(RULES),
                                      "--events-file", str(stream), "--lang", "ja",
                                      "--csv", str(folder)])
    assert result.exit_code == 0, result.output
    out = "".join(result.stdout.split())
    assert "予算が尽きる日│2022-03-03" in out
    assert "注意:事業の期間（2022-03-01〜2022-03-31）の一部がデータの期間（2022-02-20〜" \
        "2022-03-05）の外にあり、31日のうち26日は予測に含まれません。" in out
    assert "イベントファイル" in out
    assert sorted(p.name for p in folder.iterdir()) == ["days.csv", "providers.csv",
                                                         "summary.csv"]
    days = (folder / "days.csv").read_bytes()
    assert days.startswith(b"\xef\xbb\xbf")
    lines = days.decode("utf-8-sig").splitlines()
    assert lines[0] == "日付,ポイント（円）,累計ポイント（円）,予算残額（円）,到達人数（累計）"
    assert lines[1:] == ["2022-03-01,100,100,150,1", "2022-03-02,120,220,30,2",
                         "2022-03-03,30,250,0,2", "2022-03-04,0,250,0,2",
                         "2022-03-05,-60,190,60,2"]
    providers = (folder / "providers.csv").read_text(encoding="utf-8-sig").splitlines()
    assert providers == ["決済事業者,名称,人数,ポイント（円）,ポイントの割合",
                         "paypay,PayPay,2,190,1.0", "合計,,2,190,"]
    summary = (folder / "summary.csv").read_text(encoding="utf-8-sig")
    assert "予算が尽きる日,2022-03-03" in summary and "注意," in summary


def test_a_csv_folder_that_cannot_be_written_exits_1_and_leaves_nothing(
        tmp_path: Path) -> None:
    rulefile = _write(tmp_path / "chiyoda.yaml", PROPOSAL)
    stream = _stream(tmp_path / "events.jsonl", HANDCRAFTED)
    blocker = _write(tmp_path / "csv", "a file, not a folder")
    result = CliRunner().invoke(app, ["simulate", str(rulefile), "--rules", str(RULES),
                                      "--events-file", str(stream), "--csv", str(blocker)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert result.output.startswith(f"simulate: cannot write {blocker}")
    assert blocker.read_text() == "a file, not a folder"


def test_the_library_reports_progress_to_a_callback() -> None:
    seen: list[tuple[str, int, int | None]] = []
    simulate(RULES / "342092-miyoshi" / "premium.yaml", rules=RULES, persons=2_000,
             events=12_000, on_progress=lambda stage, done, total: seen.append(
                 (stage, done, total)))
    stages = [s for s, _, _ in seen]
    assert stages[0] == "generate" and stages[-1] == "simulate"
    assert ("generate", 12_000, 12_000) in seen
    [(_, done, total)] = [x for x in seen if x[0] == "simulate"][-1:]
    assert total is not None and done == total  # the whole stream read


def test_a_participation_program_is_simulated_with_generated_activities() -> None:
    report = simulate(RULES / "192015-kofu" / "health-activity.yaml", rules=RULES,
                      persons=3_000, events=20_000)
    assert report.trigger_events["participation"] > 0
    assert report.stream["activities"]["names"] == [
        "cancer-screening", "health-checkup", "health-walk", "sports-festival"]
    assert report.persons_reached > 0
    assert report.sample["points_total"] % 100 == 0  # every activity is worth a multiple of 100
    assert report.population == 186_249 and report.population_scope == "residents"


def test_a_lottery_is_drawn_after_its_period() -> None:
    report = simulate(RULES / "431001-kumamoto" / "health-lottery.yaml", rules=RULES,
                      persons=20_000, events=60_000)
    assert report.trigger_events == {"lottery_draw": 1,
                                     "participation": report.trigger_events["participation"]}
    # 1,000 winners of 731,722 residents: 27 in a sample of 20,000 (27.33)
    assert report.sample["points_total"] == 5_000 * report.sample["persons_reached"]
    assert 0 < report.sample["persons_reached"] <= 27
    assert report.points_total <= 5_000_000  # never above the budget
    assert report.persons_reached <= 1_000  # nor above the winners
    assert list(report.points_per_day) == ["2023-04-01"]  # the morning after the period
    assert [n.code for n in report.notices] == ["w_period_partly"]  # it ends 2023-03-31


def test_the_cli_reports_problems_and_exits_1(tmp_path: Path) -> None:
    rulefile = _write(tmp_path / "chiyoda.yaml", PROPOSAL.replace('"131016"', '"131017"'))
    result = CliRunner().invoke(app, ["simulate", str(rulefile), "--rules", str(RULES)])
    assert result.exit_code == 1
    assert f"{rulefile}:4: jurisdiction: unknown local government code 131017" in result.output


@pytest.mark.parametrize("escape", ["{tmp}/pwn", "../../../../../../../../../../..{tmp}/pwn"])
def test_a_jurisdiction_that_is_a_path_is_an_unknown_code_and_writes_nothing(
        tmp_path: Path, escape: str) -> None:
    jurisdiction = escape.format(tmp=tmp_path)
    rulefile = _write(tmp_path / "chiyoda.yaml",
                      PROPOSAL.replace('"131016"', f'"{jurisdiction}"'))
    with pytest.raises(RuleFileError) as caught:
        load_with_proposal(rulefile, RULES)
    assert [str(p) for p in caught.value.problems] == [
        f"{rulefile}:4: jurisdiction: unknown local government code {jurisdiction}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chiyoda.yaml"]


@pytest.mark.parametrize(("option", "value"), [
    ("--persons", "0"), ("--persons", "-5"), ("--events", "0"), ("--lang", "fr"),
])
def test_the_cli_refuses_impossible_options_with_a_clear_message(option: str, value: str) -> None:
    rulefile = RULES / "342092-miyoshi" / "premium.yaml"
    result = CliRunner().invoke(app, ["simulate", str(rulefile), "--rules", str(RULES),
                                      option, value])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"Invalid value for '{option}'" in result.output
    assert "Traceback" not in result.output


def test_simulate_refuses_an_empty_population_before_generating() -> None:
    rulefile = RULES / "342092-miyoshi" / "premium.yaml"
    with pytest.raises(ValueError, match="at least 1 person, got 0"):
        simulate(rulefile, rules=RULES, persons=0)
    with pytest.raises(ValueError, match="at least 1 event, got 0"):
        simulate(rulefile, rules=RULES, events=0)


def test_a_missing_events_file_exits_2_without_a_traceback(tmp_path: Path) -> None:
    rulefile = _write(tmp_path / "chiyoda.yaml", PROPOSAL)
    missing = tmp_path / "nowhere.jsonl"
    result = CliRunner().invoke(app, ["simulate", str(rulefile), "--rules", str(RULES),
                                      "--events-file", str(missing)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert result.output.startswith("simulate: cannot read the events file")
    assert len(result.output.strip().splitlines()) == 1


def test_a_file_of_another_rules_folder_or_a_missing_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    shutil.copytree(RULES, tmp_path / "rules")
    shutil.copytree(RULES, tmp_path / "rules_edit")
    stream = _stream(tmp_path / "events.jsonl", [])
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["simulate", "rules/342092-miyoshi/premium.yaml",
                                      "--rules", "rules_edit", "--events-file", str(stream),
                                      "--json"])
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout)["program"] == "miyoshi-premium"
    result = CliRunner().invoke(app, ["simulate", "rules/342092-miyoshi/premium.yaml",
                                      "--rules", "nope", "--events-file", str(stream)])
    assert result.exit_code == 2
    assert "nope: no such file or folder" in result.output
    assert "providers.yaml" not in result.output


def test_endless_input_is_refused_not_read(tmp_path: Path) -> None:
    import signal

    rulefile = _write(tmp_path / "chiyoda.yaml", PROPOSAL)

    def hung(signum: int, frame: object) -> None:
        raise TimeoutError("still reading /dev/zero")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(10)
    try:
        result = CliRunner().invoke(app, ["simulate", str(rulefile), "--rules", str(RULES),
                                          "--events-file", "/dev/zero"])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert result.exit_code == 2, result.output
    assert "/dev/zero: not a regular file" in result.output

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
    assert report["stream"]["focus"] == ["342092"]
    assert report["persons_reached"] > 0
    assert sum(report["points_per_provider"].values()) == report["points_total"]
    assert sum(report["points_per_day"].values()) == report["points_total"]
    assert report["budget_exhausted_on"] is None


def test_a_participation_program_is_simulated_with_generated_activities() -> None:
    report = simulate(RULES / "192015-kofu" / "health-activity.yaml", rules=RULES,
                      persons=3_000, events=20_000)
    assert report.trigger_events["participation"] > 0
    assert report.stream["activities"]["names"] == [
        "cancer-screening", "health-checkup", "health-walk", "sports-festival"]
    assert report.persons_reached > 0
    assert report.points_total % 100 == 0  # every activity is worth a multiple of 100


def test_a_lottery_is_drawn_after_its_period() -> None:
    report = simulate(RULES / "431001-kumamoto" / "health-lottery.yaml", rules=RULES,
                      persons=3_000, events=20_000)
    assert report.trigger_events == {"lottery_draw": 1,
                                     "participation": report.trigger_events["participation"]}
    assert 0 < report.persons_reached <= 1_000
    assert report.points_total == 5_000 * report.persons_reached  # each winner gets 5,000
    assert list(report.points_per_day) == ["2023-04-01"]  # the morning after the period


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
    ("--persons", "0"), ("--persons", "-5"), ("--events", "0"), ("--focus-share", "1.5"),
    ("--focus-share", "-0.1"),
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
    with pytest.raises(ValueError, match="between 0 and 1, got 2"):
        simulate(rulefile, rules=RULES, focus_share=2)


def test_a_missing_events_file_exits_2_without_a_traceback(tmp_path: Path) -> None:
    rulefile = _write(tmp_path / "chiyoda.yaml", PROPOSAL)
    missing = tmp_path / "nowhere.jsonl"
    result = CliRunner().invoke(app, ["simulate", str(rulefile), "--rules", str(RULES),
                                      "--events-file", str(missing)])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert result.output.startswith("simulate: cannot read the events file")
    assert len(result.output.strip().splitlines()) == 1

"""Real history replayed under a draft, beside what was paid: exact yen per program, provider,
day and person."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from pointengine.cli.main import app
from pointengine.errors import IntegrityError, RuleFileError, UnreadableEvents
from pointengine.i18n import check_table
from pointengine.replay.compare import MESSAGES, PersonChange, Row, compare, jst_day
from tests.world import APPLY, BUY, RULES

MIYOSHI = "342092"
PREMIUM = RULES / "342092-miyoshi" / "premium.yaml"


def _buy(n: int, person: str, day: str, amount: int) -> dict[str, Any]:
    return {**BUY, "id": f"b{n}", "person": person, "at": f"2022-02-{day}T12:00:00+09:00",
            "amount": amount, "store": f"ST{n}", "store_municipality": MIYOSHI}


HISTORY = [
    {**APPLY, "id": "a1", "person": "MK-A", "residence": MIYOSHI},
    {**APPLY, "id": "a2", "person": "MK-B", "residence": MIYOSHI},
    {**APPLY, "id": "a3", "person": "MK-C"},  # lives in Chiyoda: no Miyoshi premium
    _buy(1, "MK-A", "01", 10_000),  # card 2,500; Miyoshi 30%: 3,000
    _buy(2, "MK-B", "02", 1_000),  # card 250; Miyoshi 300
    _buy(3, "MK-C", "02", 2_000),  # card 500
    {"type": "refund", "source": "t", "id": "r1", "person": "MK-A",
     "at": "2022-02-03T12:00:00+09:00", "provider": "paypay", "transaction": "b1",
     "amount": 5_000},  # half back: card -1,250, Miyoshi -1,500
]


@pytest.fixture
def events(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e, option=orjson.OPT_APPEND_NEWLINE)
                              for e in HISTORY))
    return path


def _draft(tmp_path: Path, old: str, new: str, name: str = "premium.yaml") -> Path:
    text = PREMIUM.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "draft" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


RATE = "award: {kind: premium, rate: 30%, cap: 6000}"


def test_a_higher_rate_pays_exactly_the_expected_more(tmp_path: Path, events: Path) -> None:
    draft = _draft(tmp_path, RATE, "award: {kind: premium, rate: 40%, cap: 6000}")
    seen: list[tuple[int, int | None]] = []
    result = compare(draft, events=events, rules=RULES,
                     on_progress=lambda done, total: seen.append((done, total)))
    assert (result.program, result.revises, result.paid_from) == (
        "miyoshi-premium", True, "replay")
    # Miyoshi: paid 3,000 + 300 - 1,500; the draft 4,000 + 400 - 2,000
    assert result.per_program == [Row("miyoshi-premium", 2_400, 1_800, 600),
                                  Row("national-phase2-card", 2_000, 2_000, 0)]
    assert result.per_provider == [Row("paypay", 4_400, 3_800, 600)]
    assert result.per_day == [Row("2022-02-01", 6_500, 5_500, 1_000),
                              Row("2022-02-02", 1_150, 1_050, 100),
                              Row("2022-02-03", -3_250, -2_750, -500)]
    assert (result.draft_total, result.paid_total, result.difference) == (4_400, 3_800, 600)
    assert result.changed_programs == ["miyoshi-premium"]
    assert result.persons == [PersonChange("MK-A", 3_250, 2_750, 500),
                              PersonChange("MK-B", 650, 550, 100)]
    assert (result.gainers, result.gained_yen, result.losers, result.lost_yen) == (2, 600, 0, 0)
    assert result.top_gainers == result.persons and result.top_losers == []
    assert result.lines == len(HISTORY) and result.rejected == 0
    size = events.stat().st_size
    assert seen[-1] == (2 * size, 2 * size)


def test_an_unchanged_draft_differs_by_0_yen(tmp_path: Path, events: Path) -> None:
    result = compare(_draft(tmp_path, RATE, RATE), events=events, rules=RULES)
    assert result.difference == 0 and result.draft_total == 3_800
    assert all(row.difference == 0 for row in result.per_program + result.per_provider
               + result.per_day)
    assert result.changed_programs == [] and result.persons == []
    assert result.gainers == result.losers == 0


def test_a_lower_cap_shows_who_loses(tmp_path: Path, events: Path) -> None:
    draft = _draft(tmp_path, RATE, "award: {kind: premium, rate: 30%, cap: 1000}")
    result = compare(draft, events=events, rules=RULES)
    # MK-A: 1,000 of 3,000, and the refund takes back half of the 1,000
    assert result.persons == [PersonChange("MK-A", 1_750, 2_750, -1_000)]
    assert (result.losers, result.lost_yen, result.gainers) == (1, 1_000, 0)
    assert result.top_losers == result.persons


def test_what_was_paid_may_be_the_ledger_of_that_history(tmp_path: Path, events: Path) -> None:
    out = tmp_path / "out"
    replayed = CliRunner().invoke(app, ["replay", str(events), "--rules", str(RULES),
                                        "--out", str(out)])
    assert replayed.exit_code == 0, replayed.output
    draft = _draft(tmp_path, RATE, "award: {kind: premium, rate: 40%, cap: 6000}")
    from_ledger = compare(draft, events=events, rules=RULES, paid=out / "ledger.jsonl")
    by_replay = compare(draft, events=events, rules=RULES)
    assert (from_ledger.paid_from, from_ledger.paid_entries) == ("ledger", 7)
    assert from_ledger.per_program == by_replay.per_program
    assert from_ledger.per_day == by_replay.per_day
    assert from_ledger.persons == by_replay.persons
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_bytes((out / "ledger.jsonl").read_bytes() + b'{"seq": "x"}\n')
    with pytest.raises(IntegrityError, match=r"damaged\.jsonl:8:"):
        compare(draft, events=events, rules=RULES, paid=damaged)


def test_a_new_program_is_added_beside_the_rules(tmp_path: Path, events: Path) -> None:
    draft = _draft(tmp_path, "id: miyoshi-premium", "id: miyoshi-extra", "extra.yaml")
    text = draft.read_text(encoding="utf-8").replace(RATE, "award: {kind: premium, rate: 5%, "
                                                     "cap: 100}")
    draft.write_text(text.replace("budget: {yen: 300000000}", "budget: {yen: 1000}"),
                     encoding="utf-8")
    result = compare(draft, events=events, rules=RULES)
    assert (result.program, result.revises) == ("miyoshi-extra", False)
    # MK-A: 100 of 500, then half of it back; MK-B: 50
    assert Row("miyoshi-extra", 100, 0, 100) in result.per_program
    assert result.persons == [PersonChange("MK-A", 2_800, 2_750, 50),
                              PersonChange("MK-B", 600, 550, 50)]


def test_csv_files_in_utf8_with_a_bom_headers_in_the_language(tmp_path: Path,
                                                            events: Path) -> None:
    draft = _draft(tmp_path, RATE, "award: {kind: premium, rate: 40%, cap: 6000}")
    result = compare(draft, events=events, rules=RULES)
    written = result.write_csv(tmp_path / "csv", "ja")
    assert [p.name for p in written] == ["programs.csv", "providers.csv", "days.csv",
                                         "persons.csv"]
    programs = (tmp_path / "csv" / "programs.csv").read_bytes()
    assert programs.startswith(b"\xef\xbb\xbf")
    assert programs.decode("utf-8-sig").splitlines() == [
        "事業,案（円）,実績（円）,差額（円）", "miyoshi-premium,2400,1800,600",
        "national-phase2-card,2000,2000,0", "合計,4400,3800,600"]
    persons = (tmp_path / "csv" / "persons.csv").read_bytes().decode("utf-8-sig")
    assert persons.splitlines() == ["住民（マイキーID）,案（円）,実績（円）,差額（円）",
                                    "MK-A,3250,2750,500", "MK-B,650,550,100"]
    english = result.csv_files("en")["days.csv"].decode("utf-8-sig").splitlines()
    assert english[0] == "day (JST),draft (yen),paid (yen),difference (yen)"


def test_bad_input_is_an_error_that_says_where(tmp_path: Path, events: Path) -> None:
    typo = _draft(tmp_path, "  period:", "  peroid:")
    with pytest.raises(RuleFileError) as caught:
        compare(typo, events=events, rules=RULES)
    assert caught.value.problems[0].file == str(typo)
    good = _draft(tmp_path, RATE, RATE, "same.yaml")
    with pytest.raises(UnreadableEvents, match="cannot read the events file"):
        compare(good, events=tmp_path / "none.jsonl", rules=RULES)
    with pytest.raises(UnreadableEvents, match="cannot read the ledger"):
        compare(good, events=events, rules=RULES, paid=tmp_path / "none.jsonl")


def test_the_comparison_is_json_and_every_message_has_both_languages(
        tmp_path: Path, events: Path) -> None:
    assert check_table(MESSAGES) == []
    result = compare(_draft(tmp_path, RATE, RATE), events=events, rules=RULES)
    data = orjson.loads(result.to_json())
    assert "persons" not in data and data["summary"][0]["code"] == "compare.head"
    assert orjson.loads(result.to_json(persons=True))["persons"] == []


def test_a_ledger_day_is_the_jst_day() -> None:
    assert jst_day("2022-02-01T23:59:59+09:00") == "2022-02-01"
    assert jst_day("2022-02-01T15:00:00+00:00") == "2022-02-02"


MY_NUMBER = "123456789018"  # 12 digits with a valid check digit


def _refused_quickly(call: Any) -> BaseException:
    """What ``call()`` raised, within 10 seconds (old code read /dev/zero for ever)."""
    import signal

    def hung(signum: int, frame: object) -> None:
        raise TimeoutError("still reading")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(10)
    try:
        call()
    except Exception as exc:  # the test looks at it
        return exc
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    raise AssertionError("nothing was refused")


def test_a_ledger_carrying_a_my_number_is_refused_without_repeating_it(
        tmp_path: Path, events: Path) -> None:
    out = tmp_path / "out"
    assert CliRunner().invoke(app, ["replay", str(events), "--rules", str(RULES), "--out",
                                    str(out)]).exit_code == 0
    lines = (out / "ledger.jsonl").read_bytes().splitlines()
    entry = orjson.loads(lines[0])
    for changed in ({"person": MY_NUMBER}, {"points": MY_NUMBER},
                    {"event": f"t/{MY_NUMBER[:4]} {MY_NUMBER[4:8]} {MY_NUMBER[8:]}"}):
        paid = tmp_path / "paid.jsonl"
        paid.write_bytes(b"\n".join([orjson.dumps({**entry, **changed}), *lines[1:]]) + b"\n")
        draft = _draft(tmp_path, RATE, RATE)
        with pytest.raises(IntegrityError, match=r"paid\.jsonl:1: .*My Number") as caught:
            compare(draft, events=events, rules=RULES, paid=paid)
        assert MY_NUMBER not in str(caught.value) and MY_NUMBER[8:] not in str(caught.value)
        result = CliRunner().invoke(app, ["compare", str(draft), "--events", str(events),
                                          "--rules", str(RULES), "--paid", str(paid)])
        assert result.exit_code == 1 and MY_NUMBER[8:] not in result.output


def test_endless_or_huge_input_is_refused(tmp_path: Path, events: Path) -> None:
    draft = _draft(tmp_path, RATE, RATE)
    zero = Path("/dev/zero")
    refused = _refused_quickly(lambda: compare(draft, events=zero, rules=RULES))
    assert isinstance(refused, UnreadableEvents)
    assert str(refused) == "cannot read the events file /dev/zero: not a regular file"
    refused = _refused_quickly(lambda: compare(draft, events=events, rules=RULES, paid=zero))
    assert isinstance(refused, UnreadableEvents)
    assert str(refused) == "cannot read the ledger /dev/zero: not a regular file"
    result = CliRunner().invoke(app, ["compare", str(draft), "--events", str(events),
                                      "--rules", str(RULES), "--paid", str(tmp_path)])
    assert result.exit_code == 2 and "not a regular file" in result.output
    long = tmp_path / "long.jsonl"
    long.write_bytes(b'{"seq": 1, "pad": "' + b"x" * 200_000 + b'"}\n')
    with pytest.raises(IntegrityError, match=r"long\.jsonl:1: a line over 65,536 bytes"):
        compare(draft, events=events, rules=RULES, paid=long)

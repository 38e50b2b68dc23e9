"""Explaining one person: observed values beside requirements, caps, refused lines, totals, and
the ledger's figures where others share a limit."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from pointengine.catalog.loading import Catalog
from pointengine.cli.main import app
from pointengine.decide.eligibility import REQUIREMENTS, checks_for
from pointengine.errors import InputError, IntegrityError, MyNumberRejected, UnreadableEvents
from pointengine.i18n import LANGS, Text, check_table, say
from pointengine.replay.explain import MESSAGES, Explanation, explain_person, person_lines
from tests.world import APPLY, BUY, RULES

MIYOSHI = "342092"  # 広島県三次市: miyoshi-premium, 30% for residents at stores in the city
YOKKAICHI = "242021"  # 三重県四日市市


def _line(**fields: Any) -> bytes:
    return orjson.dumps(fields)


def _buy(n: int, amount: int, where: str, person: str = "MK-A", **more: Any) -> dict[str, Any]:
    return {**BUY, "id": f"b{n}", "person": person, "amount": amount, "store": f"ST{n}",
            "store_municipality": where, **more}


REFUND = {"type": "refund", "source": "t", "id": "r1", "person": "MK-A",
          "at": "2022-02-03T12:00:00+09:00", "provider": "paypay", "transaction": "b2",
          "amount": 5_000}
NO_PROVIDER = {k: v for k, v in _buy(7, 1_000, MIYOSHI).items() if k != "provider"}


def _stream(tmp_path: Path) -> Path:
    """MK-A lives in 三次市; the file holds their lines among others' (see each line)."""
    escaped = _line(**_buy(10, 1_000, MIYOSHI, person="MKXA")).replace(
        b'"MKXA"', b'"\\u004dK-A"')  # MK-A, written with a JSON escape
    lines = [
        _line(**{**APPLY, "residence": MIYOSHI}),  # 1
        _line(**_buy(1, 19_000, YOKKAICHI)),  # 2: a store in 四日市市
        _line(**_buy(3, 5_000, MIYOSHI, person="MK-AB")),  # 3: another person, MK-A a prefix
        _line(**{**_buy(4, 5_000, MIYOSHI, person="MK-C"), "store": "MK-A"}),  # 4: not theirs
        _line(**_buy(2, 10_000, MIYOSHI)),  # 5
        b"",  # 6
        _line(**NO_PROVIDER),  # 7: refused, malformed
        _line(**REFUND),  # 8: half of line 5's purchase
        _line(**_buy(1, 19_000, YOKKAICHI)),  # 9: line 2 again
        escaped,  # 10
        _line(**{**_buy(11, 1_000, MIYOSHI), "store": "123456789018"}),  # 11: a My Number
    ]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.fixture
def explained(tmp_path: Path) -> Explanation:
    return explain_person("MK-A", events=_stream(tmp_path), rules=RULES)


def _answer(explanation: Explanation, line: int, program: str) -> Any:
    [event] = [e for e in explanation.events if e.line == line]
    [answer] = [p for p in event.programs if p.program == program]
    return answer


def test_only_the_persons_lines_are_found_and_numbered_as_the_replay_numbers_them(
        tmp_path: Path) -> None:
    found = person_lines(_stream(tmp_path), "MK-A")
    # the whole id only (not MK-AB's line 3), and every line with a \u escape (line 10)
    assert [number for number, _ in found] == [1, 2, 4, 5, 7, 8, 9, 10, 11]
    assert found[3][1].startswith(b'{"type":"purchase"') and b'"b2"' in found[3][1]


def test_the_persons_events_in_order_and_their_refused_lines(explained: Explanation) -> None:
    assert [(e.line, e.key) for e in explained.events] == [
        (1, "t/a1"), (2, "t/b1"), (5, "t/b2"), (8, "t/r1"), (10, "t/b10")]
    assert [(r.line, r.code, r.source) for r in explained.refused] == [
        (7, "malformed", "events"), (9, "duplicate", "replay"), (11, "my_number", "events")]
    assert explained.refused[0].reason == "purchase.provider: Field required"
    assert b"123456789018" not in explained.to_json()
    assert explained.source == "replay"


def test_a_failed_check_shows_the_observed_value_beside_the_requirement(
        explained: Explanation) -> None:
    answer = _answer(explained, 2, "miyoshi-premium")
    assert not answer.eligible and answer.failed == "in_region"
    assert answer.observed == [Text("seen.store_place", {"store": "ST1", "code": YOKKAICHI,
                                                         "place": "三重県四日市市"})]
    assert answer.required == Text("check.in_region", {"where": "広島県三次市"})
    lines = explained.render("ja")
    assert ("  miyoshi-premium@v1: 対象外（in_region）: 実際 店舗 ST1（242021 三重県四日市市） ／ "
            "条件 広島県三次市内の店舗であること") in lines
    assert ("  miyoshi-premium@v1: nothing; failed in_region: observed store ST1 in 242021 "
            "三重県四日市市; required: the store is in 広島県三次市") in explained.render("en")


def test_a_cap_shows_what_was_wanted_what_was_awarded_and_the_cap(
        explained: Explanation) -> None:
    assert _answer(explained, 2, "national-phase2-card").awarded == 4_750
    card = _answer(explained, 5, "national-phase2-card")
    assert (card.wanted, card.awarded, card.limited_by) == (2_500, 250, ["person cap"])
    assert card.limits == [Text("limit.person", {"limit": 5_000})]
    assert "  national-phase2-card@v1: awarded 250 of 2,500; limited by person cap (5,000)" in (
        explained.render("en"))
    assert ("  national-phase2-card@v1: 2,500円のうち 250円 付与（1人あたり上限（5,000円）により"
            "減額）") in explained.render("ja")
    assert _answer(explained, 5, "miyoshi-premium").awarded == 3_000
    # the refund freed 125 of the cap: the escaped line's purchase gets that much of its 250
    late = _answer(explained, 10, "national-phase2-card")
    assert (late.wanted, late.awarded) == (250, 125)
    assert _answer(explained, 10, "miyoshi-premium").awarded == 300


def test_a_refund_and_the_totals_to_the_yen(explained: Explanation) -> None:
    [refund] = [e for e in explained.events if e.line == 8]
    assert refund.reversed == {"national-phase2-card": 125, "miyoshi-premium": 1_500}
    totals = {t.program: (t.awarded, t.reversed, t.net) for t in explained.totals}
    assert totals == {"national-phase2-card": (5_125, 125, 5_000),
                      "miyoshi-premium": (3_300, 1_500, 1_800)}
    assert explained.total is not None
    assert (explained.total.awarded, explained.total.reversed, explained.total.net) == (
        8_425, 1_625, 6_800)
    assert explained.render("en")[-1] == "  total: awarded 8,425, reversed 1,625, net 6,800"
    assert explained.render("ja")[-1] == "  合計: 付与 8,425円、取消 1,625円、差引 6,800円"


def _tiny_budget(tmp_path: Path) -> Path:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    miyoshi = rules / "342092-miyoshi" / "premium.yaml"
    miyoshi.write_text(miyoshi.read_text(encoding="utf-8").replace(
        "budget: {yen: 300000000}", "budget: {yen: 3100}"), encoding="utf-8")
    return rules


def test_with_the_ledger_a_budget_shared_with_others_clips_what_alone_was_paid(
        tmp_path: Path) -> None:
    rules = _tiny_budget(tmp_path)
    other = {**APPLY, "id": "a2", "person": "MK-B", "residence": MIYOSHI}
    stream = tmp_path / "events.jsonl"
    stream.write_bytes(b"\n".join([
        _line(**{**APPLY, "residence": MIYOSHI}), _line(**other),
        _line(**_buy(1, 10_000, MIYOSHI, person="MK-B")),  # MK-B takes 3,000 of 3,100
        _line(**_buy(2, 10_000, MIYOSHI)),  # MK-A wants 3,000; 100 are left
        _line(**NO_PROVIDER)]) + b"\n")
    out = tmp_path / "out"
    replayed = CliRunner().invoke(app, ["replay", str(stream), "--rules", str(rules),
                                        "--out", str(out)])
    assert replayed.exit_code == 0, replayed.output

    alone = explain_person("MK-A", events=stream, rules=rules)
    assert _answer(alone, 4, "miyoshi-premium").awarded == 3_000
    paid = explain_person("MK-A", events=stream, rules=rules, ledger=out / "ledger.jsonl",
                          rejects=out / "rejects.jsonl")
    answer = _answer(paid, 4, "miyoshi-premium")
    assert (answer.source, answer.wanted, answer.awarded, answer.replayed) == (
        "ledger", 3_000, 100, 3_000)
    assert answer.limits == [Text("limit.budget", {"limit": 3_100})]
    assert "  miyoshi-premium@v1: awarded 100 of 3,000; limited by program budget (3,100)" in (
        paid.render("en"))
    assert paid.notes == [Text("note.ledger_differs", {"count": 1})]
    assert {t.program: t.net for t in paid.totals} == {"miyoshi-premium": 100,
                                                       "national-phase2-card": 2_500}
    assert [(r.line, r.code, r.source) for r in paid.refused] == [(5, "malformed", "rejects")]
    assert paid.render("en")[1] == (f"awarded, reversed and totals: from the ledger "
                                    f"{out / 'ledger.jsonl'}")


def test_a_lottery_win_is_in_the_ledger_though_the_draw_is_not_the_persons_line(
        tmp_path: Path) -> None:
    stream = tmp_path / "events.jsonl"
    stream.write_bytes(b"\n".join([
        _line(**{**APPLY, "person": "MK-K", "residence": "431001"}),
        _line(type="participation", source="kumamoto", id="p1", person="MK-K",
              at="2022-05-01T10:00:00+09:00", municipality="431001", activity="walk",
              health_points=100),
        _line(type="lottery_draw", source="kumamoto", id="d1", person="MK-OFFICIAL",
              at="2023-04-03T10:00:00+09:00", program="kumamoto-health-lottery")]) + b"\n")
    out = tmp_path / "out"
    assert CliRunner().invoke(app, ["replay", str(stream), "--rules", str(RULES), "--out",
                                    str(out)]).exit_code == 0
    won = explain_person("MK-K", events=stream, rules=RULES, ledger=out / "ledger.jsonl")
    assert [(e.event, e.program, e.points) for e in won.other_ledger] == [
        ("kumamoto/d1#MK-K", "kumamoto-health-lottery", 5_000)]
    assert won.total is not None and won.total.net == 5_000
    alone = explain_person("MK-K", events=stream, rules=RULES)
    assert alone.other_ledger == [] and alone.total is not None and alone.total.net == 0


def test_a_my_number_or_no_mykey_id_is_refused_without_searching(tmp_path: Path) -> None:
    stream = _stream(tmp_path)
    for person in ("123456789018", "１２３４５６７８９０１８", "MK 1234 5678 9018"):
        with pytest.raises(MyNumberRejected) as caught:
            explain_person(person, events=stream, rules=RULES)
        assert "9018" not in str(caught.value)
    with pytest.raises(InputError):
        explain_person("MK A", events=stream, rules=RULES)
    with pytest.raises(UnreadableEvents, match="cannot read the events file"):
        explain_person("MK-A", events=tmp_path / "none.jsonl", rules=RULES)
    with pytest.raises(UnreadableEvents, match="cannot read the ledger"):
        explain_person("MK-A", events=stream, rules=RULES, ledger=tmp_path / "none.jsonl")
    damaged = tmp_path / "ledger.jsonl"
    damaged.write_bytes(b'{"person": "MK-A"}\n')
    with pytest.raises(IntegrityError, match=r"ledger\.jsonl:1:"):
        explain_person("MK-A", events=stream, rules=RULES, ledger=damaged)
    # the events file chosen as the ledger by mistake: said, not read as "nothing paid"
    with pytest.raises(IntegrityError, match="not a ledger"):
        explain_person("MK-NOBODY", events=stream, rules=RULES, ledger=stream)


def test_nothing_found_is_said_so(tmp_path: Path) -> None:
    nobody = explain_person("MK-Z", events=_stream(tmp_path), rules=RULES)
    assert not nobody.found and nobody.lines == 0


def test_the_explanation_is_json(explained: Explanation) -> None:
    data = orjson.loads(explained.to_json())
    assert data["person"] == "MK-A"
    failed = next(p for p in data["events"][1]["programs"] if p["program"] == "miyoshi-premium")
    assert failed["required"] == {"code": "check.in_region", "args": {"where": "広島県三次市"}}


def test_every_message_has_both_languages_and_every_text_renders(
        explained: Explanation, catalog: Catalog) -> None:
    assert check_table(MESSAGES) == []
    assert check_table(REQUIREMENTS) == []
    for lang in LANGS:
        assert explained.render(lang)
    # every check of every shipped program states its requirement in both languages, and its
    # English is the check's explain word for word
    for program in catalog.programs.values():
        for version in program.versions:
            for check in checks_for(version):
                assert check.requirement is not None
                assert say(MESSAGES, check.requirement, "en") == check.explain
                assert say(MESSAGES, check.requirement, "ja")


def test_a_ledger_without_the_event_says_so_rather_than_a_limit(tmp_path: Path) -> None:
    stream = _stream(tmp_path)
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    paid = explain_person("MK-A", events=stream, rules=RULES, ledger=empty)
    answer = _answer(paid, 5, "miyoshi-premium")
    assert (answer.awarded, answer.replayed, answer.limits) == (0, 3_000, [])
    assert answer.message == Text("answer.unrecorded", {"program": "miyoshi-premium",
                                                        "version": 1, "replayed": 3_000})
    english, japanese = paid.render("en"), paid.render("ja")
    assert ("  miyoshi-premium@v1: the ledger holds no record of this event (this person's "
            "lines decided alone: 3,000)") in english
    assert ("  miyoshi-premium@v1: 台帳にこのイベントの記録がありません（この住民の行だけで"
            "判定すると 3,000円）") in japanese
    assert not any("limited by" in line for line in english)
    assert not any("減額" in line for line in japanese)
    assert paid.notes[0] == Text("note.ledger_no_person", {"ledger": str(empty),
                                                           "person": "MK-A"})
    assert f"the ledger {empty} has no line for MK-A" in english[2]
    # another stream's ledger: lines of the person's, none for these events
    other = tmp_path / "other.jsonl"
    other.write_bytes(orjson.dumps({
        "seq": 1, "kind": "award", "event": "t/elsewhere", "person": "MK-A",
        "program": "miyoshi-premium", "version": 1, "points": 10, "provider": "paypay",
        "at": "2022-02-01T12:00:00+09:00", "transaction": None}) + b"\n")
    elsewhere = explain_person("MK-A", events=stream, rules=RULES, ledger=other)
    assert _answer(elsewhere, 5, "miyoshi-premium").message.code == "answer.unrecorded"
    assert all(n.code != "note.ledger_no_person" for n in elsewhere.notes)


def test_a_ledger_carrying_a_my_number_or_endless_is_refused(tmp_path: Path) -> None:
    import signal

    stream = _stream(tmp_path)
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_bytes(orjson.dumps({
        "seq": 1, "kind": "award", "event": "t/b2", "person": "MK-A",
        "program": "miyoshi-premium", "version": 1, "points": "123456789018",
        "provider": "paypay", "at": "2022-02-01T12:00:00+09:00", "transaction": None}) + b"\n")
    with pytest.raises(IntegrityError, match="My Number") as caught:
        explain_person("MK-A", events=stream, rules=RULES, ledger=ledger)
    assert "9018" not in str(caught.value)
    result = CliRunner().invoke(app, ["explain", "MK-A", "--events", str(stream), "--rules",
                                      str(RULES), "--ledger", str(ledger)])
    assert result.exit_code == 1 and "9018" not in result.output

    def hung(signum: int, frame: object) -> None:
        raise TimeoutError("still reading /dev/zero")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(10)
    try:
        result = CliRunner().invoke(app, ["explain", "MK-A", "--events", str(stream),
                                          "--rules", str(RULES), "--ledger", "/dev/zero"])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert result.exit_code == 2, result.output
    assert "cannot read the ledger /dev/zero: not a regular file" in result.output

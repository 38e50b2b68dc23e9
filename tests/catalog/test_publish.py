"""Publishing a new version: appended to the file, decided from its effective_from, audited;
refused (and audited) when it is not the staff's to publish or would rewrite the past."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
from pathlib import Path

import orjson
import pytest

from pointengine.catalog.loading import load_catalog
from pointengine.catalog.publish import MESSAGES, AuditTrail, changes, publish, publish_message
from pointengine.errors import OutputError, PublishRefused
from pointengine.i18n import check_table
from pointengine.model.jst import JST
from tests.world import RULES, World

NOW = dt.datetime(2022, 9, 1, 9, 0, tzinfo=JST)
OCTOBER = dt.datetime(2022, 10, 1, tzinfo=JST)
MIYOSHI = "342092-miyoshi/premium.yaml"


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    root = tmp_path / "rules"
    shutil.copytree(RULES, root)
    return root


@pytest.fixture
def trail(tmp_path: Path) -> AuditTrail:
    return AuditTrail(tmp_path / "state" / "audit.jsonl")


def _draft(rules: Path, old: str, new: str) -> str:
    text = (rules / MIYOSHI).read_text(encoding="utf-8")
    assert old in text
    return text.replace(old, new)


def _publish(rules: Path, trail: AuditTrail, draft: str, *, staff: str = "342092",
             when: dt.datetime = OCTOBER, program: str | None = "miyoshi-premium",
             new_file: str | None = None, reason: str = "市議会の議決により40%に") -> object:
    return publish(rules=rules, draft=draft, who="miyoshi.tanaka", staff_jurisdiction=staff,
                   reason=reason, effective_from=when, trail=trail, program=program,
                   new_file=new_file, now=NOW)


def test_a_new_rate_is_appended_as_version_2_and_pays_from_its_effective_from(
        rules: Path, trail: AuditTrail) -> None:
    before = (rules / MIYOSHI).read_text(encoding="utf-8")
    done = _publish(rules, trail, _draft(rules, "rate: 30%", "rate: 40%"))
    after = (rules / MIYOSHI).read_text(encoding="utf-8")
    assert after.startswith(before)  # history and comments untouched
    assert after[len(before):] == (
        "versions:\n"
        "  - version: 2\n"
        "    effective_from: 2022-10-01T00:00:00+09:00\n"
        "    note: 市議会の議決により40%に\n"
        "    award: {rate: 40%}\n")
    program = load_catalog(rules).programs["miyoshi-premium"]
    assert [v.version for v in program.versions] == [1, 2]
    world = World(load_catalog(rules))
    world.apply("MK-M", "2022-07-01", residence="342092")
    september = world.buy(10_000, "MK-M", "2022-09-30", where="342092")
    october = world.buy(10_000, "MK-M", "2022-10-01", where="342092")
    paid = {d.event.key: sum(o.awarded for o in d.applied.outcomes
                             if o.program == "miyoshi-premium") for d in (september, october)}
    assert list(paid.values()) == [3_000, 3_000]  # 30% then 40% up to the 6,000 cap: 3,000 left
    acts = trail.read()
    assert [a["action"] for a in acts] == ["publish"]
    assert acts[0]["version"] == 2 and acts[0]["who"] == "miyoshi.tanaka"
    assert acts[0]["reason"] == "市議会の議決により40%に"
    assert acts[0]["before_sha256"] != acts[0]["after_sha256"]
    assert done is not None


def test_the_40_percent_version_pays_40_percent(rules: Path, trail: AuditTrail) -> None:
    _publish(rules, trail, _draft(rules, "rate: 30%", "rate: 40%"))
    world = World(load_catalog(rules))
    world.apply("MK-M", "2022-07-01", residence="342092")
    october = world.buy(10_000, "MK-M", "2022-10-05", where="342092")
    assert [o.awarded for o in october.applied.outcomes if o.program == "miyoshi-premium"] \
        == [4_000]


def test_a_second_version_goes_after_the_first(rules: Path, trail: AuditTrail) -> None:
    _publish(rules, trail, _draft(rules, "rate: 30%", "rate: 40%"))
    draft = (rules / MIYOSHI).read_text(encoding="utf-8").replace("cap: 6000", "cap: 8000")
    _publish(rules, trail, draft, when=OCTOBER + dt.timedelta(days=31), reason="上限を8,000円に")
    versions = load_catalog(rules).programs["miyoshi-premium"].versions
    assert [(v.version, v.award.cap) for v in versions] == [(1, 6000), (2, 6000), (3, 8000)]


@pytest.mark.parametrize(("staff", "code"), [("431001", "not_your_jurisdiction"),
                                             ("340006", "not_your_jurisdiction"),
                                             ("national", "not_your_jurisdiction")])
def test_only_the_programs_own_jurisdiction_publishes(rules: Path, trail: AuditTrail,
                                                     staff: str, code: str) -> None:
    before = (rules / MIYOSHI).read_bytes()
    with pytest.raises(PublishRefused) as refused:
        _publish(rules, trail, _draft(rules, "rate: 30%", "rate: 40%"), staff=staff)
    assert refused.value.code == code
    assert (rules / MIYOSHI).read_bytes() == before
    assert [a["action"] for a in trail.read()] == ["publish_refused"]
    assert trail.read()[0]["code"] == code


def test_moving_a_program_to_ones_own_jurisdiction_is_refused(rules: Path,
                                                             trail: AuditTrail) -> None:
    draft = _draft(rules, 'jurisdiction: "342092"', 'jurisdiction: "431001"')
    with pytest.raises(PublishRefused) as refused:
        _publish(rules, trail, draft, staff="431001")
    assert refused.value.code == "not_your_jurisdiction"


@pytest.mark.parametrize(("old", "new", "when", "code"), [
    ("rate: 30%", "rate: 40%", NOW - dt.timedelta(days=1), "effective_in_past"),
    ("rate: 30%", "rate: 30%", OCTOBER, "no_change"),
    ("budget: {yen: 300000000}\n", "", OCTOBER, "field_removed"),
    ("rate: 30%", "rat: 40%", OCTOBER, "invalid"),
    ("id: miyoshi-premium", "id: miyoshi-premium-2", OCTOBER, "fixed_field"),
])
def test_refusals_change_nothing(rules: Path, trail: AuditTrail, old: str, new: str,
                                 when: dt.datetime, code: str) -> None:
    before = (rules / MIYOSHI).read_bytes()
    with pytest.raises(PublishRefused) as refused:
        _publish(rules, trail, _draft(rules, old, new), when=when)
    assert refused.value.code == code
    assert (rules / MIYOSHI).read_bytes() == before
    assert publish_message(refused.value, "ja") and publish_message(refused.value, "en")


def test_a_reason_is_required(rules: Path, trail: AuditTrail) -> None:
    with pytest.raises(PublishRefused) as refused:
        _publish(rules, trail, _draft(rules, "rate: 30%", "rate: 40%"), reason="  ")
    assert refused.value.code == "no_reason"


def test_a_new_program_is_written_in_the_staff_folder(rules: Path, trail: AuditTrail) -> None:
    draft = _draft(rules, "id: miyoshi-premium", "id: miyoshi-second").replace(
        "budget: {yen: 300000000}", "budget: {yen: 1000000}").replace(
        "period: {from: 2022-01-01", "period: {from: 2022-10-01")
    done = _publish(rules, trail, draft, program=None, new_file="second.yaml")
    path = rules / "342092-miyoshi" / "second.yaml"
    assert path.read_text(encoding="utf-8") == draft
    assert "miyoshi-second" in load_catalog(rules).programs
    with pytest.raises(PublishRefused) as again:
        _publish(rules, trail, draft.replace("id: miyoshi-second", "id: miyoshi-third"),
                 program=None, new_file="second.yaml")
    assert again.value.code == "exists"
    with pytest.raises(PublishRefused) as bad:
        _publish(rules, trail, draft.replace("id: miyoshi-second", "id: miyoshi-fourth"),
                 program=None, new_file="../../x.yaml")
    assert bad.value.code == "bad_file_name"
    assert done is not None


def test_changes_keep_what_a_version_writes() -> None:
    current = {"award": {"kind": "premium", "rate": "30%", "cap": 6000}, "on": ["purchase"]}
    draft = {"award": {"kind": "premium", "rate": "30%", "cap": 8000}, "on": ["purchase"]}
    assert changes(current, draft) == {"award": {"cap": 8000}}
    with pytest.raises(PublishRefused):
        changes(current, {"on": ["purchase"]})


def test_the_audit_trail_is_json_lines(tmp_path: Path) -> None:
    trail = AuditTrail(tmp_path / "audit.jsonl")
    trail.record("sign_in", "a", "342092", client="127.0.0.1")
    trail.record("sign_in", "b", "431001")
    lines = (tmp_path / "audit.jsonl").read_bytes().splitlines()
    assert [orjson.loads(line)["who"] for line in lines] == ["a", "b"]
    assert [a["who"] for a in trail.read("431001")] == ["b"]


def test_the_messages_have_both_languages() -> None:
    assert check_table(MESSAGES) == []


def test_a_rules_folder_given_relatively_publishes_too(rules: Path, trail: AuditTrail,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(rules.parent)
    _publish(Path("rules"), trail, _draft(rules, "rate: 30%", "rate: 40%"))
    assert [v.version for v in load_catalog(rules).programs["miyoshi-premium"].versions] == [1, 2]


def test_an_invalid_draft_is_refused_with_its_first_problem(rules: Path,
                                                            trail: AuditTrail) -> None:
    with pytest.raises(PublishRefused) as refused:
        _publish(rules, trail, _draft(rules, "rate: 30%", "rat: 30%"))
    assert "award.rat" in publish_message(refused.value, "en")
    assert "'rate' ではありませんか" in publish_message(refused.value, "ja")


def _versioned(rules: Path) -> str:
    """三次市's file with a version 2 that sets the cap to 5,000 from 2022-09-15."""
    path = rules / MIYOSHI
    path.write_text(path.read_text(encoding="utf-8") + (
        "versions:\n  - version: 2\n    effective_from: 2022-09-15T00:00:00+09:00\n"
        "    note: cap\n    award: {cap: 5000}\n"), encoding="utf-8")
    return path.read_text(encoding="utf-8")


def test_an_edit_that_a_later_version_overrides_is_refused(rules: Path,
                                                          trail: AuditTrail) -> None:
    text = _versioned(rules)
    with pytest.raises(PublishRefused) as refused:  # the base's cap: v2 sets it again
        _publish(rules, trail, text.replace("cap: 6000", "cap: 4000"))
    assert (refused.value.code, refused.value.args_) == ("overridden", {"field": "award.cap"})
    done = _publish(rules, trail, text.replace("award: {cap: 5000}", "award: {cap: 4000}"))
    assert "award: {cap: 4000}" in done.appended  # the newest version's value: it goes in


def test_version_entries_are_not_written_by_hand(rules: Path, trail: AuditTrail) -> None:
    text = (rules / MIYOSHI).read_text(encoding="utf-8") + (
        "versions:\n  - version: 2\n    effective_from: 2022-10-01T00:00:00+09:00\n"
        "    note: x\n    award: {rate: 40%}\n")
    with pytest.raises(PublishRefused) as refused:
        _publish(rules, trail, text)
    assert refused.value.code == "versions_written"


def test_an_award_of_another_kind_replaces_the_award_whole(rules: Path,
                                                          trail: AuditTrail) -> None:
    done = _publish(rules, trail, _draft(rules, "award: {kind: premium, rate: 30%, cap: 6000}",
                                         "award: {kind: grant, amount: 1000}"))
    assert "award: {kind: grant, amount: 1000}" in done.appended
    newest = load_catalog(rules).programs["miyoshi-premium"].current
    assert newest.award.kind == "grant"


def test_inline_versions_are_refused_with_a_reason(rules: Path, trail: AuditTrail) -> None:
    path = rules / MIYOSHI
    path.write_text(path.read_text(encoding="utf-8") + (
        "versions: [{version: 2, effective_from: 2022-09-15T00:00:00+09:00, note: cap, "
        "award: {cap: 5000}}]\n"), encoding="utf-8")
    text = path.read_text(encoding="utf-8").replace("{cap: 5000}", "{cap: 4000}")
    with pytest.raises(PublishRefused) as refused:
        _publish(rules, trail, text)
    assert refused.value.code == "inline_versions"


def test_a_draft_from_a_file_that_changed_since_is_refused(rules: Path,
                                                          trail: AuditTrail) -> None:
    opened = hashlib.sha256((rules / MIYOSHI).read_bytes()).hexdigest()
    first = _draft(rules, "rate: 30%", "rate: 40%")
    second = _draft(rules, "cap: 6000", "cap: 8000")
    publish(rules=rules, draft=first, who="a", staff_jurisdiction="342092", reason="a",
            effective_from=OCTOBER, trail=trail, program="miyoshi-premium", now=NOW,
            opened_sha256=opened)
    with pytest.raises(PublishRefused) as refused:
        publish(rules=rules, draft=second, who="b", staff_jurisdiction="342092", reason="b",
                effective_from=OCTOBER + dt.timedelta(days=1), trail=trail,
                program="miyoshi-premium", now=NOW, opened_sha256=opened)
    assert refused.value.code == "changed_since_opened"


def test_a_new_file_may_not_take_a_programs_id(rules: Path, trail: AuditTrail) -> None:
    draft = _draft(rules, "period: {from: 2022-01-01", "period: {from: 2022-10-01")
    with pytest.raises(PublishRefused) as refused:
        _publish(rules, trail, draft, program=None, new_file="dup.yaml")
    assert refused.value.code == "id_taken"
    assert not (rules / "342092-miyoshi" / "dup.yaml").exists()
    load_catalog(rules)  # still loads


def test_a_new_program_may_not_start_before_it_takes_effect(rules: Path,
                                                           trail: AuditTrail) -> None:
    draft = _draft(rules, "id: miyoshi-premium", "id: miyoshi-second")
    with pytest.raises(PublishRefused) as refused:
        _publish(rules, trail, draft, program=None, new_file="second.yaml")
    assert refused.value.code == "starts_before"


@pytest.mark.parametrize(("reason", "new_file"), [("番号 1234 5678 9018 の方から", None),
                                                 ("x", "123456789018.yaml")])
def test_a_my_number_is_refused_and_never_recorded(rules: Path, trail: AuditTrail,
                                                   reason: str, new_file: str | None) -> None:
    with pytest.raises(PublishRefused) as refused:
        _publish(rules, trail, _draft(rules, "rate: 30%", "rate: 40%"), reason=reason,
                 program=None if new_file else "miyoshi-premium", new_file=new_file)
    assert refused.value.code == "my_number"
    written = trail.path.read_text(encoding="utf-8")
    assert "9018" not in written and "publish_refused" in written


def test_nothing_is_published_when_the_trail_cannot_be_written(rules: Path,
                                                               tmp_path: Path) -> None:
    trail = AuditTrail(tmp_path / "trail-is-a-folder")
    trail.path.mkdir()
    before = (rules / MIYOSHI).read_bytes()
    with pytest.raises(OutputError):
        _publish(rules, trail, _draft(rules, "rate: 30%", "rate: 40%"))
    assert (rules / MIYOSHI).read_bytes() == before

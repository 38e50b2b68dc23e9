"""Drafts: text that is not (yet) a file, checked with the catalog it would join, quickly and
whatever it holds."""

from __future__ import annotations

import shutil
import statistics
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pointengine.catalog import messages
from pointengine.catalog.drafts import (
    MAX_DRAFT_CHARS,
    catalog_of,
    check_draft,
    check_rule_file,
    load_with_proposal,
)
from pointengine.errors import RuleFileError
from tests.world import RULES

MIYOSHI = (RULES / "342092-miyoshi" / "premium.yaml").read_text(encoding="utf-8")
RATE_LINE = next(n for n, row in enumerate(MIYOSHI.splitlines(), 1) if "rate: 30%" in row)


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    root = tmp_path / "rules"
    shutil.copytree(RULES, root)
    return root


def test_a_shipped_file_is_valid_and_checked_in_a_few_milliseconds() -> None:
    for name in ("342092-miyoshi/premium.yaml", "premium.yaml", "miyoshi-premium"):
        checked = check_draft(MIYOSHI, name=name, rules=RULES)
        assert checked.problems == [] and checked.elsewhere == []
        assert (checked.program_id, checked.jurisdiction) == ("miyoshi-premium", "342092")
        assert checked.catalog is not None and checked.program is not None
        assert checked.program.current.award.rate == 3000  # type: ignore[union-attr]
        assert len(checked.catalog.programs) == 23  # in place of the shipped file
    times = []
    for _ in range(7):
        started = time.perf_counter()
        check_draft(MIYOSHI.replace("rate: 30%", "rate: 20%"), name="premium.yaml", rules=RULES)
        times.append(time.perf_counter() - started)
    assert statistics.median(times) < 0.3  # about 6 ms here; the console checks each pause


def test_a_typo_is_located_at_the_draft_s_own_line_under_its_name() -> None:
    checked = check_draft(MIYOSHI.replace("rate: 30%", "rat: 30%"), name="premium.yaml",
                          rules=RULES)
    assert [str(p) for p in checked.problems] == [
        f"premium.yaml:{RATE_LINE}: award.rat: unknown field 'rat' (did you mean 'rate'?)"]
    assert checked.catalog is None and not checked.valid
    assert checked.program_id == "miyoshi-premium"
    assert checked.problems[0].say("ja") == "'rat' という項目はありません"


def test_a_name_inside_the_rules_folder_is_where_the_draft_stands() -> None:
    in_atsuma = check_draft(MIYOSHI, name="015814-atsuma/premium.yaml", rules=RULES)
    assert [p.message for p in in_atsuma.problems] == [
        "the file is in folder '015814-atsuma', which is not named by this code (342092-...)"]
    # a name that climbs out of the folder is only a name: the draft goes where its code says
    for name in ("../../etc/premium.yaml", "/tmp/premium.yaml"):
        assert check_draft(MIYOSHI, name=name, rules=RULES).problems == []


def test_a_new_program_joins_the_catalog() -> None:
    text = MIYOSHI.replace("id: miyoshi-premium", "id: miyoshi-second")
    checked = check_draft(text, name="second.yaml", rules=RULES)
    assert checked.valid and checked.catalog is not None
    assert {"miyoshi-premium", "miyoshi-second"} <= set(checked.catalog.programs)


def test_other_files_problems_neither_hide_the_draft_s_nor_count_as_its(rules: Path) -> None:
    atsuma = rules / "015814-atsuma" / "premium.yaml"
    atsuma.write_text(atsuma.read_text(encoding="utf-8").replace("provider: paypay",
                                                                 "provider: paypey"),
                      encoding="utf-8")
    draft = MIYOSHI.replace("rate: 30%", "rat: 30%")
    checked = check_draft(draft, name="premium.yaml", rules=rules)
    assert [p.field for p in checked.problems] == ["award.rat"]
    assert [(p.file, p.field) for p in checked.elsewhere] == [
        (str(atsuma), "providers.0.provider")]
    fine = check_draft(MIYOSHI, name="premium.yaml", rules=rules)
    assert fine.valid and fine.catalog is not None and "atsuma-premium" not in fine.catalog.programs
    rulefile = rules.parent / "premium.yaml"
    rulefile.write_text(draft, encoding="utf-8")
    with pytest.raises(RuleFileError) as caught:
        load_with_proposal(rulefile, rules)
    assert [(p.file, p.field) for p in caught.value.problems] == [
        (str(rulefile), "award.rat"), (str(atsuma), "providers.0.provider")]


def test_a_conflict_with_another_file_is_reported_on_the_draft(rules: Path) -> None:
    atsuma = (RULES / "015814-atsuma" / "premium.yaml").read_text(encoding="utf-8")
    (rules / "015814-atsuma" / "premium.yaml").write_text(
        atsuma + "person_total: {group: hokkaido, cap: 9000}\n", encoding="utf-8")
    # the draft's folder sorts before atsuma's: it is still the one told
    draft = atsuma.replace("atsuma-premium", "atsuma-more") + \
        "person_total: {group: hokkaido, cap: 8000}\n"
    checked = check_draft(draft, name="015814-aaa/more.yaml", rules=rules)
    last = len(draft.splitlines())
    assert [str(p) for p in checked.problems] == [
        f"015814-aaa/more.yaml:{last}: person_total.cap: group 'hokkaido' has cap 9000 in "
        "atsuma-premium but 8000 here"]
    assert checked.elsewhere == []
    national = check_draft(atsuma + "person_total: {group: national-phase2, cap: 20000}\n",
                           name="premium.yaml", rules=RULES)
    assert [p.field for p in national.problems] == ["person_total.group"]


ODD = [
    "", "\n", "hello", "- 1\n- 2\n", "{}", "[", "]", ": :", "\t", "\x00\x01\x02", "\ufeff",
    "\ud800", "id: \udfff\n", "a: \x85b\u2028c\u2029d\r\re\n", "!!binary AAAA",
    "id: !!python/object/apply:os.system [ls]\n", "a: !foo x\n", "a: !!timestamp x\n",
    "&a [*a]", "a: &x 1\nb: *x\n", "%YAML 1.1\n%YAML 1.1\n---\na: 1\n", "a: 1\n---\nb: 2\n",
    "a: " + "[" * 5_000, "a: " + "{a: " * 2_000,
    "x:\n" + "".join(" " * i + "a:\n" for i in range(1, 400)),
    "? [a, b]\n: 1\n", "versions: [1, 2, {version: x}]\n", "versions:\n  - 3\n  - version: 2\n",
    MIYOSHI.replace("award:", "award: [").replace("budget", "\tbudget"),
    MIYOSHI + "versions:\n  - {}\n  - version: 9\n    effective_from: x\n",
    MIYOSHI.replace('"342092"', "342092.5"), MIYOSHI.replace('"342092"', "[]"),
    MIYOSHI.replace("id: miyoshi-premium", "id: national-phase2-card")  # in its place: a
    .replace('"342092"', "national"),  # national file outside national/
    bytes(range(256)).decode("latin-1"),
]


@pytest.mark.parametrize("text", ODD, ids=range(len(ODD)))
def test_any_text_gets_problems_never_an_exception(text: str) -> None:
    checked = check_draft(text, name="draft.yaml", rules=RULES)
    assert checked.problems
    assert all(p.file == "draft.yaml" and p.line >= 1 for p in checked.problems)
    assert all(p.text is not None for p in checked.problems)
    assert checked.elsewhere == []
    for problem in checked.problems:
        assert problem.describe("ja") and messages.as_dict(problem, "ja")["message"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300) | st.lists(st.sampled_from(
    ["id:", " x", "\n", "  ", "- ", "[", "]", "{", "}", ":", "'", '"', "#", "&a", "*a", "!!",
     "\t", "award", "rate: 25%", "versions:", "\n  - ", "version: 2", "\u3000"]),
    max_size=60).map("".join))
def test_random_text_gets_problems_never_an_exception(text: str) -> None:
    checked = check_draft(text, name="draft.yaml", rules=RULES)
    assert checked.problems
    assert all(p.file == "draft.yaml" and p.line >= 1 for p in checked.problems)


def test_a_my_number_in_a_draft_is_a_problem_and_never_repeated() -> None:
    text = MIYOSHI.replace("id: miyoshi-premium", "id: '123456789018'\n# 1234 5678 9018")
    checked = check_draft(text, name="draft.yaml", rules=RULES)
    assert [(p.line, p.text.code if p.text else None) for p in checked.problems][:2] == [
        (3, "file.my_number"), (4, "file.my_number")]
    said = [str(p) for p in checked.problems] + [p.describe("ja") for p in checked.problems]
    said += [str(messages.as_dict(p, "en")) for p in checked.problems]
    assert not any("123456789018" in s or "1234 5678 9018" in s for s in said)


def test_a_text_longer_than_any_rule_file_is_not_read() -> None:
    started = time.perf_counter()
    checked = check_draft("a: [" + "1," * MAX_DRAFT_CHARS + "]\n", name="d.yaml", rules=RULES)
    assert time.perf_counter() - started < 0.1
    [problem] = checked.problems
    assert problem.text is not None and problem.text.code == "file.too_large"


def test_a_file_is_checked_with_the_catalog_it_is_in(rules: Path, tmp_path: Path) -> None:
    mine = rules / "342092-miyoshi" / "premium.yaml"
    assert catalog_of(mine) == rules
    assert check_rule_file(mine).valid
    mine.write_text(MIYOSHI.replace("rate: 30%", "rat: 30%"), encoding="utf-8")
    checked = check_rule_file(mine)
    assert checked.in_catalog and checked.rules == rules
    assert [str(p) for p in checked.problems] == [
        f"{mine}:{RATE_LINE}: award.rat: unknown field 'rat' (did you mean 'rate'?)"]
    outside = tmp_path / "draft.yml"
    outside.write_text(MIYOSHI, encoding="utf-8")
    assert catalog_of(outside) is None
    draft = check_rule_file(outside, rules=rules)
    assert not draft.in_catalog and draft.valid and draft.rules == rules
    assert draft.elsewhere == []  # the broken file it revises is not in its catalog
    gone = check_rule_file(tmp_path / "nope.yaml", rules=rules)
    assert [p.message for p in gone.problems] == ["no such rule file"]


def test_a_draft_named_by_a_relative_path_stands_where_its_jurisdiction_says(
        rules: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sub = tmp_path / "drafts" / "sub"
    sub.mkdir(parents=True)
    (sub / "p.yaml").write_text(MIYOSHI.replace("rate: 30%", "rate: 20%"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    draft = Path("drafts/sub/p.yaml")
    checked = check_rule_file(draft, rules=Path("rules"))
    assert checked.problems == [] and not checked.in_catalog
    assert checked.program is not None and checked.program.current.award.rate == 2000  # type: ignore[union-attr]
    catalog, program_id = load_with_proposal(draft, Path("rules"))
    assert (program_id, catalog.programs[program_id].path) == ("miyoshi-premium", draft)
    # a file of one rules folder is a draft for another: it revises the namesake there
    shutil.copytree(rules, tmp_path / "rules_edit")
    shipped = Path("rules/342092-miyoshi/premium.yaml")
    catalog, program_id = load_with_proposal(shipped, Path("rules_edit"))
    assert (program_id, len(catalog.programs)) == ("miyoshi-premium", 23)
    # named from its own folder, a file of the rules folder is checked in place
    monkeypatch.chdir(rules / "342092-miyoshi")
    own = check_rule_file(Path("premium.yaml"), rules=rules)
    assert own.in_catalog and own.problems == [] and own.program_id == "miyoshi-premium"


def test_a_provider_list_is_checked_as_one(rules: Path) -> None:
    checked = check_rule_file(rules / "providers.yaml")
    assert checked.provider_list and checked.valid and checked.problems == []
    assert checked.catalog is not None and len(checked.catalog.providers) > 0
    (rules / "providers.yaml").write_text("providers: [{id: 7}]\n", encoding="utf-8")
    broken = check_rule_file(rules / "providers.yaml")
    assert broken.provider_list and not broken.valid
    assert {p.file for p in broken.problems} == {str(rules / "providers.yaml")}


def test_a_rules_folder_that_does_not_exist_is_said_so(tmp_path: Path) -> None:
    from pointengine.errors import UnreadableEvents

    draft = tmp_path / "p.yaml"
    draft.write_text(MIYOSHI, encoding="utf-8")
    with pytest.raises(UnreadableEvents, match="no such file or folder"):
        load_with_proposal(draft, tmp_path / "nope")

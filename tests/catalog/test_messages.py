"""Every problem of a rule file has a code, said in Japanese and in English; the English is
what ``str(problem)`` always said."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from pydantic_core import PydanticKnownError

import pointengine.catalog
from pointengine.catalog import messages
from pointengine.catalog.loading import check_catalog, load_catalog
from pointengine.catalog.messages import MESSAGES, PHRASES, Either, Phrase, from_model_error
from pointengine.catalog.programs import (
    Period,
    ProgramVersion,
    Provider,
    Restriction,
)
from pointengine.errors import Problem, RuleFileError
from pointengine.i18n import Text, check_table
from tests.catalog.test_catalog import ATSUMA, rules, write
from tests.world import RULES

__all__ = ["rules"]  # the fixture, imported for pytest

CATALOG = Path(pointengine.catalog.__file__).parent
CLI = CATALOG.parent / "cli" / "main.py"


def test_the_table_has_both_languages_with_the_same_placeholders() -> None:
    assert check_table(MESSAGES) == []


def _codes_in_source() -> set[str]:
    """Every code written in the source that makes problems, and in the validate command."""
    command = CLI.read_text(encoding="utf-8").split("\ndef validate(")[1].split("\n@app.")[0]
    texts = [(CATALOG / name).read_text(encoding="utf-8")
             for name in ("rulefile.py", "loading.py", "drafts.py", "messages.py",
                          "../errors.py")]
    found: set[str] = set()
    for text in [*texts, command]:
        found |= set(re.findall(r'Text\(\s*["\']([a-z_]+(?:\.[a-z_0-9]+)*)["\']', text))
        found |= set(re.findall(r'words\(\s*"(validate\.[a-z_.]+)"', text))
        found |= {f"validate.head.{name}" for name in re.findall(
            r'words\(f"validate\.head\.\{name\}"\)[^)]*\(([^)]*)\)', text, re.DOTALL)
            for name in re.findall(r'"(\w+)"', name)}
    return found


def test_every_code_the_source_uses_is_in_the_table_and_every_one_is_used() -> None:
    used = _codes_in_source()
    assert used - set(MESSAGES) == set()
    # pydantic's and the rule language's are chosen by the error, not written out
    dynamic = {c for c in MESSAGES if c.startswith(("pydantic.", "model."))}
    assert set(MESSAGES) - used - dynamic == set()
    assert {"field.unknown", "validate.head.on", "catalog.group_cap"} <= used


@pytest.mark.parametrize("code", sorted(c for c in MESSAGES if c.startswith("pydantic.")))
def test_the_english_of_pydantic_s_errors_is_pydantic_s_own(code: str) -> None:
    kind = code.removeprefix("pydantic.")
    ctx: dict[str, Any] = {"ge": 1, "gt": 0, "le": 150, "lt": 3, "error": "input is too short",
                           "pattern": "^[a-z]$", "class_name": "Premium",
                           "field_type": "Tuple", "min_length": 1, "actual_length": 0}
    names = set(re.findall(r"{(\w+)}", MESSAGES[code]["en"]))
    english = PydanticKnownError(kind, {k: v for k, v in ctx.items()  # type: ignore[arg-type]
                                        if k in names or kind == "too_short"}).message()
    text = messages.from_pydantic(kind, ctx, english)
    assert text.code == code
    assert messages.render(text, "en") == english
    assert messages.render(text, "ja") != english


def _value_errors() -> list[str]:
    """The message of each ``ValueError`` the rule language raises, by triggering each."""
    base: dict[str, Any] = {"id": "x-y", "name": "n", "jurisdiction": "015814",
                            "on": ["purchase"],
                            "award": {"kind": "premium", "rate": "25%", "cap": 1}}
    attempts: list[tuple[Any, dict[str, Any]]] = [
        (ProgramVersion, {**base, "award": {"kind": "premium", "rate": 0.25, "cap": 1}}),
        (ProgramVersion, {**base, "award": {"kind": "premium", "rate": "a lot", "cap": 1}}),
        (ProgramVersion, {**base, "award": {"kind": "premium", "rate": "0%", "cap": 1}}),
        (Period, {"from": "2022-03-01", "to": "2022-02-01"}),
        (Restriction, {"stores": "target_stores"}),
        (Restriction, {"target_stores": ["S1"]}),
        (ProgramVersion, {**base, "period_caps": [{"per": "month", "cap": 1},
                                                  {"per": "month", "cap": 2}]}),
        (Provider, {"id": "pp", "name": "P", "kind": "qr_code", "basis": "both"}),
    ]
    found = []
    for model, data in attempts:
        with pytest.raises(ValidationError) as caught:
            model.model_validate(data)
        [error] = [e for e in caught.value.errors() if e["type"] == "value_error"]
        found.append(str(error["msg"]).removeprefix("Value error, "))
    return found


def test_every_check_of_the_rule_language_has_a_code() -> None:
    source = (CATALOG / "programs.py").read_text(encoding="utf-8")
    errors = _value_errors()
    # one attempt per ValueError the rule language raises: a new check needs its words here
    assert len(errors) == source.count("raise ValueError(")
    texts = [from_model_error(message) for message in errors]
    assert [t.code for t in texts] == [
        "model.rate_not_text", "model.rate_not_percent", "model.rate_range",
        "model.period_reversed", "model.no_target_stores", "model.target_stores_unused",
        "model.period_cap_twice", "model.both_bases"]
    assert [messages.render(t, "en") for t in texts] == errors
    assert messages.render(texts[3], "ja") == (
        "期間の終わり（2022-02-01）が始まり（2022-03-01）より前です")


def japanese(root: Path) -> list[str]:
    with pytest.raises(RuleFileError) as caught:
        load_catalog(root)
    assert all(p.text is not None for p in caught.value.problems)
    return [p.describe("ja") for p in caught.value.problems]


def test_a_typo_is_said_in_japanese_with_its_suggestion(rules: Path) -> None:
    path = write(rules, "015814-atsuma/premium.yaml", ATSUMA.replace("  rate: 25%", "  rat: 25%"))
    [problem] = load_problems(rules)
    assert str(problem) == f"{path}:10: award.rat: unknown field 'rat' (did you mean 'rate'?)"
    assert problem.message == "unknown field 'rat'"
    assert problem.say("ja") == "'rat' という項目はありません"
    assert messages.hint(problem, "ja") == "'rate' ではありませんか？"
    assert messages.hint(problem, "en") == "did you mean 'rate'?"
    assert problem.describe("ja") == (
        f"{path}:10: award.rat: 'rat' という項目はありません（'rate' ではありませんか？）")
    assert problem.describe("en") == str(problem)
    assert messages.as_dict(problem, "ja") == {
        "file": str(path), "line": 10, "field": "award.rat", "severity": "error",
        "code": "field.unknown", "message": "'rat' という項目はありません", "suggestion": "rate",
        "hint": "'rate' ではありませんか？"}


def load_problems(root: Path) -> list[Problem]:
    with pytest.raises(RuleFileError) as caught:
        load_catalog(root)
    return caught.value.problems


@pytest.mark.parametrize(("edit", "english", "ja"), [
    (lambda t: t + "persons: residents\n",
     "unknown field 'persons' here: it belongs under 'restriction', 'providers' or 'budget'",
     "項目 'persons' はここには書けません。'restriction'、'providers' または 'budget' の下に"
     "書きます"),
    (lambda t: t.replace("name: 厚真町 プレミアム\n", ""),
     "missing required field 'name'", "必須の項目 'name' がありません"),
    (lambda t: t.replace("cap: 5000", "cap: '5000'"),
     "Input should be a valid integer (got '5000')", "整数を書いてください（書かれた値: '5000'）"),
    (lambda t: t.replace("[purchase]", "[purchse]"),
     "invalid value 'purchse', expected one of: 'purchase', 'charge', 'mynapoint_application', "
     "'health_insurance_registration', 'public_funds_account_registration', 'participation', "
     "'lottery_draw'",
     "値 'purchse' は使えません。'purchase', 'charge', 'mynapoint_application', "
     "'health_insurance_registration', 'public_funds_account_registration', 'participation', "
     "'lottery_draw' のいずれかにしてください"),
    (lambda t: t + "conditions:\n  period: {from: 2022-02-30, to: 2022-03-31}\n",
     "Input should be a valid date or datetime, day value is outside expected range "
     "(got '2022-02-30')",
     "日付（例: 2022-01-01）として読めません: 日の値が範囲外です（書かれた値: '2022-02-30'）"),
    (lambda t: t + "conditions:\n  period: {from: 2022-03-01, to: 2022-02-01}\n",
     "the period ends (2022-02-01) before it starts (2022-03-01)",
     "期間の終わり（2022-02-01）が始まり（2022-03-01）より前です"),
    (lambda t: t.replace("  cap: 5000", "  cap: 5000\n  cap: 6000"),
     "duplicate key 'cap', already defined on line 11",
     "キー 'cap' が重複しています（11 行目で定義済み）"),
    (lambda t: t.replace("  rate: 25%", "\trate: 25%"),
     "YAML syntax error: found character '\\t' that cannot start any token (while scanning "
     "for the next token); indent with spaces, not tabs",
     "YAML の書き方に誤りがあります: 値の先頭に '\\t' は書けません（次の要素の読み取り中）。"
     "字下げにはタブではなく半角空白を使ってください"),
    (lambda t: t.replace("name: 厚真町 プレミアム", 'name: "厚真町'),
     "YAML syntax error: found unexpected end of stream (while scanning a quoted scalar on "
     "line 2)",
     "YAML の書き方に誤りがあります: 閉じられないままファイルが終わっています（2 行目からの"
     "引用符で囲まれた値の読み取り中）"),
    (lambda t: t.replace("provider: paypay", "provider: paypey"),
     "unknown provider 'paypey'", "決済事業者 'paypey' は一覧（providers.yaml）にありません"),
    (lambda t: t.replace("jurisdiction: 015814", "jurisdiction: 015815"),
     "unknown local government code 015815", "地方公共団体コード 015815 はありません"),
    (lambda t: t.replace("id: atsuma-premium", "id: Atsuma"),
     "String should match pattern '^[a-z0-9][a-z0-9\\-]{1,62}$' (got 'Atsuma')",
     "ID は英小文字・数字・'-' の 2〜63 文字で、英小文字か数字で始めてください（パターン "
     "'^[a-z0-9][a-z0-9\\-]{1,62}$'）（書かれた値: 'Atsuma'）"),
])
def test_problems_made_from_pydantic_s_errors_and_the_catalog_s_are_said_in_both(
        rules: Path, edit: Any, english: str, ja: str) -> None:
    write(rules, "015814-atsuma/premium.yaml", edit(ATSUMA))
    [problem] = load_problems(rules)
    assert (problem.message, problem.say("ja")) == (english, ja)


def test_a_warning_is_tagged_in_japanese(rules: Path) -> None:
    write(rules, "015814-atsuma/premium.yaml",
          ATSUMA.replace("restriction: {stores: in_region}\n", ""))
    [warning] = load_catalog(rules).warnings
    assert warning.describe("ja").endswith(
        "類型 A は国の事業のためのものです [警告]")


def test_every_file_problem_of_a_broken_catalog_has_a_code(tmp_path: Path) -> None:
    root = tmp_path / "rules"
    shutil.copytree(RULES, root)
    (root / "342092-miyoshi" / "premium.yaml").rename(root / "342092-miyoshi" / "premium.yml")
    write(root, "national/premium.yaml", ATSUMA)
    write(root, "015814-atsuma/copy.yaml", "# a copy\n" + (
        RULES / "015814-atsuma" / "premium.yaml").read_text(encoding="utf-8"))
    checked = check_catalog(root)
    assert {p.text.code for p in checked.problems if p.text} == {
        "file.misnamed", "catalog.national_folder", "catalog.id_taken"}
    assert all(p.text is not None for p in checked.problems)
    said = [p.say("ja") for p in checked.problems]
    assert any(s.startswith("事業 ID 'atsuma-premium' は既に ") for s in said)


def test_a_my_number_in_a_file_is_a_problem_and_never_repeated(rules: Path) -> None:
    path = write(rules, "015814-atsuma/premium.yaml",
                 ATSUMA.replace("jurisdiction: 015814", "jurisdiction: 123456789018"))
    found = load_problems(rules)
    assert [str(p) for p in found] == [
        f"{path}:3: <file>: this line holds a My Number (12 digits with a valid check digit): a"
        " rule file never does; remove it",
        f"{path}:3: jurisdiction: unknown local government code ************",
    ]
    assert "123456789018" not in repr([*found, *(p.describe("ja") for p in found)])


def test_phrases_and_alternatives_render_in_each_language() -> None:
    assert messages.render(Text("yaml.syntax", {"problem": Phrase("could not find expected ':'")}),
                           "ja") == "YAML の書き方に誤りがあります: 「:」がありません"
    unknown = Phrase("something PyYAML says one day")
    assert messages.render(Text("yaml.syntax", {"problem": unknown}), "ja").endswith(
        "something PyYAML says one day")
    parents = Text("field.under", {"parents": Either(("'a'", "'b'", "'c'"))})
    assert messages.render(parents, "en") == "under 'a', 'b' or 'c'"
    assert messages.render(parents, "ja") == "'a'、'b' または 'c' の下に書きます"
    for pattern, ja in PHRASES:  # every Japanese phrase names only the English one's parts
        assert set(re.findall(r"{(\w+)}", ja)) <= set(pattern.groupindex)


def test_a_problem_made_without_a_code_says_its_message_in_both() -> None:
    plain = Problem("f.yaml", 1, "x", "the rules could not be loaded")
    assert plain.say("ja") == plain.say("en") == "the rules could not be loaded"
    assert plain.describe("ja") == "f.yaml:1: x: the rules could not be loaded"

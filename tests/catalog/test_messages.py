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
from pointengine.catalog.rulefile import LineMap, problems_from_validation_error
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
    """Every code written in the source that makes problems (the rule language's checks
    included), and in the validate command."""
    command = CLI.read_text(encoding="utf-8").split("\ndef validate(")[1].split("\n@app.")[0]
    texts = [(CATALOG / name).read_text(encoding="utf-8")
             for name in ("rulefile.py", "loading.py", "drafts.py", "messages.py",
                          "programs.py", "../errors.py")]
    found: set[str] = set()
    for text in [*texts, command]:
        found |= set(re.findall(
            r'(?:Text|_refusal)\(\s*["\']([a-z_]+(?:\.[a-z_0-9]+)*)["\']', text))
        found |= set(re.findall(r'words\(\s*"(validate\.[a-z_.]+)"', text))
        found |= {f"validate.head.{name}" for name in re.findall(
            r'words\(f"validate\.head\.\{name\}"\)[^)]*\(([^)]*)\)', text, re.DOTALL)
            for name in re.findall(r'"(\w+)"', name)}
    return found


def test_every_code_the_source_uses_is_in_the_table_and_every_one_is_used() -> None:
    used = _codes_in_source()
    assert used - set(MESSAGES) == set()
    # pydantic's are chosen by the error's type, not written out
    dynamic = {c for c in MESSAGES if c.startswith("pydantic.")}
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


_BASE: dict[str, Any] = {"id": "x-y", "name": "n", "jurisdiction": "015814",
                         "on": ["purchase"], "award": {"kind": "premium", "rate": "25%", "cap": 1}}
_CHECKS: list[tuple[Any, dict[str, Any], str, str, dict[str, str], str]] = [
    # model, data, the field, the code, its arguments, the Japanese
    (ProgramVersion, {**_BASE, "award": {"kind": "premium", "rate": 0.25, "cap": 1}},
     "award.rate", "model.rate_not_text", {},
     "率は百分率の文字列で書いてください（例: '25%'、'12.5%'）"),
    (ProgramVersion, {**_BASE, "award": {"kind": "premium", "rate": "a lot", "cap": 1}},
     "award.rate", "model.rate_not_percent", {"value": "'a lot'"},
     "'a lot' は '25%' や '12.5%' のような百分率ではありません"),
    (ProgramVersion, {**_BASE, "award": {"kind": "premium", "rate": "0%", "cap": 1}},
     "award.rate", "model.rate_range", {"value": "'0%'"},
     "'0%': 率は 0% より大きく 100% 以下にしてください"),
    (Period, {"from": "2022-03-01", "to": "2022-02-01"},
     "<root>", "model.period_reversed", {"to": "2022-02-01", "start": "2022-03-01"},
     "期間の終わり（2022-02-01）が始まり（2022-03-01）より前です"),
    (Restriction, {"stores": "target_stores"},
     "<root>", "model.no_target_stores", {},
     "stores: target_stores には対象店舗の一覧 target_stores が必要です"),
    (Restriction, {"target_stores": ["S1"]},
     "<root>", "model.target_stores_unused", {},
     "target_stores は stores が 'target_stores' のときだけ使われます"),
    (ProgramVersion, {**_BASE, "period_caps": [{"per": "month", "cap": 1},
                                               {"per": "month", "cap": 2}]},
     "<root>", "model.period_cap_twice", {},
     "period_caps: 期間（per）はそれぞれ 1 回だけ書いてください"),
    (Provider, {"id": "pp", "name": "P", "kind": "qr_code", "basis": "both"},
     "basis", "model.both_bases", {},
     "決済事業者の付与の基準は 'charge'（チャージ）か 'purchase'（お買い物）の一方です。"
     "両方を数えると、チャージしてから使ったお金に二重に付与します"),
]
"""Each check of the rule language, triggered: what it says, in its code and in Japanese."""

_ENGLISH = [
    "write a rate as a percentage string, e.g. '25%' or '12.5%'",
    "'a lot' is not a percentage like '25%' or '12.5%'",
    "'0%': a rate must be above 0% and at most 100%",
    "the period ends (2022-02-01) before it starts (2022-03-01)",
    "stores: target_stores needs a non-empty target_stores list",
    "target_stores is only read when stores is 'target_stores'",
    "period_caps: give each period (per) once",
    "a provider awards on one basis, 'charge' or 'purchase': counting both would pay twice "
    "for money charged and then spent",
]
"""The English each check said when it raised ``ValueError``: what scripts and tests read."""


def test_every_check_of_the_rule_language_raises_its_code() -> None:
    source = (CATALOG / "programs.py").read_text(encoding="utf-8")
    # one attempt per check: a new check needs its words and its case here
    # every raise is a refusal with its code (no ValueError, no assert, read back by its words)
    assert set(re.findall(r"^\s*(raise|assert)\b\s*(\w*)", source, re.MULTILINE)) == {
        ("raise", "_refusal")}
    raised = re.findall(r'raise _refusal\(\s*"(model\.\w+)"', source)
    assert sorted(raised) == sorted(code for _, _, _, code, _, _ in _CHECKS)
    for model, data, _, code, args, _ in _CHECKS:
        with pytest.raises(ValidationError) as caught:
            model.model_validate(data)
        [error] = caught.value.errors(include_url=False)
        assert (error["type"], error.get("ctx", {})) == (code, args)


@pytest.mark.parametrize(("model", "data", "field", "code", "args", "ja", "english"),
                         [(*check, english) for check, english in zip(_CHECKS, _ENGLISH,
                                                                      strict=True)],
                         ids=[check[3] for check in _CHECKS])
def test_each_check_is_a_problem_with_its_code_said_in_both(
        model: Any, data: dict[str, Any], field: str, code: str, args: dict[str, str],
        ja: str, english: str) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    [found] = problems_from_validation_error(Path("f.yaml"), caught.value, LineMap(), model)
    assert found.text == Text(code, args)
    assert (found.field, found.message, str(found)) == (
        field, english, f"f.yaml:1: {field}: {english}")
    assert found.say("ja") == ja
    assert messages.as_dict(found, "ja")["code"] == code


def test_an_error_without_its_arguments_or_code_is_said_as_it_reads() -> None:
    # a check's error missing an argument its words name, or of a code the table lacks:
    # never a KeyError, the English as the detail
    english = "the period ends (x) before it starts (y)"
    assert from_model_error("model.period_reversed", {"to": "x"}, english) == Text(
        "value.invalid", {"detail": english})
    assert from_model_error("model.no_such_check", {}, "odd") == Text(
        "value.invalid", {"detail": "odd"})
    assert messages.render(from_model_error("model.no_such_check", {}, "odd"), "ja") == (
        "値が正しくありません: odd")


def test_a_rate_holding_a_my_number_is_refused_without_repeating_it() -> None:
    data = {**_BASE, "award": {"kind": "premium", "rate": "123456789018", "cap": 1}}
    with pytest.raises(ValidationError) as caught:
        ProgramVersion.model_validate(data)
    [found] = problems_from_validation_error(Path("f.yaml"), caught.value, LineMap(),
                                             ProgramVersion)
    assert found.text is not None and found.text.code == "model.rate_not_percent"
    assert "123456789018" not in repr([found, found.say("ja"), found.say("en")])


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

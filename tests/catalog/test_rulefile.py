"""Tests for pointengine.catalog.rulefile: YAML → pydantic model, with located problems."""

from __future__ import annotations

import datetime
import textwrap
import time
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pointengine.catalog.rulefile import (
    LineMap,
    load_and_validate,
    load_yaml,
    located,
    problems_from_validation_error,
    suggest,
    validate_file,
)
from pointengine.errors import Problem, RuleFileError


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Premium(Strict):
    kind: Literal["premium"]
    rate: float
    cap: int | None = None


class Flat(Strict):
    kind: Literal["flat"]
    amount: int


class Tier(Strict):
    min: int
    points: int


class Program(Strict):
    code: str
    name: str
    trigger: Literal["purchase", "charge", "refund"]
    start: datetime.date
    award: Annotated[Premium | Flat, Field(discriminator="kind")]
    tiers: list[Tier] = []
    note: str | None = None
    published: datetime.datetime | None = None

    @field_validator("code")
    @classmethod
    def known_code(cls, code: str, info: ValidationInfo) -> str:
        known = (info.context or {}).get("codes")
        if known is not None and code not in known:
            raise ValueError(f"unknown municipality code {code}")
        return code

    @model_validator(mode="after")
    def tiers_sorted(self) -> Program:
        if [t.min for t in self.tiers] != sorted(t.min for t in self.tiers):
            raise ValueError("tiers must be sorted by min")
        return self


VALID = """\
code: 015814
name: 厚真町
trigger: purchase
start: 2022-01-01
award:
  kind: premium
  rate: 0.25
tiers:
  - min: 0
    points: 100
  - min: 5000
    points: 500
note: no
published: 2022-09-21T00:00:00+09:00
"""


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def write(text: str, name: str = "atsuma.yaml") -> Path:
    path = Path(name)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(text: str, model: type[BaseModel] = Program, **context: Any) -> list[str]:
    with pytest.raises(RuleFileError) as info:
        validate_file(write(text), model, context=context or None)
    assert str(info.value) == "\n".join(str(p) for p in info.value.problems)
    return [str(p) for p in info.value.problems]


def test_valid_file_returns_the_model() -> None:
    program = validate_file(write(VALID), Program)
    assert program.code == "015814"
    assert program.start == datetime.date(2022, 1, 1)
    assert program.award == Premium(kind="premium", rate=0.25)
    assert [t.points for t in program.tiers] == [100, 500]
    assert program.note == "no"
    jst = datetime.timezone(datetime.timedelta(hours=9))
    assert program.published == datetime.datetime(2022, 9, 21, tzinfo=jst)


def test_typo_in_a_union_branch_is_located_with_a_suggestion() -> None:
    text = VALID.replace("  rate: 0.25", "  rat: 0.25")
    # the missing 'rate' is the same mistake, so it is not reported a second time
    assert problems(text) == [
        "atsuma.yaml:7: award.rat: unknown field 'rat' (did you mean 'rate'?)"
    ]


def test_every_problem_in_the_file_is_reported_sorted_by_line() -> None:
    text = VALID.replace("purchase", "purchse").replace("points: 500", "pionts: 500")
    assert problems(text) == [
        "atsuma.yaml:3: trigger: invalid value 'purchse', expected one of: 'purchase', 'charge',"
        " 'refund' (did you mean 'purchase'?)",
        "atsuma.yaml:12: tiers.1.pionts: unknown field 'pionts' (did you mean 'points'?)",
    ]


class Triggers(Strict):
    on: Annotated[tuple[Literal["purchase", "charge"], ...], Field(min_length=1)]


def test_a_bad_item_does_not_also_make_its_list_too_short() -> None:
    assert problems("on: [purchse]\n", Triggers) == [
        "atsuma.yaml:1: on.0: invalid value 'purchse', expected one of: 'purchase', 'charge'"
        " (did you mean 'purchase'?)"
    ]
    assert problems("on: []\n", Triggers) == [
        "atsuma.yaml:1: on: Tuple should have at least 1 item after validation, not 0"
    ]


def test_missing_field_points_at_the_mapping_that_lacks_it() -> None:
    text = VALID.replace("    points: 100\n", "")
    assert problems(text) == ["atsuma.yaml:9: tiers.0.points: missing required field 'points'"]
    text = VALID.replace("  rate: 0.25\n", "")
    assert problems(text) == ["atsuma.yaml:5: award.rate: missing required field 'rate'"]
    assert problems("# Atsuma\n" + VALID.replace("name: 厚真町\n", "")) == [
        "atsuma.yaml:2: name: missing required field 'name'"
    ]


def test_unknown_field_without_a_close_match_lists_the_allowed_fields() -> None:
    text = VALID.replace("  rate: 0.25", "  rate: 0.25\n  bonus: 3")
    assert problems(text) == [
        "atsuma.yaml:8: award.bonus: unknown field 'bonus'; allowed fields: kind, rate, cap"
    ]
    assert problems(VALID + "colour: red\n") == [
        "atsuma.yaml:15: colour: unknown field 'colour'; allowed fields: code, name, trigger,"
        " start, award, tiers, note, published"
    ]


def test_a_known_field_at_the_wrong_level_says_where_it_belongs() -> None:
    dedented = VALID.replace("  rate: 0.25", "rate: 0.25")
    # award now lacks 'rate': the same mistake, not a second problem
    assert problems(dedented) == [
        "atsuma.yaml:7: rate: unknown field 'rate' here: it belongs under 'award'"
    ]
    tiers = "tiers:\n  - min: 0\n    points: 100\n  - min: 5000\n    points: 500\n"
    text = VALID.replace(tiers, "tiers:\nmin: 0\npoints: 100\n")
    assert problems(text) == [  # tiers left empty: the same mistake
        "atsuma.yaml:9: min: unknown field 'min' here: it belongs under 'tiers'",
        "atsuma.yaml:10: points: unknown field 'points' here: it belongs under 'tiers'",
    ]
    text = VALID.replace("  rate: 0.25", "  rate: 0.25\n  note: x")
    assert problems(text) == [
        "atsuma.yaml:8: award.note: unknown field 'note' here: it belongs at the top level of the"
        " file"
    ]


def test_a_hint_is_offered_only_for_a_close_name() -> None:
    assert suggest("period", ["version", "versions", "restriction"]) is None
    assert suggest("persons", ["versions"]) is None
    assert suggest("jurisdiction", ["restriction"]) is None
    assert suggest("", ["a"]) is None
    assert suggest("pionts", ["points", "min"]) == "points"  # two letters swapped
    assert suggest("rat", ["rate", "cap"]) == "rate"
    assert suggest("applicaton_perod", ["application_period", "period"]) == "application_period"
    text = VALID.replace("  rate: 0.25", "  rate: 0.25\n  pace: 3")
    assert problems(text) == [  # 'pace' is one letter from 'cap' and 'rate' is 2: no guess
        "atsuma.yaml:8: award.pace: unknown field 'pace'; allowed fields: kind, rate, cap"
    ]


def test_wrong_or_missing_discriminator() -> None:
    assert problems(VALID.replace("kind: premium", "kind: premum")) == [
        "atsuma.yaml:6: award.kind: invalid value 'premum', expected one of: 'premium', 'flat'"
        " (did you mean 'premium'?)"
    ]
    assert problems(VALID.replace("  kind: premium\n", "")) == [
        "atsuma.yaml:5: award.kind: missing required field 'kind' (one of: 'premium', 'flat')"
    ]


def test_flat_branch_is_checked_against_its_own_fields() -> None:
    text = VALID.replace("kind: premium\n  rate: 0.25", "kind: flat\n  amount: 300\n  rate: 1")
    assert problems(text) == [
        "atsuma.yaml:8: award.rate: unknown field 'rate'; allowed fields: kind, amount"
    ]


def test_duplicate_key_is_reported_at_its_second_occurrence() -> None:
    text = VALID.replace("  rate: 0.25", "  rate: 0.25\n  cap: 10\n  rate: 0.5")
    assert problems(text) == [
        "atsuma.yaml:9: award.rate: duplicate key 'rate', already defined on line 7"
    ]
    with pytest.raises(RuleFileError) as info:
        load_yaml(write(text))
    assert [p.line for p in info.value.problems] == [9]


def test_duplicate_key_and_validation_problems_are_reported_together() -> None:
    text = VALID.replace("name: 厚真町", "name: 厚真町\nname: Atsuma").replace("min: 0", "min: x")
    assert problems(text) == [
        "atsuma.yaml:3: name: duplicate key 'name', already defined on line 2",
        "atsuma.yaml:10: tiers.0.min: Input should be a valid integer, unable to parse string as"
        " an integer (got 'x')",
    ]


def test_syntax_error_is_located() -> None:
    text = VALID.replace("  rate: 0.25", "  rate: 0.25\n   cap: 3")
    [problem] = problems(text)
    assert (
        problem == "atsuma.yaml:8: <yaml>: YAML syntax error: mapping values are not allowed here"
    )
    assert problems(VALID.replace("  rate", "\trate")) == [
        "atsuma.yaml:7: <yaml>: YAML syntax error: found character '\\t' that cannot start any"
        " token (while scanning for the next token); indent with spaces, not tabs"
    ]
    assert problems(VALID.replace("name: 厚真町", 'name: "厚真町')) == [
        "atsuma.yaml:15: <yaml>: YAML syntax error: found unexpected end of stream"
        " (while scanning a quoted scalar on line 2)"
    ]


def test_validator_errors_are_located() -> None:
    program = validate_file(write(VALID), Program, context={"codes": {"015814"}})
    assert program.code == "015814"
    assert problems(VALID, codes={"015806"}) == [
        "atsuma.yaml:1: code: unknown municipality code 015814"
    ]
    text = "\n\n" + VALID.replace("min: 5000", "min: -1")
    assert problems(text) == ["atsuma.yaml:3: <root>: tiers must be sorted by min"]


def test_impossible_date_is_reported_by_pydantic() -> None:
    assert problems(VALID.replace("2022-01-01", "2022-02-30")) == [
        "atsuma.yaml:4: start: Input should be a valid date or datetime, day value is outside"
        " expected range (got '2022-02-30')"
    ]


def test_empty_file_and_wrong_top_level_type() -> None:
    assert problems("") == [
        "atsuma.yaml:1: <root>: Input should be a valid dictionary or instance of Program"
    ]
    assert problems("# a list\n- 1\n") == [
        "atsuma.yaml:2: <root>: Input should be a valid dictionary or instance of Program"
    ]
    assert problems(VALID.replace("  kind: premium\n  rate: 0.25\n", "  - 1\n")) == [
        "atsuma.yaml:5: award: Input should be a valid dictionary or object to extract fields from"
    ]


@pytest.mark.parametrize(
    ("scalar", "expected"),
    [
        ("015814", "015814"),
        ("01", "01"),
        ("-007", "-007"),
        ("0x1F", "0x1F"),
        ("0o17", "0o17"),
        ("1_000", "1_000"),
        ("no", "no"),
        ("yes", "yes"),
        ("on", "on"),
        ("OFF", "OFF"),
        ("y", "y"),
        ("=", "="),
        ("true", True),
        ("False", False),
        ("0", 0),
        ("12", 12),
        ("-3", -3),
        ("0.5", 0.5),
        ("1e3", 1000.0),
        ("~", None),
        ("null", None),
        ("2022-01-01", datetime.date(2022, 1, 1)),
        (
            "2022-09-21T00:00:00+09:00",
            datetime.datetime(2022, 9, 21, tzinfo=datetime.timezone(datetime.timedelta(hours=9))),
        ),
        ("2022-09-21 10:30:00", datetime.datetime(2022, 9, 21, 10, 30)),
        ('"2022-01-01"', "2022-01-01"),
    ],
)
def test_yaml_scalars_without_yaml_1_1_traps(scalar: str, expected: object) -> None:
    data, _ = load_yaml(write(f"value: {scalar}\n{scalar}: key\n"))
    assert data["value"] == expected
    assert type(data["value"]) is type(expected)
    assert list(data) == ["value", expected]


def test_aware_datetime_keeps_its_offset() -> None:
    data, _ = load_yaml(write("at: 2022-09-21T00:00:00+09:00\n"))
    assert data["at"].utcoffset() == datetime.timedelta(hours=9)


def test_loader_does_not_change_pyyaml_globally() -> None:
    import yaml

    assert yaml.safe_load("a: 0123\nb: no\n") == {"a": 83, "b": False}


def test_line_map() -> None:
    _, lines = load_yaml(write(VALID))
    assert lines.line_of(()) == 1
    assert lines.line_of(("award",)) == 5
    assert lines.line_of(("award", "rate")) == 7
    assert lines.line_of(("award", "premium", "rate")) == 7  # a union tag is skipped
    assert lines.line_of(("award", "cap")) == 5  # missing: its mapping
    assert lines.line_of(("tiers", 1)) == 11
    assert lines.line_of(("tiers", 1, "points")) == 12
    assert lines.line_of(("tiers", "1", "points")) == 12  # rebuilt from "tiers.1.points"
    assert lines.line_of(("tiers", "01", "points")) == 8  # not an index: its ancestor
    assert LineMap().line_of(("x",)) == 1


def alias_bomb(levels: int = 8, width: int = 9) -> str:
    """``width ** levels`` copies of one list, in a few hundred bytes ("billion laughs")."""
    rows = ["a0: &a0 [lol]"]
    for i in range(1, levels + 1):
        rows.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    return "\n".join(rows) + "\n"


def test_an_alias_bomb_is_refused_at_once() -> None:
    started = time.perf_counter()
    assert problems(VALID + alias_bomb()) == [
        "atsuma.yaml:15: a0: rule files do not use YAML anchors and aliases (&a0): write each"
        " value out in full"
    ]
    assert time.perf_counter() - started < 2  # expanded, it takes minutes and gigabytes


def test_anchors_aliases_and_merge_keys_are_refused_where_they_first_appear() -> None:
    text = VALID.replace("tiers:\n  - min: 0", "tiers:\n  - &first\n    min: 0")
    assert problems(text) == [
        "atsuma.yaml:9: tiers.0: rule files do not use YAML anchors and aliases (&first): write"
        " each value out in full"
    ]
    merged = """\
    tiers:
      - min: 0
        points: 10
      - <<: *base
        points: 20
    """
    with pytest.raises(RuleFileError) as info:
        load_yaml(write(merged))
    assert [str(p) for p in info.value.problems] == [
        "atsuma.yaml:4: tiers.1.<<: rule files do not use YAML anchors and aliases (*base): write"
        " each value out in full"
    ]
    # without an alias, '<<' is an ordinary key: the model says it is not a field
    data, _ = load_yaml(write("tiers:\n  - <<: {min: 0}\n    points: 20\n"))
    assert data == {"tiers": [{"<<": {"min": 0}, "points": 20}]}


def test_not_utf8_is_reported() -> None:
    path = Path("sjis.yaml")
    path.write_bytes("name: ok\nnote: 厚真町\n".encode("shift_jis"))
    with pytest.raises(RuleFileError) as info:
        load_yaml(path)
    assert [str(p) for p in info.value.problems] == [
        "sjis.yaml:2: <file>: file is not UTF-8 text (save it as UTF-8, not Shift_JIS)"
    ]


def test_missing_file_is_reported() -> None:
    with pytest.raises(RuleFileError) as info:
        load_yaml(Path("nope.yaml"))
    assert str(info.value) == "nope.yaml:1: <file>: cannot read file: No such file or directory"


def test_several_documents_are_an_error() -> None:
    [problem] = problems(VALID + "---\ncode: 1\n")
    assert problem.startswith("atsuma.yaml:15: <yaml>: YAML syntax error: ")


class Card(Strict):
    number: str


class Cash(Strict):
    amount: int


class Payment(Strict):
    via: Card | Cash


def test_smart_union_reports_only_the_closest_branch() -> None:
    assert problems("via:\n  amont: 3\n", Payment) == [
        "atsuma.yaml:2: via.amont: unknown field 'amont' (did you mean 'amount'?)"
    ]


def test_problems_from_validation_error_directly() -> None:
    path = write(VALID.replace("  rate: 0.25", "  rte: 0.25"))
    data, lines = load_yaml(path)
    with pytest.raises(ValidationError) as info:
        Program.model_validate(data)
    found = problems_from_validation_error(path, info.value, lines, Program)
    assert found == [Problem("atsuma.yaml", 7, "award.rte", "unknown field 'rte'", "rate")]


def test_located_and_suggest_for_the_callers_own_checks() -> None:
    program, lines = load_and_validate(write(VALID), Program)
    hint = suggest("015815", ["015814", "016101"])
    problem = located(
        Path("atsuma.yaml"),
        lines,
        ("code",),
        f"unknown municipality code {program.code}",
        severity="warning",
        suggestion=hint,
    )
    assert str(problem) == (
        "atsuma.yaml:1: code: unknown municipality code 015814 (did you mean '015814'?) [warning]"
    )
    assert suggest("Purchase", ["purchase", "refund"]) == "purchase"
    assert suggest("zzz", ["purchase", "refund"]) is None


def test_control_character_is_located() -> None:
    [problem] = problems("name: ok\nnote: a\x07b\n")
    assert problem == (
        "atsuma.yaml:2: <yaml>: YAML syntax error: unacceptable character #x0007:"
        " special characters are not allowed"
    )


def test_an_explicit_timestamp_tag_on_a_non_date_is_a_located_problem() -> None:
    assert problems(VALID.replace("start: 2022-01-01", "start: !!timestamp x")) == [
        "atsuma.yaml:4: start: Input should be a valid date or datetime, input is too short"
        " (got 'x')"]


@pytest.mark.parametrize("nested", [
    "note: " + "[" * 1_000 + "]" * 1_000 + "\n",
    "note:\n" + "".join("  " * i + "a:\n" for i in range(1, 600)) + "  " * 600 + "b: 1\n",
    "note: " + "{a: " * 300 + "1" + "}" * 300 + "\n",
])
def test_a_value_nested_deeper_than_any_rule_needs_is_a_located_problem(nested: str) -> None:
    [problem] = problems(VALID.replace("note: no\n", "") + nested)
    assert problem.startswith("atsuma.yaml:")
    assert "nested more than 32 levels deep" in problem

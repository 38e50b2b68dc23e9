"""The editor schemas: every shipped file passes a real JSON Schema validator, broken files
fail it and ``validate`` alike, every field is described (Japanese, then English), and a file
that names its schema on its first line still loads."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
import yaml

from pointengine.catalog.loading import load_catalog
from pointengine.catalog.rulefile import RuleLoader
from pointengine.catalog.schema import (
    SCHEMA_NAMES,
    SCHEMA_TEXTS,
    SchemaName,
    editor_line,
    editor_schema,
    first_lines,
    schema_file,
    schema_for,
    schema_text,
    write_schemas,
)
from pointengine.errors import RuleFileError
from pointengine.i18n import check_table
from tests.world import RULES

_JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


class EditorLoader(RuleLoader):
    """YAML as an editor's language server reads it (YAML 1.2 core): a date is text."""

    yaml_implicit_resolvers = {  # noqa: RUF012 - PyYAML's own class-level registry
        first: [(tag, rx) for tag, rx in resolvers if not tag.endswith(":timestamp")]
        for first, resolvers in RuleLoader.yaml_implicit_resolvers.items()
    }


def editor_reads(text: str) -> Any:
    """A rule file's data as an editor hands it to the schema."""
    return yaml.load(text, Loader=EditorLoader)  # a SafeLoader subclass


def problems(name: SchemaName, data: Any) -> list[str]:
    """What a Draft 2020-12 validator, formats checked as editors do, finds in ``data``."""
    validator = jsonschema.Draft202012Validator(
        editor_schema(name), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(data)]


def shipped() -> list[Path]:
    return sorted(RULES.rglob("*.yaml"))


def test_both_schemas_are_valid_draft_2020_12_schemas() -> None:
    for name in SCHEMA_NAMES:
        jsonschema.Draft202012Validator.check_schema(editor_schema(name))


def test_every_shipped_file_passes_the_schema_as_an_editor_reads_it() -> None:
    files = shipped()
    assert len(files) > 20
    assert sum(f.name == "providers.yaml" for f in files) == 1
    for path in files:
        data = editor_reads(path.read_text(encoding="utf-8"))
        assert problems(schema_for(path), data) == [], path


def _properties(node: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every property schema in ``node`` (through ``$defs``, nested objects and unions)."""
    if isinstance(node, dict):
        for key, value in (node.get("properties") or {}).items():
            yield f"{where}.{key}", value
        for key, value in node.items():
            yield from _properties(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _properties(value, f"{where}/{index}")


def test_every_field_is_described_in_japanese_then_english(tmp_path: Path) -> None:
    write_schemas(tmp_path)
    seen = 0
    for name in SCHEMA_NAMES:
        schema = orjson.loads((tmp_path / schema_file(name)).read_bytes())
        for part in ("title", "description"):
            japanese, _, english = schema[part].partition(" / ")
            assert _JAPANESE.search(japanese) and english.isascii(), (name, part)
        for where, field in _properties(schema):
            seen += 1
            description = field.get("description", "")
            # "JA / EN", or for an award field several kinds share "kind: JA / EN" a line each
            for line in description.splitlines() or [""]:
                japanese, slash, english = line.partition(" / ")
                assert slash and _JAPANESE.search(japanese) and english.isascii() \
                    and english.strip(), (name, where, description)
        for model, definition in schema.get("$defs", {}).items():
            assert _JAPANESE.search(definition.get("description", "")), (name, model)
    assert seen > 80  # the program's fields, its versions' and the provider list's


def test_the_written_schema_is_stable_sorted_and_keeps_the_japanese(tmp_path: Path) -> None:
    first, again = tmp_path / "a", tmp_path / "b"
    assert write_schemas(first) == [first / "program.schema.json",
                                    first / "providers.schema.json"]
    write_schemas(again)
    for name in SCHEMA_NAMES:
        text = (first / schema_file(name)).read_text(encoding="utf-8")
        assert text == (again / schema_file(name)).read_text(encoding="utf-8")
        assert text == schema_text(orjson.loads(text))  # keys sorted: a round trip is equal
        assert "\\u" not in text and "決済事業者" in text
        assert text.endswith("}\n")
        assert not text.startswith('{\n  "$schema"')  # VS Code's YAML server: draft 7 only


MIYOSHI = RULES / "342092-miyoshi" / "premium.yaml"
CARD = RULES / "national" / "phase2-card.yaml"
PROVIDERS = RULES / "providers.yaml"


def _edit(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert text.count(old) == 1, old
        return text.replace(old, new)
    return edit


# (the file, how it is broken, the field validate names in its problem)
BROKEN: dict[str, tuple[Path, Callable[[str], str], str]] = {
    "an unknown field": (MIYOSHI, _edit("rate: 30%", "rat: 30%"), "award.rat"),
    "a field at the wrong level": (
        MIYOSHI, _edit("budget: {yen: 300000000}", "budget: {yen: 300000000}\ncap: 6000"),
        "cap"),
    "a rate written as 25": (MIYOSHI, _edit("rate: 30%", "rate: 25"), "award.rate"),
    "a rate written as '25'": (MIYOSHI, _edit("rate: 30%", "rate: '25'"), "award.rate"),
    "a rate over 100%": (MIYOSHI, _edit("rate: 30%", "rate: 125%"), "award.rate"),
    "a date that does not exist": (MIYOSHI, _edit("to: 2023-02-28", "to: 2023-02-30"),
                                   "conditions.period.to"),
    "a date written with slashes": (CARD, _edit("card_applied_by: 2022-09-30",
                                                "card_applied_by: 2022/09/30"),
                                    "conditions.card_applied_by"),
    "a missing required field": (MIYOSHI, _edit("name: 三次市 市民の市内店舗での買い物に最大30%\n",
                                                ""), "name"),
    "a missing award": (MIYOSHI, _edit("award: {kind: premium, rate: 30%, cap: 6000}\n", ""),
                        "award"),
    "an award missing its cap": (MIYOSHI, _edit(", cap: 6000}", "}"), "award.cap"),
    "an unknown trigger": (MIYOSHI, _edit("on: [purchase]", "on: [purchases]"), "on.0"),
    "a cap as text": (MIYOSHI, _edit("cap: 6000", "cap: '6000'"), "award.cap"),
    "a typo in a later version": (CARD, _edit("conditions: {card_applied_by: 2022-12-31}",
                                              "conditions: {card_aplied_by: 2022-12-31}"),
                                  "versions.0.conditions.card_aplied_by"),
    "a later version without its note": (
        CARD, _edit("    note: card application deadline extended to 2022-12-31\n", ""),
        "versions.0.note"),
    "a bad date in a later version": (CARD, _edit("conditions: {card_applied_by: 2023-02-28}",
                                                  "conditions: {card_applied_by: 2023-02-29}"),
                                      "versions.1.conditions.card_applied_by"),
    "a provider counting both bases": (
        PROVIDERS, _edit("{id: paypay, name: PayPay, kind: qr_code, basis: purchase}",
                         "{id: paypay, name: PayPay, kind: qr_code, basis: both}"),
        "providers.0.basis"),
    "a provider without its kind": (
        PROVIDERS, _edit("{id: paypay, name: PayPay, kind: qr_code, basis: purchase}",
                         "{id: paypay, name: PayPay, basis: purchase}"), "providers.0.kind"),
}


@pytest.fixture(scope="module")
def rules_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rules = tmp_path_factory.mktemp("schema") / "rules"
    shutil.copytree(RULES, rules)
    return rules


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_a_broken_file_fails_the_schema_and_validate(kind: str, rules_copy: Path) -> None:
    original, edit, field = BROKEN[kind]
    text = edit(original.read_text(encoding="utf-8"))
    assert problems(schema_for(original), editor_reads(text)), kind
    target = rules_copy / original.relative_to(RULES)
    target.write_text(text, encoding="utf-8")
    try:
        with pytest.raises(RuleFileError) as refused:
            load_catalog(rules_copy)
    finally:
        shutil.copyfile(original, target)
    assert field in {p.field for p in refused.value.problems}, (
        kind, [str(p) for p in refused.value.problems])


def test_a_later_version_may_change_one_field_of_a_mapping() -> None:
    """A version lists only what changes: the schema requires nothing in its mappings."""
    text = CARD.read_text(encoding="utf-8") + (
        "  - version: 4\n    effective_from: 2023-02-01T00:00:00+09:00\n    note: longer\n"
        "    conditions: {period: {to: 2023-03-31}}\n    award: {cap: 6000}\n"
        "    budget: {yen: 1000000}\n    restriction: {persons: residents}\n")
    assert problems("program", editor_reads(text)) == []
    other_kind = text.replace("award: {cap: 6000}", "award: {kind: grant, amount: 500}")
    assert problems("program", editor_reads(other_kind)) == []
    wrong = text.replace("award: {cap: 6000}", "award: {kind: bonus, cap: 6000}")
    assert problems("program", editor_reads(wrong))


def test_the_first_line_points_at_the_schema_relative_to_the_file(tmp_path: Path) -> None:
    rules, schema = Path("rules"), Path("rules/schema")
    assert editor_line(rules / "342092-miyoshi" / "premium.yaml", schema) == (
        "# yaml-language-server: $schema=../schema/program.schema.json")
    assert editor_line(rules / "national" / "phase2-card.yaml", schema) == (
        "# yaml-language-server: $schema=../schema/program.schema.json")
    assert editor_line(rules / "providers.yaml", schema) == (
        "# yaml-language-server: $schema=schema/providers.schema.json")
    assert editor_line(Path("/srv/rules/342092-miyoshi/a.yaml"), Path("/srv/schemas")) == (
        "# yaml-language-server: $schema=../../schemas/program.schema.json")
    # and it resolves, from the file, to the schema the command writes
    folder = tmp_path / "rules" / "schema"
    write_schemas(folder)
    for path in (tmp_path / "rules" / "a" / "b.yaml", tmp_path / "rules" / "providers.yaml"):
        relative = editor_line(path, folder).split("$schema=", 1)[1]
        assert (path.parent / relative).resolve() == folder / schema_file(schema_for(path))


def test_a_file_that_names_its_schema_on_its_first_line_still_loads(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    for path in rules.rglob("*.yaml"):
        line = editor_line(path.relative_to(rules), Path("schema"))
        path.write_text(f"{line}\n{path.read_text(encoding='utf-8')}", encoding="utf-8")
    assert (rules / "providers.yaml").read_text(encoding="utf-8").startswith(
        "# yaml-language-server: $schema=schema/providers.schema.json\n")
    loaded, expected = load_catalog(rules), load_catalog(RULES)
    assert {k: p.versions for k, p in loaded.programs.items()} == {
        k: p.versions for k, p in expected.programs.items()}
    assert loaded.providers == expected.providers
    # and a problem is still reported at its own line, one further down
    card = rules / "national" / "phase2-card.yaml"
    card.write_text(card.read_text(encoding="utf-8").replace("rate: 25%", "rat: 25%"),
                    encoding="utf-8")
    with pytest.raises(RuleFileError) as refused:
        load_catalog(rules)
    (problem,) = refused.value.problems
    assert (problem.line, problem.field) == (15, "award.rat")
    assert card.read_text(encoding="utf-8").splitlines()[14].startswith("award: {kind: premium")


def test_the_hint_names_the_first_lines_only_inside_a_rules_folder(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    assert first_lines(rules / "schema") == []
    (rules / "providers.yaml").write_text("providers: []\n", encoding="utf-8")
    program, providers = first_lines(rules / "schema")
    assert program.args["line"] == "# yaml-language-server: $schema=../schema/program.schema.json"
    assert providers.args["line"] == (
        "# yaml-language-server: $schema=schema/providers.schema.json")


def test_the_schema_messages_have_both_languages() -> None:
    assert check_table(SCHEMA_TEXTS) == []

"""``pointengine schema``: the files it writes, and what it tells staff, in English or Japanese."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pointengine.catalog.schema import editor_schema, schema_text
from pointengine.cli.main import app
from tests.world import RULES

runner = CliRunner()


def test_schema_writes_both_files_and_the_first_lines_to_use(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    for name in ("POINTENGINE_LANG", "LC_ALL", "LANG"):
        monkeypatch.delenv(name, raising=False)
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    out = rules / "schema"
    result = runner.invoke(app, ["schema", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"wrote {out / 'program.schema.json'}",
        f"wrote {out / 'providers.schema.json'}",
        f"make this the first line of a program's rule file ({rules}/<folder>/*.yaml) for "
        "editors to complete and check it with this schema: "
        "# yaml-language-server: $schema=../schema/program.schema.json",
        f"and of {rules / 'providers.yaml'}: "
        "# yaml-language-server: $schema=schema/providers.schema.json"]
    assert (out / "program.schema.json").read_text(encoding="utf-8") == schema_text(
        editor_schema("program"))
    assert (out / "providers.schema.json").read_text(encoding="utf-8") == schema_text(
        editor_schema("providers"))
    # the schema folder is not a rule file, and rules/ is still a valid rules folder
    assert runner.invoke(app, ["validate", str(rules)]).exit_code == 0


def test_schema_speaks_japanese_when_asked(tmp_path: Path) -> None:
    result = runner.invoke(app, ["schema", str(tmp_path / "schema"), "--lang", "ja"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"{tmp_path / 'schema' / 'program.schema.json'} を書き出しました",
        f"{tmp_path / 'schema' / 'providers.schema.json'} を書き出しました"]
    result = runner.invoke(app, ["schema", str(tmp_path / "schema")],
                           env={"POINTENGINE_LANG": "ja"})
    assert "を書き出しました" in result.output


def test_schema_refuses_a_language_it_does_not_speak(tmp_path: Path) -> None:
    result = runner.invoke(app, ["schema", str(tmp_path / "schema"), "--lang", "fr"])
    assert result.exit_code == 2
    assert "give ja or en" in result.output
    assert not (tmp_path / "schema").exists()

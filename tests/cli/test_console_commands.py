"""``pointengine console add-staff`` and ``pointengine publish``, as staff type them."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from pointengine.cli.main import app
from tests.world import RULES

PASSWORD = "correct horse battery"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(RULES, tmp_path / "rules")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_staff_are_added_and_publish_from_the_command_line(folder: Path) -> None:
    runner = CliRunner()
    added = runner.invoke(app, ["console", "add-staff", "miyoshi.tanaka", "--jurisdiction",
                                "342092", "--password-stdin"], input=PASSWORD + "\n")
    assert added.exit_code == 0, added.output
    draft = folder / "draft.yaml"
    draft.write_text((folder / "rules/342092-miyoshi/premium.yaml").read_text(encoding="utf-8")
                     .replace("rate: 30%", "rate: 35%"), encoding="utf-8")
    done = runner.invoke(app, ["publish", str(draft), "--as", "miyoshi.tanaka", "--program",
                               "miyoshi-premium", "--effective-from", "2099-04-01",
                               "--reason", "35%に"])
    assert done.exit_code == 0, done.output
    assert "miyoshi-premium version 2 from 2099-04-01T00:00:00+09:00" in done.output
    assert "award: {rate: 35%}" in (folder / "rules/342092-miyoshi/premium.yaml").read_text(
        encoding="utf-8")
    past = runner.invoke(app, ["publish", str(draft), "--as", "miyoshi.tanaka", "--program",
                               "miyoshi-premium", "--effective-from", "2020-04-01",
                               "--reason", "x", "--lang", "ja"])
    assert past.exit_code == 1 and "過去" in past.output
    acts = [orjson.loads(line) for line in
            (folder / "console-state/audit.jsonl").read_bytes().splitlines()]
    assert [a["action"] for a in acts] == ["publish", "publish_refused"]


def test_an_unknown_account_or_code_is_refused(folder: Path) -> None:
    runner = CliRunner()
    wrong = runner.invoke(app, ["console", "add-staff", "x", "--jurisdiction", "342099",
                                "--password-stdin"], input=PASSWORD + "\n")
    assert wrong.exit_code == 2 and "unknown local government code" in wrong.output
    nobody = runner.invoke(app, ["publish", "draft.yaml", "--as", "nobody", "--effective-from",
                                 "2099-04-01", "--reason", "x"])
    assert nobody.exit_code == 2 and "no staff account 'nobody'" in nobody.output


def test_the_console_will_not_start_without_staff(folder: Path) -> None:
    started = CliRunner().invoke(app, ["console"])
    assert started.exit_code == 2 and "add-staff" in started.output

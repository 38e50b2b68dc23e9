"""``pointengine generate``: the generator's parameters as options, the same bytes as the
function."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
from typer.testing import CliRunner

from pointengine.cli.main import app
from pointengine.synth.generate import generate

runner = CliRunner()


def test_the_command_writes_what_the_function_writes(tmp_path: Path) -> None:
    out = tmp_path / "streams" / "events.jsonl"
    result = runner.invoke(app, ["generate", str(out), "--persons", "300", "--events", "4000",
                                 "--seed", "7", "--mix", "duplicates,malformed", "--mix",
                                 "out_of_order", "--focus", "342092", "--focus-share", "0.5"])
    assert result.exit_code == 0, result.output
    expected = generate(tmp_path / "direct.jsonl", persons=300, events=4000, seed=7,
                        adversarial={"duplicates", "malformed", "out_of_order"},
                        focus=("342092",), focus_share=0.5)
    assert out.read_bytes() == (tmp_path / "direct.jsonl").read_bytes()
    assert hashlib.sha256(out.read_bytes()).hexdigest() == expected.sha256
    assert f"sha256 {expected.sha256}" in result.stdout
    assert "4,000 events" in result.stdout and "malformed" in result.stdout


def test_json_says_what_was_written(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    result = runner.invoke(app, ["generate", str(out), "--persons", "100", "--events", "2000",
                                 "--json"])
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    assert report["events"] == report["lines"] == 2000 == len(out.read_bytes().splitlines())
    assert report["seed"] == 1 and report["path"] == str(out)
    assert sum(report["by_type"].values()) == 2000


def test_what_the_generator_refuses_is_a_usage_error(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    for args in (["--mix", "duplicates,sideways"], ["--persons", "1000", "--events", "10"],
                 ["--focus", "999999"], ["--persons", "-1"]):
        result = runner.invoke(app, ["generate", str(out), *args])
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
    assert not out.exists()


def test_an_unwritable_output_is_one_line_and_exit_1(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = runner.invoke(app, ["generate", str(blocker / "events.jsonl"), "--persons", "10",
                                 "--events", "200"])
    assert result.exit_code == 1
    assert result.output.startswith(f"generate: cannot write {blocker}")
    assert len(result.output.strip().splitlines()) == 1, result.output

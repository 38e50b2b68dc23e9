"""Long commands show life when stderr is not a terminal (nohup, systemd, a pipe): a progress
line every --progress-every seconds, with the rate and the ETA, and a last one when done."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from pointengine.synth.generate import generate
from tests.world import RULES

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^(?P<label>[a-z]+): (?P<done>[\d,.]+) of (?P<total>[\d,.]+) "
                  r"(?P<unit>[a-zA-Z ]+) \((?P<share>\d+\.\d)%\), [\d,.]+ (?P=unit)/s, "
                  r"elapsed \d+:\d\d:\d\d, "
                  r"(ETA \d+:\d\d:\d\d|ETA unknown|done)$")


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``pointengine ARGS`` in a child whose output goes to pipes, not a terminal."""
    child = subprocess.run([sys.executable, "-m", "pointengine", *args], cwd=cwd,
                           capture_output=True, text=True, timeout=600,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert child.returncode == 0, child.stderr
    return child


def _progress(stderr: str, label: str) -> list[re.Match[str]]:
    found = [m for m in map(LINE.match, stderr.splitlines()) if m and m["label"] == label]
    assert len(found) >= 2, stderr  # at least one on the way and the last
    assert found[-1].group(0).endswith(", done"), stderr
    assert all(not m.group(0).endswith("done") for m in found[:-1])
    return found


def test_generate_and_replay_report_progress_in_lines_when_not_on_a_terminal(
        tmp_path: Path) -> None:
    stream = tmp_path / "events.jsonl"
    made = _run("generate", str(stream), "--persons", "2000", "--events", "150000",
                "--progress-every", "0.001", cwd=tmp_path)
    lines = _progress(made.stderr, "generate")
    assert lines[-1]["done"] == lines[-1]["total"] == "150,000"
    assert lines[-1]["unit"] == "events" and lines[-1]["share"] == "100.0"
    replayed = _run("replay", str(stream), "--rules", str(RULES), "--out",
                    str(tmp_path / "out"), "--progress-every", "0.001", cwd=tmp_path)
    lines = _progress(replayed.stderr, "replay")
    assert {m["unit"] for m in lines} == {"MB"}
    assert lines[-1]["done"] == lines[-1]["total"] == f"{stream.stat().st_size / 1e6:,.1f}"
    assert "ETA" in lines[0].group(0)
    assert "applied" in replayed.stdout  # the report is where it was
    settled = _run("settle", "--ledger", str(tmp_path / "out" / "ledger.jsonl"), "--rules",
                   str(RULES), "--progress-every", "0.000001", cwd=tmp_path)
    lines = _progress(settled.stderr, "settle")
    assert lines[-1]["unit"] == "ledger lines" and lines[-1]["share"] == "100.0"


def test_simulate_and_demo_report_progress_too(tmp_path: Path) -> None:
    simulated = _run("simulate", str(RULES / "342092-miyoshi" / "premium.yaml"), "--rules",
                     str(RULES), "--persons", "2000", "--events", "60000", "--json",
                     "--progress-every", "0.001", cwd=tmp_path)
    _progress(simulated.stderr, "generate")
    _progress(simulated.stderr, "simulate")
    assert simulated.stdout.startswith("{")  # stdout keeps the report alone
    shown = _run("demo", "--persons", "2000", "--events", "60000", "--rules", str(RULES),
                 "--out", str(tmp_path / "demo"), "--progress-every", "0.001", cwd=tmp_path)
    _progress(shown.stderr, "generate")
    _progress(shown.stderr, "replay")


def test_a_short_run_at_the_default_pace_writes_no_progress(tmp_path: Path) -> None:
    stream = tmp_path / "events.jsonl"
    generate(stream, persons=100, events=1000, seed=1)
    replayed = _run("replay", str(stream), "--rules", str(RULES), "--out",
                    str(tmp_path / "out"), cwd=tmp_path)
    assert "replay: " not in replayed.stderr and "ETA" not in replayed.stderr

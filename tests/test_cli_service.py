"""The service commands refuse a bad configuration with one clear line, and stop cleanly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from pointengine.cli import app
from pointengine.streams import StreamKeys
from tests.redis_fixtures import redis_client, redis_server

__all__ = ["redis_client", "redis_server"]

ROOT = Path(__file__).resolve().parents[1]
KEYS = StreamKeys.under("pe:")


def test_serve_refuses_short_secrets_before_starting(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text('quickpay: "too-short"\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["serve", "--secrets", str(secrets), "--port", "1"])
    assert result.exit_code == 2
    assert "secrets shorter than 16 characters: quickpay" in result.output
    assert "Traceback" not in result.output


def test_worker_without_a_rules_folder_says_so_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "rules"
    result = CliRunner().invoke(app, ["worker", "--rules", str(missing),
                                      "--redis-url", "redis://127.0.0.1:1/0"])
    assert result.exit_code == 2
    assert result.output.strip() == f"worker: rules folder not found: {missing}"


def test_worker_run_elsewhere_finds_no_default_rules(tmp_path: Path) -> None:
    child = subprocess.run(
        [sys.executable, "-m", "pointengine.cli", "worker", "--redis-url",
         "redis://127.0.0.1:1/0"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert child.returncode == 2
    assert child.stderr.strip() == "worker: rules folder not found: rules"

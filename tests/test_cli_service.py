"""The service commands refuse a bad configuration with one clear line."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from pointengine.cli import app


def test_serve_refuses_short_secrets_before_starting(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text('quickpay: "too-short"\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["serve", "--secrets", str(secrets), "--port", "1"])
    assert result.exit_code == 2
    assert "secrets shorter than 16 characters: quickpay" in result.output
    assert "Traceback" not in result.output

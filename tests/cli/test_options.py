"""The options every command shares: --redis-url and POINTENGINE_REDIS_URL, --version, and
``python -m pointengine``."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
import typer
from typer.testing import CliRunner

from pointengine.cli.main import app
from pointengine.store.redis_server import RedisServer
from pointengine.store.redis_store import RedisStore
from tests.redis_fixtures import redis_client, redis_server
from tests.world import APPLY, BUY, RULES

__all__ = ["redis_client", "redis_server"]

ROOT = Path(__file__).resolve().parents[2]
REDIS_COMMANDS = ("replay", "serve", "worker", "settle", "rejects", "reinit")


def _command(name: str) -> Any:
    """The click command behind ``pointengine NAME``."""
    return typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", REDIS_COMMANDS)
def test_every_command_that_talks_to_redis_takes_redis_url_and_the_variable(
        name: str) -> None:
    [param] = [p for p in _command(name).params if p.name == "redis_url"]
    assert "--redis-url" in param.opts
    assert param.envvar == "POINTENGINE_REDIS_URL"


def _stream(tmp_path: Path) -> Path:
    stream = tmp_path / "events.jsonl"
    stream.write_bytes(orjson.dumps(APPLY) + b"\n" + orjson.dumps(BUY) + b"\n")
    return stream


def _awarded(server: RedisServer) -> list[tuple[str, int]]:
    store = RedisStore(server.client())
    try:
        return [(e.event, e.points) for e in store.ledger()]
    finally:
        store.close()


def test_replay_takes_redis_url_its_former_name_and_the_variable(
        redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path) -> None:
    args = ["replay", str(_stream(tmp_path)), "--rules", str(RULES), "--out",
            str(tmp_path / "out")]
    runner = CliRunner()
    named = runner.invoke(app, [*args, "--redis-url", redis_server.url])
    assert named.exit_code == 0, named.output
    assert "1 applied" not in named.output and "2 applied" in named.output
    assert _awarded(redis_server) == [("t/b1", 4_750)]
    assert not (tmp_path / "out" / "ledger.jsonl").exists()  # the ledger is in Redis
    former = runner.invoke(app, [*args, "--redis", redis_server.url])
    assert former.exit_code == 0 and "0 applied, 2 duplicates" in former.output
    from_env = runner.invoke(app, args, env={"POINTENGINE_REDIS_URL": redis_server.url})
    assert from_env.exit_code == 0, from_env.output
    assert "0 applied, 2 duplicates" in from_env.stdout
    assert "replaying on the Redis store POINTENGINE_REDIS_URL names" in from_env.stderr
    refused = runner.invoke(app, [*args, "--fresh"],
                            env={"POINTENGINE_REDIS_URL": redis_server.url})
    assert refused.exit_code == 2
    assert "--fresh: only for the embedded store's files in --out; with " \
        "POINTENGINE_REDIS_URL the state lives in Redis" in refused.output
    assert _awarded(redis_server) == [("t/b1", 4_750)]


def test_the_service_commands_read_the_variable(
        redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path) -> None:
    runner = CliRunner(env={"POINTENGINE_REDIS_URL": redis_server.url})
    asked = runner.invoke(app, ["reinit"])
    assert asked.exit_code == 1 and "generation: none" in asked.output
    listed = runner.invoke(app, ["rejects"])
    assert listed.exit_code == 0 and "0 rejected event(s)" in listed.output
    settled = runner.invoke(app, ["settle", "--rules", str(RULES)])
    assert settled.exit_code == 0 and "0 ledger lines" in settled.output
    nowhere = CliRunner(env={"POINTENGINE_REDIS_URL": "redis://127.0.0.1:1/0"})
    assert nowhere.invoke(app, ["rejects"]).exit_code == 1


def test_version_is_the_installed_packages() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"pointengine {metadata.version('pointengine')}\n"


def test_python_dash_m_pointengine_is_the_command(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    version = subprocess.run([sys.executable, "-m", "pointengine", "--version"],
                             capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert version.returncode == 0, version.stderr
    assert version.stdout == f"pointengine {metadata.version('pointengine')}\n"
    validated = subprocess.run([sys.executable, "-m", "pointengine", "validate", str(RULES)],
                               capture_output=True, text=True, timeout=120, env=env,
                               cwd=tmp_path)
    assert validated.returncode == 0, validated.stderr
    assert "valid" in validated.stdout
    usage = subprocess.run([sys.executable, "-m", "pointengine", "--help"],
                           capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert usage.returncode == 0 and "python -m pointengine" in usage.stdout
    for name in ("generate", "replay", "settle", "worker", "serve"):
        assert name in usage.stdout

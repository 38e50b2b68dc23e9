"""The service commands refuse a bad configuration with one clear line, and stop cleanly."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import redis
from typer.testing import CliRunner

from load.service_scenario import build
from pointengine.cli.main import app
from pointengine.errors import StateLost
from pointengine.service.streams import (
    StreamKeys,
    encode_entry,
    lag_and_pending,
    route,
    shard_count,
)
from pointengine.store.generation import Generation
from pointengine.store.redis_server import RedisServer
from tests.redis_fixtures import redis_client, redis_server

__all__ = ["redis_client", "redis_server"]

ROOT = Path(__file__).resolve().parents[2]
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


def test_worker_run_elsewhere_uses_the_shipped_rules(tmp_path: Path) -> None:
    # No rules/ here: the worker loads the shipped rules and gets as far as Redis.
    child = subprocess.run(
        [sys.executable, "-m", "pointengine.cli.main", "worker", "--redis-url",
         "redis://127.0.0.1:1/0"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert "rules folder not found" not in child.stderr
    assert "Error 111 connecting to 127.0.0.1:1" in child.stderr
    assert child.returncode == 1


def test_sigterm_stops_the_worker_after_its_batch_with_its_leases_released(
        redis_server: RedisServer, redis_client: redis.Redis) -> None:
    scenario = build(200, 3000, seed=3)
    events = [*scenario.applications, *scenario.transactions]
    count = shard_count(redis_client, KEYS)
    for start in range(0, len(events), 10):
        pipe = redis_client.pipeline(transaction=True)
        for shard, group in route(events[start:start + 10], count).items():
            pipe.xadd(KEYS.shard(shard), encode_entry(group[0].source, group))  # type: ignore[arg-type]
        pipe.execute()
    child = subprocess.Popen(
        [sys.executable, "-m", "pointengine.cli.main", "worker", "--redis-url", redis_server.url,
         "--rules", str(ROOT / "rules"), "--name", "stopped", "--count", "2",
         "--lease-ms", "60000", "--log-level", "error"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while int(redis_client.hget(KEYS.stats, "events") or 0) == 0:
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.01)
        child.send_signal(signal.SIGTERM)
        _, stderr = child.communicate(timeout=20)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, stderr
    # the report is written as JSON whatever --log-level says
    [report] = [doc for doc in map(orjson.loads, stderr.splitlines())
                if doc["message"] == "worker report"]
    assert report["worker"] == "stopped" and report["final"] is True and report["entries"] > 0
    assert "Traceback" not in stderr
    assert not list(redis_client.scan_iter("pe:stream:lease:*")), "leases were released"
    assert not redis_client.zcard(KEYS.workers)
    lag = lag_and_pending(redis_client, KEYS, KEYS.all_shards(count))
    assert not any(pending for _, pending in lag.values()), "its last batch was acknowledged"
    assert any(undelivered for undelivered, _ in lag.values()), "it stopped before the end"


def test_reinit_asks_for_yes_then_lets_a_lost_store_be_used_again(
        redis_server: RedisServer, redis_client: redis.Redis) -> None:
    seen = Generation(redis_client)
    first = seen.check()
    redis_client.flushall()  # Redis came back empty
    with pytest.raises(StateLost):
        seen.check()
    asked = CliRunner().invoke(app, ["reinit", "--redis-url", redis_server.url])
    assert asked.exit_code == 1
    assert "lost" in asked.output and "--yes" in asked.output
    with pytest.raises(StateLost):  # nothing changed without --yes
        seen.check()
    done = CliRunner().invoke(app, ["reinit", "--redis-url", redis_server.url, "--yes"])
    assert done.exit_code == 0, done.output
    generation = seen.check()
    assert generation != first and generation in done.output


def test_reinit_without_redis_says_so_in_one_line() -> None:
    result = CliRunner().invoke(app, ["reinit", "--redis-url", "redis://127.0.0.1:1/0",
                                      "--yes"])
    assert result.exit_code == 1
    assert result.output.startswith("reinit: Redis is unavailable")
    assert "Traceback" not in result.output

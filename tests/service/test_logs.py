"""Logs are JSON lines throughout: uvicorn's own and its access lines under ``pointengine
serve``, the worker's, and the worker's report; no My Number in any of them."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from load.service_scenario import build
from pointengine.model.privacy import my_number_check_digit
from pointengine.service.jsonlog import AccessFormatter, uvicorn_log_config
from pointengine.service.signing import sign
from pointengine.service.streams import StreamKeys, encode_entry, route, shard_count
from pointengine.store.redis_server import RedisServer
from tests.redis_fixtures import redis_client, redis_server

__all__ = ["redis_client", "redis_server"]

ROOT = Path(__file__).resolve().parents[2]
MY_NUMBER = "12345678901" + str(my_number_check_digit("12345678901"))
SECRET = "s" * 32


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` as a JSON object (a line that is not one fails the test)."""
    docs = []
    for line in text.splitlines():
        doc = orjson.loads(line)
        assert isinstance(doc, dict), line
        assert {"time", "level", "logger", "message"} <= set(doc), line
        docs.append(doc)
    return docs


def _child(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "POINTENGINE_SECRET_QUICKPAY": SECRET}
    return subprocess.Popen([sys.executable, "-m", "pointengine", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _request(url: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, data=body, headers=headers or {},
                                     method="GET" if body is None else "POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            status: int = answer.status
            return status
    except urllib.error.HTTPError as refused:
        return refused.code


def test_serve_logs_json_lines_only_uvicorns_included(redis_server: RedisServer,
                                                        redis_client: redis.Redis) -> None:
    port = _free_port()
    child = _child("serve", "--redis-url", redis_server.url, "--port", str(port),
                   "--access-log")
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                # a My Number in the query: the access line must not repeat it
                assert _request(f"{base}/health?probe={MY_NUMBER}") == 200
                break
            except urllib.error.URLError:
                assert time.monotonic() < deadline and child.poll() is None, "no service"
                time.sleep(0.1)
        body = orjson.dumps({
            "eventType": "PAYMENT", "transactionId": "QP-1", "userMyKeyId": MY_NUMBER,
            "amount": 1280, "currency": "JPY", "occurredAt": "2022-03-01T12:34:56+09:00",
            "storeCode": "S0001", "storeMunicipalityCode": "131016"})
        path = "/providers/quickpay/transactions"
        headers = sign("quickpay", SECRET.encode(), body, path=path)
        assert _request(base + path, body, headers) == 422
        assert _request(base + path, body, {}) == 401
    finally:
        child.send_signal(signal.SIGINT)
        stdout, stderr = child.communicate(timeout=30)
    assert child.returncode == 0, stderr
    assert MY_NUMBER not in stdout + stderr
    docs = _json_lines(stdout) + _json_lines(stderr)
    messages = [(d["logger"], d["message"]) for d in docs]
    assert any(logger == "uvicorn.error" and message.startswith("Uvicorn running on")
               for logger, message in messages)
    assert ("uvicorn.error", f"Finished server process [{child.pid}]") in messages
    access = [d for d in docs if d["logger"] == "uvicorn.access"]
    assert [(d["method"], d["status"]) for d in access] == [("GET", 200), ("POST", 422),
                                                            ("POST", 401)]
    assert access[0]["path"] == "/health?probe=" + "*" * 12
    ingest = [d for d in docs if d["message"] == "ingest"]
    assert [d["status"] for d in ingest] == [422, 401]


def test_the_access_formatter_and_the_config_uvicorn_is_given() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                               '%s - "%s %s HTTP/%s" %d',
                               ("10.0.0.1:5000", "GET", f"/x?n={MY_NUMBER}", "1.1", 404), None)
    doc = orjson.loads(AccessFormatter().format(record))
    assert doc["status"] == 404 and doc["path"] == "/x?n=" + "*" * 12
    assert MY_NUMBER not in doc["message"]
    encoded = f"/providers/{MY_NUMBER[:4]}%20{MY_NUMBER[4:8]}%20{MY_NUMBER[8:]}/transactions"
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                               '%s - "%s %s HTTP/%s" %d',
                               ("10.0.0.1:5000", "POST", encoded, "1.1", 404), None)
    line = AccessFormatter().format(record)  # percent-encoded by the client: masked all the same
    assert orjson.loads(line)["path"] == "/providers/**** **** ****/transactions"
    assert MY_NUMBER[:4] not in line and MY_NUMBER[8:] not in line
    config = uvicorn_log_config("warning")
    assert config["loggers"]["uvicorn.access"]["level"] == "WARNING"
    assert not config["loggers"]["uvicorn"]["propagate"]


@pytest.mark.parametrize("every", ["0", "0.001"])
def test_the_worker_logs_json_lines_and_its_report_as_json(
        redis_server: RedisServer, redis_client: redis.Redis, every: str) -> None:
    scenario = build(50, 400, seed=5)
    events = [*scenario.applications, *scenario.transactions]
    keys = StreamKeys.under("pe:")
    count = shard_count(redis_client, keys)
    for start in range(0, len(events), 10):
        for shard, group in route(events[start:start + 10], count).items():
            redis_client.xadd(keys.shard(shard),
                              encode_entry(group[0].source, group))  # type: ignore[arg-type]
    child = _child("worker", "--redis-url", redis_server.url, "--rules", str(ROOT / "rules"),
                   "--name", "w1", "--until-empty", "--refund-wait", "0", "--count", "5",
                   "--report-every", every, "--log-level", "warning")
    stdout, stderr = child.communicate(timeout=120)
    assert child.returncode == 0, stderr
    assert stdout == ""
    assert MY_NUMBER not in stderr
    reports = [d for d in _json_lines(stderr) if d["message"] == "worker report"]
    final = reports[-1]
    assert final["final"] is True and final["worker"] == "w1"
    assert final["events"] == len(events)
    assert sum(final["statuses"].values()) == len(events)
    assert isinstance(final["events_per_second"], float)
    if every == "0":
        assert len(reports) == 1  # the last report only
    else:  # and every so often on the way, with the work done so far
        assert len(reports) >= 2
        assert all(d["final"] is False for d in reports[:-1])
        assert [d["events"] for d in reports] == sorted(d["events"] for d in reports)


def test_a_worker_that_finds_no_redis_says_so_in_json(tmp_path: Path) -> None:
    child = _child("worker", "--redis-url", "redis://127.0.0.1:1/0", "--rules",
                   str(ROOT / "rules"), "--redis-connect-timeout", "0.5")
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 1
    rules, doc = _json_lines(stderr)
    assert rules["message"] == "worker rules" and rules["rules"] == str((ROOT / "rules").resolve())
    assert doc["level"] == "error" and doc["message"] == "Redis is unavailable"

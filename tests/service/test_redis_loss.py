"""The service and a worker while Redis loses its state, loses a consumer group, or freezes.

Each test runs the service (FastAPI's TestClient) and a worker (a thread) on a redis-server of
its own, then does to Redis what happens in production: everything flushed, a restart that comes
back empty, a consumer group deleted, the process stopped (SIGSTOP) and resumed (SIGCONT).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
import redis
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from pointengine.catalog.loading import Catalog
from pointengine.cli.main import app as cli
from pointengine.decide.engine import Engine
from pointengine.service.signing import RedisReplayGuard, Verifier, sign
from pointengine.service.streams import StreamKeys, shard_count
from pointengine.service.worker import Worker
from pointengine.store.redis_server import RedisServer
from pointengine.store.redis_store import RedisStore, connect

KEYS = StreamKeys.under("pe:")
CARD = "national-phase2-card"
PERSON = "MKA7Q2X9"
APPLICATION = orjson.dumps({
    "type": "mynapoint_application", "source": "mykey", "id": "a1", "person": PERSON,
    "at": "2022-02-01T09:00:00+09:00", "phase": 2, "provider": "quickpay",
    "card_applied_on": "2021-12-01", "residence": "131016"})
TIMEOUT = 0.5
"""The clients' socket timeouts in these tests (seconds)."""


def purchase(n: int) -> bytes:
    """QuickPay's webhook of a 4,000 yen purchase (1,000 points for an applicant)."""
    return orjson.dumps({
        "eventType": "PAYMENT", "transactionId": f"QP-{n}", "userMyKeyId": PERSON,
        "amount": 4000, "currency": "JPY", "occurredAt": "2022-03-01T12:34:56+09:00",
        "storeCode": "S0001", "storeMunicipalityCode": "131016"})


@pytest.fixture
def keys() -> dict[str, bytes]:
    """Fresh secrets of the two senders these tests use."""
    return {p: secrets.token_hex(16).encode() for p in ("quickpay", "mykey")}


def post(http: TestClient, keys: dict[str, bytes], provider: str, body: bytes) -> httpx.Response:
    """``body`` signed now by ``provider`` and posted as one transaction."""
    path = f"/providers/{provider}/transactions"
    return http.post(path, content=body, headers=sign(provider, keys[provider], body, path=path,
                                                      now=time.time()))


def wait_for(condition: Callable[[], object], what: str, seconds: float = 10.0) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting: {what}"
        time.sleep(0.02)


def bounded(call: Callable[[], httpx.Response], seconds: float = 15.0) -> tuple[httpx.Response,
                                                                                 float]:
    """``call``'s answer and how long it took; a call that hangs fails the test instead of
    hanging it (the thread is left to finish once Redis resumes)."""
    pool = ThreadPoolExecutor(1)
    started = time.monotonic()
    try:
        answer = pool.submit(call).result(timeout=seconds)
    finally:
        pool.shutdown(wait=False)
    return answer, time.monotonic() - started


@dataclass
class Running:
    """The service's HTTP client and a worker running in a thread."""

    http: TestClient
    worker: Worker
    thread: threading.Thread


@contextlib.contextmanager
def running(url: str, keys: dict[str, bytes], catalog: Catalog,
            app: Any = None) -> Iterator[Running]:
    """The service (``app``, or one made here) and a worker on ``url``, both with short
    socket timeouts."""
    from pointengine.service.app import ServiceConfig, create_app

    if app is None:
        client = connect(url, timeout=TIMEOUT, connect_timeout=TIMEOUT)
        app = create_app(ServiceConfig(client, Verifier(keys, RedisReplayGuard(client))))
    engine = Engine(catalog, RedisStore(connect(url, timeout=TIMEOUT, connect_timeout=TIMEOUT)))
    worker = Worker(connect(url, timeout=TIMEOUT, connect_timeout=TIMEOUT), engine, name="w",
                    block_ms=50, lease_ms=600)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, kwargs={"stop": stop})
    thread.start()
    try:
        with TestClient(app, raise_server_exceptions=False) as http:
            yield Running(http, worker, thread)
    finally:
        stop.set()
        thread.join(timeout=20)
        engine.close()
    assert not thread.is_alive(), "the worker did not stop"


def applied(url: str, event: str) -> bool:
    """True once ``event`` was applied to the store."""
    client = redis.Redis.from_url(url, socket_timeout=2)
    try:
        return bool(RedisStore(client).applied([event]))
    finally:
        client.close()


def accepted_entries(client: redis.Redis) -> int:
    """How many entries the shard streams hold."""
    streams = [k for k in client.scan_iter("pe:stream:*") if client.type(k) == b"stream"]
    return sum(int(client.xlen(k)) for k in streams)


def start_with_one_award(svc: Running, keys: dict[str, bytes], url: str) -> None:
    """An application and a purchase, accepted and applied: 1,000 points."""
    assert post(svc.http, keys, "mykey", APPLICATION).status_code == 202
    assert post(svc.http, keys, "quickpay", purchase(1)).status_code == 202
    wait_for(lambda: applied(url, "quickpay/QP-1"), "the first purchase applied")
    client = redis.Redis.from_url(url)
    assert RedisStore(client).totals() == {(CARD, "quickpay"): 1000}
    client.close()


@pytest.mark.parametrize("loss", ["flush", "restart"])
def test_redis_back_empty_is_refused_and_reported_until_the_operator_reinitialises(
        keys: dict[str, bytes], catalog: Catalog, loss: str) -> None:
    from pointengine.service.app import ServiceConfig, create_app

    server = RedisServer().start()
    try:
        url = server.url
        with running(url, keys, catalog) as svc:
            start_with_one_award(svc, keys, url)
            if loss == "flush":
                server.client().flushall()
            else:  # no persistence: it comes back empty, on the same address
                port = server.port
                server.stop()
                server = RedisServer(port=port).start()
            client = server.client()
            answer = post(svc.http, keys, "quickpay", purchase(2))
            assert (answer.status_code, answer.json()["reason"]) == (503, "state_lost")
            assert int(answer.headers["Retry-After"]) > 0
            assert accepted_entries(client) == 0, "nothing may be accepted onto a lost state"
            health = svc.http.get("/health")
            assert (health.status_code, health.json()["status"]) == (503, "state_lost")
            assert "reinit" in health.json()["detail"]
            metrics = svc.http.get("/metrics").text
            assert "pointengine_state_lost 1.0" in metrics
            assert 'pointengine_requests_rejected_total{provider="quickpay",' \
                'reason="state_lost"} 1.0' in metrics
            wait_for(lambda: svc.worker.report.state_lost is not None, "the worker noticed")
            other = connect(url, timeout=TIMEOUT, connect_timeout=TIMEOUT)
            fresh = create_app(ServiceConfig(other, Verifier(keys, RedisReplayGuard(other))))
            with TestClient(fresh) as newcomer:  # a service started now cannot be fooled
                assert newcomer.get("/health").status_code == 503
                assert post(newcomer, keys, "quickpay", purchase(3)).status_code == 503
            assert accepted_entries(client) == 0
            assert svc.thread.is_alive(), "the worker waits, it does not stop"
            assert not RedisStore(client).totals()

            result = CliRunner().invoke(cli, ["reinit", "--redis-url", url, "--yes"])
            assert result.exit_code == 0, result.output
            assert post(svc.http, keys, "quickpay", purchase(2)).status_code == 202
            assert svc.http.get("/health").status_code == 200
            wait_for(lambda: applied(url, "quickpay/QP-2"), "applied after the reinit")
            assert svc.worker.report.state_lost is None
            assert "pointengine_state_lost 0.0" in svc.http.get("/metrics").text
    finally:
        server.stop()


def test_a_deleted_consumer_group_is_made_again_and_nothing_is_lost(
        keys: dict[str, bytes], catalog: Catalog) -> None:
    with RedisServer() as server, running(server.url, keys, catalog) as svc:
        start_with_one_award(svc, keys, server.url)
        client = server.client()
        for shard in KEYS.all_shards(shard_count(client, KEYS)):
            client.xgroup_destroy(KEYS.shard(shard), KEYS.group)
        assert post(svc.http, keys, "quickpay", purchase(2)).status_code == 202
        wait_for(lambda: applied(server.url, "quickpay/QP-2"), "applied once the group is back")
        assert RedisStore(client).totals() == {(CARD, "quickpay"): 2000}
        assert svc.worker.report.groups_recreated >= 1
        assert svc.worker.report.state_lost is None
        assert int(client.hget(KEYS.stats, "groups_recreated") or 0) >= 1
        assert svc.http.get("/health").status_code == 200
        metrics = svc.http.get("/metrics").text
        assert "pointengine_worker_groups_recreated_total" in metrics
        assert "pointengine_state_lost 0.0" in metrics


@pytest.fixture
def logging_kept() -> Iterator[None]:
    """The root logger as it was (``app_from_env`` installs JSON logging)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_a_frozen_redis_gets_prompt_503s_and_everything_goes_on_when_it_resumes(
        keys: dict[str, bytes], catalog: Catalog, monkeypatch: pytest.MonkeyPatch,
        logging_kept: None) -> None:
    from pointengine.service.app import app_from_env

    with RedisServer() as server:
        monkeypatch.setenv("POINTENGINE_REDIS_URL", server.url)
        monkeypatch.setenv("POINTENGINE_REDIS_TIMEOUT", str(TIMEOUT))
        monkeypatch.setenv("POINTENGINE_LOG_LEVEL", "CRITICAL")
        for provider, secret in keys.items():
            monkeypatch.setenv(f"POINTENGINE_SECRET_{provider.upper()}", secret.decode())
        with running(server.url, keys, catalog, app=app_from_env()) as svc:
            start_with_one_award(svc, keys, server.url)
            os.kill(server.pid, signal.SIGSTOP)
            try:
                answer, took = bounded(lambda: post(svc.http, keys, "quickpay", purchase(2)))
                assert (answer.status_code, answer.json()["reason"]) == (503, "unavailable")
                assert took < 4 * TIMEOUT + 1, took
                assert int(answer.headers["Retry-After"]) > 0
                health, took = bounded(lambda: svc.http.get("/health"))
                assert (health.status_code, health.json()["status"]) == (503, "unavailable")
                assert took < 2 * TIMEOUT + 1, took
                assert int(health.headers["Retry-After"]) > 0
                for text in (answer.text, health.text):  # no internal address in an answer
                    assert "127.0.0.1" not in text and str(server.port) not in text, text
                metrics, _ = bounded(lambda: svc.http.get("/metrics"))
                assert "pointengine_redis_up 0.0" in metrics.text
                wait_for(lambda: svc.worker.report.failures > 0, "the worker saw the failure")
                assert svc.thread.is_alive()
            finally:
                os.kill(server.pid, signal.SIGCONT)
            answer = post(svc.http, keys, "quickpay", purchase(2))  # the provider's retry
            assert answer.status_code == 202, answer.text
            assert svc.http.get("/health").status_code == 200
            wait_for(lambda: applied(server.url, "quickpay/QP-2"), "applied after the resume")
            assert svc.worker.report.state_lost is None

"""What one request can cost the service: its size, its nesting, its time, and no My Number
echoed however it is grouped. Bodies are streamed to a real uvicorn server on loopback, so
that what is read before a refusal is what a client can make the server read."""

from __future__ import annotations

import logging
import select
import socket
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import redis
from fastapi.testclient import TestClient

from pointengine.service.app import ServiceConfig, create_app
from pointengine.service.signing import RedisReplayGuard, Verifier
from tests.redis_fixtures import redis_client, redis_server
from tests.service.test_service import (
    http,
    keys,
    post,
    quickpay_body,
    shard_streams,
)
from tests.serving import serving

__all__ = ["http", "keys", "redis_client", "redis_server"]

LIMIT = 1024 * 1024
_SERVICES: dict[int, Any] = {}
"""The service behind each running server, by port, for tests that hold its parsers."""


@pytest.fixture
def server(redis_client: redis.Redis, keys: dict[str, bytes]) -> Iterator[int]:
    """The app under uvicorn on a free loopback port, with a 1 MiB body limit and half a
    second for a body to arrive; yields the port."""
    verifier = Verifier(keys, RedisReplayGuard(redis_client))
    app = create_app(ServiceConfig(redis_client, verifier, max_body=LIMIT, body_seconds=0.5))
    with serving(app) as port:
        _SERVICES[port] = app.state.service
        yield port
        _SERVICES.pop(port)


def _request_head(headers: str) -> bytes:
    return (f"POST /providers/quickpay/transactions HTTP/1.1\r\nHost: localhost\r\n"
            f"Content-Type: application/json\r\n{headers}\r\n").encode()


def _answer(connection: socket.socket) -> tuple[int, dict[str, object]]:
    """The status and JSON body of the answer on ``connection``."""
    connection.settimeout(5)
    received = b""
    while b"\r\n\r\n" not in received or not received.rstrip().endswith(b"}"):
        chunk = connection.recv(65536)
        if not chunk:
            break
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    if b"chunked" in head.lower():
        body = body.split(b"\r\n", 1)[1].rsplit(b"\r\n0\r\n", 1)[0]
    return int(head.split()[1]), orjson.loads(body)


def test_a_chunked_upload_is_refused_as_soon_as_it_is_over_the_limit(server: int) -> None:
    """It declares no length, so it is counted as it arrives: the answer comes while the
    client is still sending, not after the whole body was held."""
    piece = b"x" * 65536
    sent = 0
    with socket.create_connection(("127.0.0.1", server)) as connection:
        connection.sendall(_request_head("Transfer-Encoding: chunked\r\n"))
        while sent < 256 * LIMIT and not select.select([connection], [], [], 0)[0]:
            connection.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            sent += len(piece)
            time.sleep(0.001)
        status, answer = _answer(connection)
    assert status == 413 and answer["reason"] == "too_large"
    assert sent < 8 * LIMIT  # the limit and what the socket buffers took, not 256 MiB


def test_a_declared_length_over_the_limit_is_refused_before_any_byte_is_read(
        server: int) -> None:
    with socket.create_connection(("127.0.0.1", server)) as connection:
        connection.sendall(_request_head(f"Content-Length: {1024 * LIMIT}\r\n"))
        status, answer = _answer(connection)
    assert status == 413 and answer["reason"] == "too_large"


def test_a_body_that_does_not_arrive_in_time_is_refused(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server)) as connection:
        connection.sendall(_request_head("Content-Length: 100\r\n") + b'{"eventType"')
        time.sleep(1.0)
        status, answer = _answer(connection)
    assert status == 408 and answer["reason"] == "body_timeout"


@pytest.mark.parametrize("levels", [65, 256, 600, 1_024, 1_025, 20_000])
def test_a_body_nested_too_deeply_gets_422_not_500(
        http: TestClient, keys: dict[str, bytes], redis_client: redis.Redis,
        levels: int) -> None:
    body = quickpay_body()[:-1] + b',"meta":' + b"[" * levels + b"]" * levels + b"}"
    answer = post(http, keys, "quickpay", body)
    assert answer["_status"] == 422 and answer["reason"] == "too_deep"
    assert not shard_streams(redis_client)


@pytest.mark.parametrize("grouped", [
    "4712:1186:2524", "6273.1280.0619", "2464_6924_6999", "064-589-943-161",
    "4712\u30001186\u30002524", "4712\u00a01186\u00a02524", "4712\uff0d1186\uff0d2524",
    "4712\t1186\t2524", "4712\u200b1186\u200b2524", "4712\u00ad1186\u00ad2524",
])
@pytest.mark.parametrize("field", ["userMyKeyId", "storeCode", "transactionId", "storeName"])
def test_a_my_number_however_grouped_is_refused_and_never_echoed(
        http: TestClient, keys: dict[str, bytes], redis_client: redis.Redis,
        caplog: pytest.LogCaptureFixture, grouped: str, field: str) -> None:
    with caplog.at_level(logging.INFO, logger="pointengine.service.app"):
        answer = post(http, keys, "quickpay", quickpay_body(**{field: grouped}))
    assert answer["_status"] == 422 and answer["reason"] == "my_number"
    assert not shard_streams(redis_client)
    digits = [grouped[:4], grouped[-4:]]
    for text in (orjson.dumps(answer).decode(), caplog.text):
        assert not any(part in text for part in digits), text


def test_health_answers_while_every_request_thread_waits_for_a_parser(
        server: int, keys: dict[str, bytes]) -> None:
    """Uploads waiting for one of the few parsers hold request threads; /health and /metrics
    answer from threads of their own."""
    import http.client
    from concurrent.futures import ThreadPoolExecutor

    from pointengine.service.signing import sign

    app_service = _SERVICES[server]
    held = [app_service._parsing.acquire(timeout=5) for _ in range(app_service.config.parsers)]
    assert all(held)

    def upload(n: int) -> int:
        body = quickpay_body(transactionId=f"QP-{n:04d}")  # each its own signature
        path = "/providers/quickpay/transactions"
        connection = http.client.HTTPConnection("127.0.0.1", server, timeout=30)
        connection.request("POST", path, body, sign("quickpay", keys["quickpay"], body,
                                                    path=path))
        return connection.getresponse().status

    with ThreadPoolExecutor(60) as pool:
        waiting = [pool.submit(upload, n) for n in range(60)]  # more than the 40 request threads
        time.sleep(1.0)
        for path in ("/health", "/metrics"):
            connection = http.client.HTTPConnection("127.0.0.1", server, timeout=5)
            connection.request("GET", path)
            assert connection.getresponse().status == 200, path
        for _ in held:
            app_service._parsing.release()
        assert [future.result() for future in waiting] == [202] * 60

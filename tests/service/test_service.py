"""The HTTP ingestion service on a real Redis, through FastAPI's TestClient."""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
import redis
from fastapi.testclient import TestClient

from load.service_scenario import STORES
from pointengine.adapters.traffic import generate
from pointengine.catalog.loading import load_catalog
from pointengine.decide.engine import Engine
from pointengine.model.privacy import my_number_check_digit
from pointengine.service.signing import HEADER_SIGNATURE, RedisReplayGuard, Verifier, sign
from pointengine.service.streams import decode_entry
from pointengine.service.worker import Worker
from pointengine.store.redis_server import RedisServer
from pointengine.store.redis_store import RedisStore
from tests.redis_fixtures import redis_client, redis_server

__all__ = ["redis_client", "redis_server"]

ROOT = Path(__file__).resolve().parents[2]
JST = dt.timezone(dt.timedelta(hours=9))
PROVIDERS = ("quickpay", "transitcard", "carrierpay", "towncoin", "mykey", "juki-net")
WINDOW = (dt.datetime(2022, 3, 1, tzinfo=JST), dt.datetime(2022, 3, 2, tzinfo=JST))
PERSONS = ("MKA7Q2X9", "MKB4K8P1", "MKC9Z3R6")
MY_NUMBER = "12345678901" + str(my_number_check_digit("12345678901"))
FULL_WIDTH = MY_NUMBER.translate(str.maketrans("0123456789", "０１２３４５６７８９"))


@pytest.fixture
def keys() -> dict[str, bytes]:
    """Fresh secrets, one per provider."""
    return {p: secrets.token_hex(16).encode() for p in PROVIDERS}


@pytest.fixture
def http(redis_client: redis.Redis, keys: dict[str, bytes]) -> Iterator[TestClient]:
    """The app on the test Redis."""
    from pointengine.service.app import ServiceConfig, create_app

    verifier = Verifier(keys, RedisReplayGuard(redis_client))
    with TestClient(create_app(ServiceConfig(redis_client, verifier))) as client:
        yield client


def post(http: TestClient, keys: dict[str, bytes], provider: str, body: bytes, *,
         path: str = "transactions", signer: str | None = None, now: float | None = None,
         **params: str) -> dict[str, object]:
    """Sign ``body`` as ``signer`` (default ``provider``) and post it; the JSON answer plus
    ``_status``."""
    signer = signer or provider
    target, query = f"/providers/{provider}/{path}", urlencode(params)
    headers = sign(signer, keys[signer], body, path=target, query=query, now=now)
    # the query is sent as it was signed, not re-encoded from params by the client
    response = http.post(f"{target}?{query}" if query else target, content=body,
                         headers=headers)
    answer: dict[str, object] = response.json()
    answer["_status"] = response.status_code
    return answer


def webhooks(provider: str, n: int = 5) -> list[bytes]:
    """``n`` native bodies of a webhook provider."""
    native = generate(provider, PERSONS, STORES, n, 3, *WINDOW)
    assert isinstance(native, list)
    return native


def shard_streams(client: redis.Redis) -> list[bytes]:
    """The shard streams that exist."""
    return sorted(k for k in client.scan_iter("pe:stream:*") if client.type(k) == b"stream")


def stream_events(client: redis.Redis) -> list[object]:
    """Every event in the shard streams."""
    out: list[object] = []
    for key in shard_streams(client):
        entries: Any = client.xrange(key)
        out.extend(e for _, fields in entries for e in decode_entry(fields)[2])
    return out


def quickpay_body(**changes: object) -> bytes:
    """One QuickPay payment webhook."""
    body = {"eventType": "PAYMENT", "transactionId": "QP-0001", "userMyKeyId": "MKA7Q2X9",
            "amount": 1280, "currency": "JPY", "occurredAt": "2022-03-01T12:34:56+09:00",
            "storeCode": "S0001", "storeMunicipalityCode": "131016"}
    body.update(changes)
    return orjson.dumps(body)


@pytest.mark.parametrize("provider", ["quickpay", "transitcard", "carrierpay"])
def test_single_posts_are_accepted_into_the_stream(http: TestClient, keys: dict[str, bytes],
                                                   redis_client: redis.Redis,
                                                   provider: str) -> None:
    bodies = webhooks(provider)
    for body in bodies:
        answer = post(http, keys, provider, body)
        assert answer["_status"] == 202, answer
    events = stream_events(redis_client)
    assert len(events) >= len(bodies)
    assert {getattr(e, "source") for e in events} == {provider}  # noqa: B009


def test_batches_of_every_provider(http: TestClient, keys: dict[str, bytes],
                                   redis_client: redis.Redis) -> None:
    total = 0
    for provider in ("quickpay", "transitcard"):
        answer = post(http, keys, provider, b"[" + b",".join(webhooks(provider, 30)) + b"]",
                      path="batch")
        assert answer["_status"] == 202, answer
        total += int(str(answer["accepted"]))
    xml = webhooks("carrierpay", 10)
    answer = post(http, keys, "carrierpay", orjson.dumps([b.decode() for b in xml]),
                  path="batch")
    assert answer["_status"] == 202, answer
    total += int(str(answer["accepted"]))
    csv_file = generate("towncoin", PERSONS, STORES, 40, 3, *WINDOW)
    assert isinstance(csv_file, bytes)
    answer = post(http, keys, "towncoin", csv_file, path="batch")
    assert answer["_status"] == 202, answer
    assert answer["accepted"] == 40
    total += 40
    assert len(stream_events(redis_client)) == total


@pytest.mark.parametrize("body, reason", [
    (b"not json", "malformed"),
    (quickpay_body(amount=12.5), "malformed"),
    (quickpay_body(storeMunicipalityCode="999999"), "unknown_municipality"),
    (quickpay_body(userMyKeyId=MY_NUMBER), "my_number"),
    (quickpay_body(storeName=f"yamada {MY_NUMBER}"), "my_number"),
    (quickpay_body(storeName=f"yamada {FULL_WIDTH}"), "my_number"),
    (quickpay_body(meta={"n": MY_NUMBER}), "my_number"),
])
def test_malformed_gets_422_with_the_reason_and_changes_nothing(
        http: TestClient, keys: dict[str, bytes], redis_client: redis.Redis,
        caplog: pytest.LogCaptureFixture, body: bytes, reason: str) -> None:
    with caplog.at_level(logging.INFO, logger="pointengine.service.app"):
        answer = post(http, keys, "quickpay", body)
    assert answer["_status"] == 422
    assert answer["reason"] == reason
    assert not shard_streams(redis_client)
    assert MY_NUMBER not in orjson.dumps(answer).decode()
    assert FULL_WIDTH not in orjson.dumps(answer).decode()
    assert MY_NUMBER not in caplog.text and FULL_WIDTH not in caplog.text
    metrics = http.get("/metrics").text
    assert f'pointengine_requests_rejected_total{{provider="quickpay",reason="{reason}"}} 1.0' \
        in metrics


def test_one_bad_record_refuses_the_batch_unless_lenient(
        http: TestClient, keys: dict[str, bytes], redis_client: redis.Redis) -> None:
    good = webhooks("quickpay", 3)
    bad = quickpay_body(transactionId="QP-bad", amount="12")
    body = b"[" + b",".join([*good, bad]) + b"]"
    answer = post(http, keys, "quickpay", body, path="batch")
    assert answer["_status"] == 422
    assert answer["rejects"] == [{"item": 4, "position": 1, "reason": "malformed",
                                  "detail": answer["rejects"][0]["detail"]}]  # type: ignore[index]
    assert not shard_streams(redis_client)
    later = dt.datetime.now(dt.UTC).timestamp() + 1  # signed again: not a replay
    answer = post(http, keys, "quickpay", body, path="batch", lenient="true", now=later)
    assert answer["_status"] == 202
    assert answer["accepted"] == 3 and len(answer["rejects"]) == 1  # type: ignore[arg-type]
    assert post(http, keys, "quickpay", quickpay_body(), path="batch")["_status"] == 422


def test_a_timestamp_out_of_range_is_one_bad_record_of_a_lenient_batch(
        http: TestClient, keys: dict[str, bytes], redis_client: redis.Redis) -> None:
    good = webhooks("quickpay", 3)
    bad = quickpay_body(transactionId="QP-year1", occurredAt="0001-01-01T00:00:00+09:00")
    body = b"[" + b",".join([*good, bad]) + b"]"
    answer = post(http, keys, "quickpay", body, path="batch", lenient="true")
    assert answer["_status"] == 202, answer
    assert answer["accepted"] == 3 and len(stream_events(redis_client)) == 3
    [reject] = answer["rejects"]  # type: ignore[misc]
    assert reject["item"] == 4 and reject["reason"] == "malformed"
    assert "occurredAt" in reject["detail"] and "out of range" in reject["detail"]


def test_a_lenient_batch_keeps_the_records_without_a_my_number(
        http: TestClient, keys: dict[str, bytes], redis_client: redis.Redis,
        caplog: pytest.LogCaptureFixture) -> None:
    csv_file = generate("towncoin", PERSONS, STORES, 10, 3, *WINDOW)
    assert isinstance(csv_file, bytes)
    lines = csv_file.split(b"\r\n")
    cells = lines[3].decode("cp932").split(",")
    cells[6] = f"山田商店 {FULL_WIDTH}"
    lines[3] = ",".join(cells).encode("cp932")
    with caplog.at_level(logging.INFO, logger="pointengine.service.app"):
        answer = post(http, keys, "towncoin", b"\r\n".join(lines), path="batch",
                      lenient="true")
    assert answer["_status"] == 202, answer
    assert answer["accepted"] == 9 and len(stream_events(redis_client)) == 9
    [reject] = answer["rejects"]  # type: ignore[misc]
    assert reject["position"] == 4 and reject["reason"] == "my_number"
    assert FULL_WIDTH not in orjson.dumps(answer).decode() and FULL_WIDTH not in caplog.text


@pytest.mark.parametrize("case", ["unsigned", "forged", "unknown_signer", "stale", "replayed",
                                  "cross", "unknown"])
def test_bad_signatures_are_refused_and_change_nothing(
        http: TestClient, keys: dict[str, bytes], redis_client: redis.Redis, case: str) -> None:
    body = quickpay_body()
    path, expected, reason = "/providers/quickpay/transactions", 401, "signature"
    headers = sign("quickpay", keys["quickpay"], body, path=path)
    if case == "unsigned":
        headers = {}
    elif case == "forged":
        headers[HEADER_SIGNATURE] = "v2=" + "0" * 64
    elif case == "unknown_signer":
        headers = sign("nobody", secrets.token_hex(16).encode(), body, path=path)
    elif case == "stale":
        headers = sign("quickpay", keys["quickpay"], body, path=path,
                       now=dt.datetime.now(dt.UTC).timestamp() - 301)
        reason = "stale"
    elif case == "replayed":
        assert http.post(path, content=body, headers=headers).status_code == 202
        redis_client.delete(*shard_streams(redis_client))
        reason = "replayed"
    elif case == "cross":
        headers = sign("towncoin", keys["towncoin"], body, path=path)
        expected, reason = 403, "cross_provider"
    elif case == "unknown":
        path, expected, reason = "/providers/nobody/transactions", 404, "unknown_provider"
    response = http.post(path, content=body, headers=headers)
    assert response.status_code == expected, response.text
    assert response.json()["reason"] == reason
    assert not shard_streams(redis_client)


def lenient_batch() -> bytes:
    """A QuickPay batch of three good records and a bad one."""
    bad = quickpay_body(transactionId="QP-bad", amount="12")
    return b"[" + b",".join([*webhooks("quickpay", 3), bad]) + b"]"


@pytest.mark.parametrize("method, path, query, sent", [
    ("POST", "/providers/quickpay/batch", "", "/providers/quickpay/batch?lenient=true"),
    ("POST", "/providers/quickpay/batch", "lenient=false",
     "/providers/quickpay/batch?lenient=true"),
    ("POST", "/providers/quickpay/transactions", "", "/providers/quickpay/batch"),
    ("POST", "/providers/transitcard/batch", "", "/providers/quickpay/batch"),
    ("GET", "/providers/quickpay/batch", "", "/providers/quickpay/batch"),
    ("PUT", "/providers/quickpay/batch", "lenient=true",
     "/providers/quickpay/batch?lenient=true"),
])
def test_a_request_sent_otherwise_than_it_was_signed_is_refused(
        http: TestClient, keys: dict[str, bytes], redis_client: redis.Redis, method: str,
        path: str, query: str, sent: str) -> None:
    body = lenient_batch()
    headers = sign("quickpay", keys["quickpay"], body, method=method, path=path, query=query)
    response = http.post(sent, content=body, headers=headers)
    assert response.status_code == 401, response.text
    assert response.json()["reason"] == "signature"
    assert not shard_streams(redis_client) and not replay_keys(redis_client)


def test_a_request_signed_with_its_query_is_accepted(
        http: TestClient, keys: dict[str, bytes], redis_client: redis.Redis) -> None:
    body = lenient_batch()
    headers = sign("quickpay", keys["quickpay"], body, path="/providers/quickpay/batch",
                   query="lenient=true")
    response = http.post("/providers/quickpay/batch?lenient=true", content=body,
                         headers=headers)
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 3 and len(response.json()["rejects"]) == 1


def test_an_unknown_signer_is_answered_as_a_known_one_with_a_wrong_signature(
        http: TestClient, keys: dict[str, bytes], redis_client: redis.Redis) -> None:
    body = quickpay_body()
    path = "/providers/quickpay/transactions"
    wrong = sign("quickpay", keys["quickpay"], body, path=path)
    wrong[HEADER_SIGNATURE] = "v2=" + "0" * 64
    unknown = sign("nobody", secrets.token_hex(16).encode(), body, path=path)
    answers = [http.post(path, content=body, headers=headers) for headers in (wrong, unknown)]
    assert [a.status_code for a in answers] == [401, 401]
    assert answers[0].json() == answers[1].json()
    assert answers[0].json()["reason"] == "signature"
    assert answers[0].headers["content-length"] == answers[1].headers["content-length"]
    assert not shard_streams(redis_client) and not replay_keys(redis_client)
    assert 'pointengine_requests_rejected_total{provider="quickpay",reason="signature"} 2.0' \
        in http.get("/metrics").text


def test_a_platform_source_cannot_post_another_sources_events(
        http: TestClient, keys: dict[str, bytes], redis_client: redis.Redis) -> None:
    event = {"type": "residence_change", "source": "juki-net", "id": "m1", "person": "MKA7Q2X9",
             "at": "2022-03-01T10:00:00+09:00", "residence": "131016"}
    answer = post(http, keys, "mykey", orjson.dumps(event))
    assert answer["_status"] == 403 and answer["reason"] == "cross_provider"
    assert not shard_streams(redis_client)
    assert post(http, keys, "juki-net", orjson.dumps(event))["_status"] == 202


@pytest.mark.parametrize("first, reason", [(b"5000", "malformed"),
                                           (f'"{MY_NUMBER}"'.encode(), "my_number")])
def test_a_batch_element_that_gives_a_key_twice_is_refused_whole(
        http: TestClient, keys: dict[str, bytes], redis_client: redis.Redis, first: bytes,
        reason: str) -> None:
    # the batch's elements are encoded again for the adapter: the first value must not vanish
    twice = quickpay_body().replace(b'"amount":1280', b'"amount":' + first + b',"amount":5')
    body = b"[" + quickpay_body(transactionId="QP-0002") + b"," + twice + b"]"
    answer = post(http, keys, "quickpay", body, path="batch", lenient="true")
    assert (answer["_status"], answer["reason"]) == (422, reason)
    assert MY_NUMBER not in str(answer)
    if reason == "malformed":
        assert "'amount' is given more than once" in answer["detail"]
    assert not shard_streams(redis_client)


def test_a_platform_source_cannot_post_events_it_does_not_send(
        http: TestClient, keys: dict[str, bytes], redis_client: redis.Redis) -> None:
    move = {"type": "residence_change", "source": "mykey", "id": "m1", "person": "MKA7Q2X9",
            "at": "2022-03-01T10:00:00+09:00", "residence": "131016"}
    draw = {"type": "lottery_draw", "source": "mykey", "id": "d1", "person": "MKOFFICIAL",
            "at": "2023-04-03T10:00:00+09:00", "program": "kumamoto-health-lottery"}
    for event in (move, draw):
        answer = post(http, keys, "mykey", orjson.dumps(event))
        assert (answer["_status"], answer["reason"]) == (403, "forbidden_event_type")
        assert repr(event["type"]) in answer["detail"]
    assert not shard_streams(redis_client)


def test_a_duplicate_delivery_is_accepted_and_changes_nothing(
        http: TestClient, keys: dict[str, bytes], redis_client: redis.Redis,
        redis_server: RedisServer) -> None:
    application = {"type": "mynapoint_application", "source": "mykey", "id": "a1",
                   "person": "MKA7Q2X9", "at": "2022-02-01T09:00:00+09:00", "phase": 2,
                   "provider": "quickpay", "card_applied_on": "2021-12-01",
                   "residence": "131016"}
    assert post(http, keys, "mykey", orjson.dumps(application))["_status"] == 202
    body = quickpay_body(amount=4000)
    assert post(http, keys, "quickpay", body)["_status"] == 202
    engine = Engine(load_catalog(ROOT / "rules"), RedisStore(redis_server.client()))
    worker = Worker(redis_server.client(), engine, block_ms=10)
    worker.run(until_empty=True)
    store = RedisStore(redis_server.client())
    before = store.totals()
    assert before == {("national-phase2-card", "quickpay"): 1000}
    later = dt.datetime.now(dt.UTC).timestamp() + 1  # signed again: a re-delivery
    assert post(http, keys, "quickpay", body, now=later)["_status"] == 202
    worker.run(until_empty=True)
    assert store.totals() == before
    assert worker.report.statuses["duplicate"] == 1
    metrics = http.get("/metrics").text
    assert 'pointengine_points_awarded{program="national-phase2-card",provider="quickpay"} ' \
        '1000.0' in metrics
    assert 'pointengine_worker_events_total{status="duplicate"} 1.0' in metrics
    assert "pointengine_stream_lag 0.0" in metrics
    assert "pointengine_stream_pending 0.0" in metrics
    assert 'pointengine_events_accepted_total{provider="quickpay"} 2.0' in metrics
    engine.close()


def test_health(http: TestClient) -> None:
    assert http.get("/health").json() == {"status": "ok"}


def test_health_reports_a_dead_redis(keys: dict[str, bytes]) -> None:
    from pointengine.service.app import ServiceConfig, create_app

    client = redis.Redis(port=1, socket_connect_timeout=0.2)
    app = create_app(ServiceConfig(client, Verifier(keys, RedisReplayGuard(client))))
    with TestClient(app) as http:
        assert http.get("/health").status_code == 503


def test_with_min_replicas_a_202_waits_for_a_replica(keys: dict[str, bytes]) -> None:
    from pointengine.service.app import ServiceConfig, create_app

    with RedisServer() as primary:
        replica = RedisServer(args=("--replicaof", "127.0.0.1", str(primary.port))).start()
        try:
            deadline = time.monotonic() + 30
            while replica.client().info("replication").get("master_link_status") != "up":
                assert time.monotonic() < deadline, "the replica did not connect"
                time.sleep(0.1)
            client = primary.client()
            config = ServiceConfig(client, Verifier(keys, RedisReplayGuard(client)),
                                   min_replicas=1, replica_timeout_ms=300)
            with TestClient(create_app(config)) as http:
                assert post(http, keys, "quickpay", quickpay_body())["_status"] == 202
                replica.stop()
                body = quickpay_body(transactionId="QP-0002")
                headers = sign("quickpay", keys["quickpay"], body,
                               path="/providers/quickpay/transactions")
                for _ in range(2):  # the retry is not refused as a replay
                    answer = http.post("/providers/quickpay/transactions", content=body,
                                       headers=headers)
                    assert answer.status_code == 503
                    assert answer.json()["reason"] == "not_replicated"
        finally:
            replica.stop()


def replay_keys(client: redis.Redis) -> list[bytes]:
    """The signatures the replay guard remembers."""
    return list(client.scan_iter("pe:replay:*"))


PLATFORM_EVENT = {"type": "residence_change", "source": "juki-net", "id": "m1",
                  "person": "MKA7Q2X9", "at": "2022-03-01T10:00:00+09:00",
                  "residence": "131016"}


@pytest.mark.parametrize("provider, path, body, status, reason", [
    ("quickpay", "transactions", b"not json", 422, "malformed"),
    ("quickpay", "transactions", quickpay_body(userMyKeyId=MY_NUMBER), 422, "my_number"),
    ("quickpay", "batch", b"[]", 422, "empty"),
    ("quickpay", "batch", quickpay_body(), 422, "malformed"),
    ("quickpay", "batch", b"[" + quickpay_body() + b"," + quickpay_body(amount="1") + b"]",
     422, "malformed"),
    ("mykey", "transactions", orjson.dumps(PLATFORM_EVENT), 403, "cross_provider"),
])
def test_a_refused_request_leaves_no_replay_key(
        http: TestClient, keys: dict[str, bytes], redis_client: redis.Redis, provider: str,
        path: str, body: bytes, status: int, reason: str) -> None:
    answer = post(http, keys, provider, body, path=path)
    assert (answer["_status"], answer["reason"]) == (status, reason)
    assert not replay_keys(redis_client)
    assert not shard_streams(redis_client)


def test_an_accepted_or_replayed_request_keeps_its_replay_key(
        http: TestClient, keys: dict[str, bytes], redis_client: redis.Redis) -> None:
    body = quickpay_body()
    path = "/providers/quickpay/transactions"
    headers = sign("quickpay", keys["quickpay"], body, path=path)
    assert http.post(path, content=body, headers=headers).status_code == 202
    assert len(replay_keys(redis_client)) == 1
    answer = http.post(path, content=body, headers=headers)
    assert (answer.status_code, answer.json()["reason"]) == (401, "replayed")
    assert len(replay_keys(redis_client)) == 1


def test_a_signed_post_while_redis_is_down_gets_503_and_is_counted(
        keys: dict[str, bytes]) -> None:
    from pointengine.service.app import ServiceConfig, create_app

    server = RedisServer().start()
    client = server.client()
    server.stop()  # Redis goes down
    client.connection_pool.connection_kwargs["socket_connect_timeout"] = 0.5
    app = create_app(ServiceConfig(client, Verifier(keys, RedisReplayGuard(client))))
    with TestClient(app, raise_server_exceptions=False) as http:
        answer = post(http, keys, "quickpay", quickpay_body())
        assert (answer["_status"], answer["reason"]) == (503, "unavailable")
        metrics = http.get("/metrics").text
    assert 'pointengine_requests_rejected_total{provider="quickpay",reason="unavailable"} 1.0' \
        in metrics


def test_serve_with_two_processes_counts_every_request_in_each_scrape(
        redis_server: RedisServer, redis_client: redis.Redis, keys: dict[str, bytes]) -> None:
    import httpx

    from pointengine.store.redis_server import _free_port

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({f"POINTENGINE_SECRET_{p.upper()}": s.decode() for p, s in keys.items()})
    process = subprocess.Popen(
        [sys.executable, "-m", "pointengine.cli.main", "serve", "--port", str(port), "--processes",
         "2", "--redis-url", redis_server.url, "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline, "the service did not start"
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        for n in range(12):  # a connection each, spread over both processes
            body = quickpay_body(transactionId=f"QP-{n}")
            answer = httpx.post(f"{base}/providers/quickpay/transactions", content=body,
                                headers=sign("quickpay", keys["quickpay"], body,
                                             path="/providers/quickpay/transactions"),
                                timeout=10)
            assert answer.status_code == 202, answer.text
        line = 'pointengine_requests_accepted_total{provider="quickpay"} 12.0'
        for _ in range(6):
            assert line in httpx.get(base + "/metrics", timeout=10).text
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)

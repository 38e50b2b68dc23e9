"""``GET /providers/{provider}/rejects``: a sender reads its own events refused after a 202,
signed like its posts, and nobody else's. The service and a worker run on a real Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import redis
from fastapi.testclient import TestClient

from load.harness import run_workers
from pointengine.catalog.loading import Catalog
from pointengine.model.privacy import carries_my_number
from pointengine.service.app import ServiceConfig, create_app
from pointengine.service.signing import RedisReplayGuard, Verifier, sign
from pointengine.service.streams import StreamKeys, read_rejects
from pointengine.store.redis_server import RedisServer
from tests.redis_fixtures import redis_client, redis_server
from tests.service.test_service import http, keys, post, quickpay_body

__all__ = ["http", "keys", "redis_client", "redis_server"]

PERSON = "MKA7Q2X9"
APPLICATION = {"type": "mynapoint_application", "source": "mykey", "person": PERSON,
               "at": "2022-02-01T09:00:00+09:00", "phase": 2, "card_applied_on": "2021-12-01",
               "residence": "131016"}


def rejects_of(http: TestClient, keys: dict[str, bytes], provider: str, query: str = "", *,
               signer: str | None = None, now: float | None = None) -> Any:
    """``provider``'s rejects page, signed by ``signer`` (default ``provider``)."""
    path = f"/providers/{provider}/rejects"
    signer = signer or provider
    headers = sign(signer, keys[signer], b"", path=path, query=query, method="GET", now=now)
    return http.get(f"{path}?{query}" if query else path, headers=headers)


@pytest.fixture
def refused(http: TestClient, keys: dict[str, bytes], redis_server: RedisServer,
            catalog: Catalog) -> Iterator[None]:
    """Events accepted with 202 and refused by a worker: MyKey's application naming a
    provider nobody knows; QuickPay's refund of a transaction that never came (given up at
    once) and its refund of more than was paid; nothing of TransitCard's."""
    posted = [
        ("mykey", orjson.dumps({**APPLICATION, "id": "A-1", "provider": "quickpay"})),
        ("mykey", orjson.dumps({**APPLICATION, "id": "A-2", "person": "MKB4K8P1",
                                "provider": "nopay"})),
        ("quickpay", quickpay_body(transactionId="QP-1", amount=1000)),
        ("quickpay", quickpay_body(eventType="REFUND", transactionId="QP-R1",
                                   originalTransactionId="QP-NEVER", amount=500)),
        ("quickpay", quickpay_body(eventType="REFUND", transactionId="QP-R2",
                                   originalTransactionId="QP-1", amount=5000)),
        ("transitcard", orjson.dumps({"records": [{
            "record_id": "TC-1", "record_type": "charge", "holder_mykey_id": PERSON,
            "amount": "3000", "charged_at_ms": 1646105696000, "terminal_id": "S0001",
            "terminal_municipality_code": "131016"}]})),
    ]
    for provider, body in posted:
        assert post(http, keys, provider, body)["_status"] == 202
    run_workers(redis_server, catalog, 1, retry_window_ms=0)
    yield


def test_a_provider_reads_its_own_rejects_and_no_one_elses(
        refused: None, http: TestClient, keys: dict[str, bytes],
        redis_client: redis.Redis) -> None:
    pages = {p: rejects_of(http, keys, p) for p in ("quickpay", "mykey", "transitcard")}
    assert {p: a.status_code for p, a in pages.items()} == dict.fromkeys(pages, 200)
    found = {p: [(r["event"], r["reason"]) for r in a.json()["rejects"]]
             for p, a in pages.items()}
    assert sorted(found["quickpay"]) == [("quickpay/QP-R1", "unknown_transaction"),
                                         ("quickpay/QP-R2", "refund_exceeds_payment")]
    assert found["mykey"] == [("mykey/A-2", "unknown_provider")]
    assert found["transitcard"] == []
    for provider, answer in pages.items():
        page = answer.json()
        assert {r["provider"] for r in page["rejects"]} <= {provider}
        assert page["more"] is False
        assert not carries_my_number(answer.content)
    quickpay = pages["quickpay"].json()["rejects"]
    assert "QP-NEVER" in quickpay[0]["detail"] + quickpay[1]["detail"]
    assert {r["person"] for r in quickpay} == {PERSON}
    # the operator's list still holds everyone's
    every = read_rejects(redis_client, StreamKeys.under("pe:"))
    assert len(every) == 3


def test_the_rejects_come_a_page_at_a_time(refused: None, http: TestClient,
                                          keys: dict[str, bytes]) -> None:
    now = time.time()
    first = rejects_of(http, keys, "quickpay", "limit=1", now=now).json()
    assert len(first["rejects"]) == 1 and first["more"] is True
    assert first["next"] == first["rejects"][0]["id"]
    second = rejects_of(http, keys, "quickpay", f"after={first['next']}&limit=1",
                        now=now).json()
    assert len(second["rejects"]) == 1 and second["more"] is False
    assert second["rejects"][0]["id"] > first["next"]
    last = rejects_of(http, keys, "quickpay", f"after={second['next']}", now=now).json()
    assert last == {"status": "ok", "rejects": [], "next": second["next"], "more": False}
    empty = rejects_of(http, keys, "transitcard").json()
    assert (empty["rejects"], empty["next"]) == ([], "0")


def test_unsigned_forged_and_foreign_requests_are_refused(
        refused: None, http: TestClient, keys: dict[str, bytes],
        redis_client: redis.Redis) -> None:
    path = "/providers/quickpay/rejects"
    unsigned = http.get(path)
    assert (unsigned.status_code, unsigned.json()["reason"]) == (401, "signature")
    forged = sign("quickpay", b"a guessed secret, not it", b"", path=path, method="GET")
    assert http.get(path, headers=forged).json()["reason"] == "signature"
    # a signature of the posts' method, or of another query, does not open the list
    as_post = sign("quickpay", keys["quickpay"], b"", path=path, method="POST")
    assert http.get(path, headers=as_post).status_code == 401
    other_query = sign("quickpay", keys["quickpay"], b"", path=path, query="limit=1",
                       method="GET")
    assert http.get(f"{path}?limit=2", headers=other_query).status_code == 401
    # another provider's list, signed with the asker's own secret
    foreign = rejects_of(http, keys, "quickpay", signer="mykey")
    assert (foreign.status_code, foreign.json()["reason"]) == (403, "cross_provider")
    assert foreign.json()["rejects"] == []
    # the same signed request twice
    headers = sign("quickpay", keys["quickpay"], b"", path=path, method="GET")
    assert http.get(path, headers=headers).status_code == 200
    replayed = http.get(path, headers=headers)
    assert (replayed.status_code, replayed.json()["reason"]) == (401, "replayed")
    unknown = http.get("/providers/nopay/rejects", headers=headers)
    assert (unknown.status_code, unknown.json()["reason"]) == (404, "unknown_provider")
    for answer in (unsigned, foreign, replayed):
        assert "QP-R1" not in answer.text


@pytest.mark.parametrize("query", ["after=yesterday", "after=1-2-3", "limit=0", "limit=1001",
                                   "limit=ten", "limit=-1", "limit=" + "9" * 5_000,
                                   "after=99999999999999999999-0", "after=0-18446744073709551616"])
def test_a_bad_query_of_a_signed_request_is_malformed(
        http: TestClient, keys: dict[str, bytes], query: str) -> None:
    answer = rejects_of(http, keys, "quickpay", query)
    assert (answer.status_code, answer.json()["reason"]) == (422, "malformed")


def test_a_bad_query_of_an_unsigned_request_is_only_unsigned(http: TestClient) -> None:
    answer = http.get("/providers/quickpay/rejects?limit=ten")
    assert (answer.status_code, answer.json()["reason"]) == (401, "signature")


def test_while_redis_is_down_the_rejects_answer_503_without_its_address(
        keys: dict[str, bytes]) -> None:
    with RedisServer() as doomed:
        client = doomed.client()
        port = doomed.port
        doomed.stop()
        client.connection_pool.connection_kwargs["socket_connect_timeout"] = 0.5
        app = create_app(ServiceConfig(client, Verifier(keys, RedisReplayGuard(client))))
        with TestClient(app, raise_server_exceptions=False) as down:
            answer = rejects_of(down, keys, "quickpay")
    assert (answer.status_code, answer.json()["reason"]) == (503, "unavailable")
    assert int(answer.headers["Retry-After"]) >= 1
    assert str(port) not in answer.text and "127.0.0.1" not in answer.text

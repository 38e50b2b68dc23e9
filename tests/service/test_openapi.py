"""The OpenAPI description against the service itself: a valid OpenAPI 3.1 document, every
example body accepted, every documented answer produced by a real request and valid against
its documented schema (reason codes included), and the documentation pages served offline.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import jsonschema
import orjson
import pytest
import redis
from fastapi.testclient import TestClient
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from pointengine.errors import InputError, SignatureRejected, TooLarge
from pointengine.model.privacy import my_number_check_digit
from pointengine.service.answers import (
    OWNERSHIP_REASONS,
    PAYLOAD_REASONS,
    RECORD_REASONS,
    SIGNATURE_REASONS,
    UNAVAILABLE_REASONS,
)
from pointengine.service.app import ServiceConfig, create_app
from pointengine.service.signing import RedisReplayGuard, Verifier, sign
from pointengine.store.redis_server import RedisServer
from tests.redis_fixtures import redis_client, redis_server
from tests.service.test_request_bounds import _answer, _request_head, server
from tests.service.test_service import PLATFORM_EVENT, http, keys, quickpay_body

__all__ = ["http", "keys", "redis_client", "redis_server", "server"]

TRANSACTIONS = "/providers/{provider}/transactions"
BATCH = "/providers/{provider}/batch"
REJECTS = "/providers/{provider}/rejects"
MY_NUMBER = "12345678901" + str(my_number_check_digit("12345678901"))


@pytest.fixture
def spec(http: TestClient) -> dict[str, Any]:
    """The description as the service serves it."""
    answer = http.get("/openapi.json")
    assert answer.status_code == 200
    document: dict[str, Any] = answer.json()
    return document


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in ("", *parts))


def schema_check(spec: dict[str, Any], *location: str) -> jsonschema.Draft202012Validator:
    """A validator of the schema at ``location`` in ``spec`` (its references resolved in
    ``spec``)."""
    registry: Registry[Any] = Registry().with_resource(
        "urn:spec", Resource.from_contents(spec, default_specification=DRAFT202012))
    return jsonschema.Draft202012Validator({"$ref": "urn:spec#" + _pointer(*location)},
                                           registry=registry)


class Answers:
    """Checks real answers against the description and remembers what was checked."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.seen: set[tuple[str, str, str]] = set()
        self.reasons: dict[tuple[str, str, str], set[str]] = {}

    def check(self, method: str, path: str, answer: Any) -> dict[str, Any]:
        """Validate ``answer`` (an httpx response) as an answer of ``method path``."""
        status = str(answer.status_code)
        documented = self.spec["paths"][path][method]["responses"]
        assert status in documented, f"{method} {path} answered {status}, not documented"
        schema_check(self.spec, "paths", path, method, "responses", status, "content",
                     "application/json", "schema").validate(answer.json())
        if answer.status_code == 503:
            assert int(answer.headers["Retry-After"]) >= 1
            assert "127.0.0.1" not in answer.text and "Error " not in answer.text
        key = (method, path, status)
        self.seen.add(key)
        body: dict[str, Any] = answer.json()
        if "reason" in body:
            self.reasons.setdefault(key, set()).add(body["reason"])
        return body


def _signed(http: TestClient, keys: dict[str, bytes], provider: str, body: bytes, *,
            path: str, query: str = "", signer: str | None = None,
            now: float | None = None, method: str = "POST") -> Any:
    signer = signer or provider
    target = path.format(provider=provider)
    headers = sign(signer, keys[signer], body, path=target, query=query, method=method,
                   now=now)
    url = f"{target}?{query}" if query else target
    return http.request(method, url, content=body, headers=headers)


def test_the_description_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1")
    validate_openapi(spec)


def test_the_description_names_the_headers_the_signature_and_the_senders(
        spec: dict[str, Any], keys: dict[str, bytes]) -> None:
    scheme = spec["components"]["securitySchemes"]["signature"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "X-Signature")
    assert "timestamp \\n METHOD \\n path \\n query \\n body" in scheme["description"]
    for path, method in ((TRANSACTIONS, "post"), (BATCH, "post"), (REJECTS, "get")):
        operation = spec["paths"][path][method]
        assert operation["security"] == [{"signature": []}]
        parameters = {p["name"]: p for p in operation["parameters"]}
        assert parameters["X-Provider"]["in"] == parameters["X-Timestamp"]["in"] == "header"
        assert set(parameters["provider"]["schema"]["enum"]) == set(keys)
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_every_answer_example_is_valid(spec: dict[str, Any]) -> None:
    found = 0
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                media = answer.get("content", {}).get("application/json", {})
                if "example" in media:
                    schema_check(spec, "paths", path, method, "responses", status, "content",
                                 "application/json", "schema").validate(media["example"])
                    found += 1
    assert found >= 14


def _examples(spec: dict[str, Any]) -> Iterator[tuple[str, str, str, Any]]:
    """(path, media type, example name, value) of every request example in ``spec``."""
    for path in (TRANSACTIONS, BATCH):
        for media, content in spec["paths"][path]["post"]["requestBody"]["content"].items():
            for name, example in content["examples"].items():
                yield path, media, name, example["value"]


def test_every_sender_has_an_example_of_each_endpoint(spec: dict[str, Any],
                                                      keys: dict[str, bytes]) -> None:
    for path in (TRANSACTIONS, BATCH):
        named = {name.removesuffix("-refund") for p, _, name, _ in _examples(spec)
                 if p == path}
        assert named == set(keys), path


def test_every_example_is_valid_and_accepted_by_the_service(
        spec: dict[str, Any], http: TestClient, keys: dict[str, bytes]) -> None:
    """Each example, as the description shows it, validates against its schema and is
    accepted (202) by the real adapter behind the real service; a TownCoin file in each of
    the encodings the description names."""
    found = list(_examples(spec))
    assert len(found) >= 16
    now = time.time()
    for index, (path, media, name, value) in enumerate(found):
        provider = name.removesuffix("-refund")
        schema_check(spec, "paths", path, "post", "requestBody", "content", media,
                     "schema").validate(value)
        if media == "application/json":
            bodies = [orjson.dumps(value)]
        elif media == "text/csv":
            bodies = [value.encode(encoding) for encoding in ("cp932", "utf-8-sig", "utf-8")]
        else:
            bodies = [value.encode()]
        for offset, body in enumerate(bodies):
            answer = _signed(http, keys, provider, body, path=path,
                             now=now + index + offset / 10)
            assert answer.status_code == 202, (path, media, name, answer.json())
            assert answer.json()["rejects"] == []


def test_every_documented_answer_is_what_the_service_sends(
        spec: dict[str, Any], http: TestClient, keys: dict[str, bytes],
        redis_client: redis.Redis, server: int) -> None:
    """A real request for each documented status and reason; each answer validates against
    the description, and every status and every reason it documents was produced."""
    answers = Answers(spec)
    check = answers.check

    def sent(provider: str, body: bytes, path: str = TRANSACTIONS, **kw: Any) -> Any:
        return check("post", path, _signed(http, keys, provider, body, path=path, **kw))

    # 202, strict and lenient
    sent("quickpay", quickpay_body())
    bad = quickpay_body(transactionId="QP-2", amount="1")
    lenient = sent("quickpay", b"[" + quickpay_body(transactionId="QP-3") + b"," + bad + b"]",
                   BATCH, query="lenient=true")
    assert lenient["status"] == "accepted" and lenient["rejects"][0]["reason"] == "malformed"
    # 401: unsigned, wrong, stale, replayed
    check("post", TRANSACTIONS, http.post("/providers/quickpay/transactions",
                                          content=quickpay_body()))
    wrong = sign("quickpay", b"not the secret at all", quickpay_body(),
                 path="/providers/quickpay/transactions")
    check("post", TRANSACTIONS, http.post("/providers/quickpay/transactions",
                                          content=quickpay_body(), headers=wrong))
    sent("quickpay", quickpay_body(transactionId="QP-4"), now=time.time() - 3600)
    headers = sign("quickpay", keys["quickpay"], quickpay_body(transactionId="QP-5"),
                   path="/providers/quickpay/transactions")
    for _ in range(2):
        check("post", TRANSACTIONS, http.post("/providers/quickpay/transactions",
                                              content=quickpay_body(transactionId="QP-5"),
                                              headers=headers))
    # 403: another's endpoint, a type the sender does not send
    sent("quickpay", quickpay_body(transactionId="QP-6"), signer="transitcard")
    sent("mykey", orjson.dumps({**PLATFORM_EVENT, "source": "mykey"}))
    # 404
    keys["nopay"] = b"0123456789abcdef0123"
    sent("nopay", quickpay_body(), BATCH)
    # 422: each reason of a record, and an empty body
    sent("quickpay", b"not json")
    sent("quickpay", quickpay_body(userMyKeyId=MY_NUMBER))
    sent("quickpay", quickpay_body(storeMunicipalityCode="999999"))
    sent("quickpay", quickpay_body()[:-1] + b',"meta":' + b"[" * 100 + b"]" * 100 + b"}")
    line = dict(PLATFORM_EVENT, id="m-large", note="x" * 70_000)
    sent("juki-net", orjson.dumps(line), BATCH)
    sent("quickpay", b"[]", BATCH)
    # 408, 413 on a real server, whose answers are checked as well
    with socket.create_connection(("127.0.0.1", server)) as connection:
        connection.sendall(_request_head("Content-Length: 100\r\n") + b'{"eventType"')
        time.sleep(1.0)
        status, body = _answer(connection)
    check("post", TRANSACTIONS, _Plain(status, body))
    with socket.create_connection(("127.0.0.1", server)) as connection:
        connection.sendall(_request_head(f"Content-Length: {1 << 30}\r\n"))
        status, body = _answer(connection)
    check("post", TRANSACTIONS, _Plain(status, body))
    # the rejects endpoint's and /health's answers
    check("get", "/health", http.get("/health"))
    check("get", REJECTS, _signed(http, keys, "quickpay", b"", path=REJECTS, method="GET"))
    check("get", REJECTS, http.get("/providers/quickpay/rejects"))
    check("get", REJECTS, _signed(http, keys, "quickpay", b"", path=REJECTS, method="GET",
                                  signer="mykey"))
    check("get", REJECTS, _signed(http, keys, "nopay", b"", path=REJECTS, method="GET"))
    check("get", REJECTS, _signed(http, keys, "quickpay", b"", path=REJECTS, method="GET",
                                  query="limit=0"))
    # 503 of each kind, last: one of them empties Redis
    for reason in _unavailable_answers(keys, redis_client):
        check(*reason)

    # the two posts are one handler: what one answers, the other does
    paths = spec["paths"]
    assert paths[BATCH]["post"]["responses"] == paths[TRANSACTIONS]["post"]["responses"]
    documented = {(method, path, status) for path, operations in paths.items()
                  for method, operation in operations.items()
                  for status in operation["responses"] if path not in ("/metrics", BATCH)}
    seen = {(m, TRANSACTIONS if p == BATCH else p, s) for m, p, s in answers.seen}
    assert documented == seen
    assert answers.reasons[("post", TRANSACTIONS, "401")] == set(SIGNATURE_REASONS)
    assert answers.reasons[("post", TRANSACTIONS, "403")] == set(OWNERSHIP_REASONS)
    produced_422 = answers.reasons[("post", TRANSACTIONS, "422")] | answers.reasons[
        ("post", BATCH, "422")]
    assert produced_422 == set(PAYLOAD_REASONS)
    assert set(RECORD_REASONS) < set(PAYLOAD_REASONS)
    assert answers.reasons[("post", TRANSACTIONS, "503")] == set(UNAVAILABLE_REASONS)


class _Plain:
    """An answer read off a socket, shaped as the checks read an httpx response."""

    def __init__(self, status: int, body: dict[str, object]) -> None:
        self.status_code = status
        self._body = body
        self.text = orjson.dumps(body).decode()
        self.headers: dict[str, str] = {}

    def json(self) -> dict[str, object]:
        return self._body


def _unavailable_answers(keys: dict[str, bytes],
                         redis_client: redis.Redis) -> Iterator[tuple[str, str, Any]]:
    """503 ``unavailable`` (Redis gone), ``not_replicated`` (no replica) and ``state_lost``
    (Redis emptied under the service), for posts, for the rejects endpoint and for /health."""
    with RedisServer() as doomed:
        client = doomed.client()
        doomed.stop()
        client.connection_pool.connection_kwargs["socket_connect_timeout"] = 0.5
        app = create_app(ServiceConfig(client, Verifier(keys, RedisReplayGuard(client))))
        with TestClient(app, raise_server_exceptions=False) as down:
            yield "post", TRANSACTIONS, _signed(down, keys, "quickpay", quickpay_body(),
                                                path=TRANSACTIONS)
            yield "get", REJECTS, _signed(down, keys, "quickpay", b"", path=REJECTS,
                                          method="GET")
            yield "get", "/health", down.get("/health")
    config = ServiceConfig(redis_client, Verifier(keys, RedisReplayGuard(redis_client)),
                           min_replicas=1, replica_timeout_ms=50)
    with TestClient(create_app(config)) as alone:
        yield "post", TRANSACTIONS, _signed(alone, keys, "quickpay",
                                            quickpay_body(transactionId="QP-R"),
                                            path=TRANSACTIONS)
    config = ServiceConfig(redis_client, Verifier(keys, RedisReplayGuard(redis_client)))
    with TestClient(create_app(config)) as lost:
        assert _signed(lost, keys, "quickpay", quickpay_body(transactionId="QP-L1"),
                       path=TRANSACTIONS).status_code == 202
        redis_client.flushall()
        yield "post", TRANSACTIONS, _signed(lost, keys, "quickpay",
                                            quickpay_body(transactionId="QP-L2"),
                                            path=TRANSACTIONS)


def test_every_input_error_is_answered_as_documented_or_never_by_the_service() -> None:
    """A new error class must be placed: in an answer's reasons, or among those the service
    never answers with (they concern applying events or reading files)."""
    never = {"invalid", "unknown_transaction", "refund_exceeds_payment", "unreadable"}
    answered = {*SIGNATURE_REASONS, *OWNERSHIP_REASONS, *PAYLOAD_REASONS}

    def every(cls: type[InputError]) -> Iterator[type[InputError]]:
        yield cls
        for sub in cls.__subclasses__():
            yield from every(sub)

    codes = {cls.reason_code for cls in every(InputError)}
    assert codes <= answered | never, codes - answered - never
    assert SignatureRejected.reason_code in SIGNATURE_REASONS
    assert TooLarge.reason_code in RECORD_REASONS


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and ((tag == "script" and name == "src") or
                          (tag == "link" and name == "href")):
                self.urls.append(value)


@pytest.mark.parametrize("page, scripts", [("/docs", 2), ("/redoc", 1)])
def test_the_documentation_pages_load_everything_from_the_service(
        http: TestClient, page: str, scripts: int) -> None:
    answer = http.get(page)
    assert answer.status_code == 200
    assert "https://" not in answer.text and "http://" not in answer.text
    parser = _Assets()
    parser.feed(answer.text)
    assert sum(url.endswith(".js") for url in parser.urls) == scripts
    for url in parser.urls:
        assert url.startswith("/docs/"), url
        asset = http.get(url)
        assert asset.status_code == 200 and len(asset.content) > 500, url
    assert "/openapi.json" in answer.text
    policy = answer.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self';" in policy

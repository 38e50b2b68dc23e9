"""Provider request signing: forged, stale, replayed and cross-provider requests are refused."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from pathlib import Path
from typing import Any

import pytest
import redis

from pointengine.errors import (
    ConfigurationError,
    ForbiddenEventType,
    ForeignTransaction,
    ReplayedRequest,
    SignatureRejected,
    StaleRequest,
)
from pointengine.model.events import Purchase, event_from_dict
from pointengine.service.signing import (
    HEADER_PROVIDER,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    MemoryReplayGuard,
    RedisReplayGuard,
    Verifier,
    canonical_string,
    load_secrets,
    sign,
)
from tests.redis_fixtures import redis_client, redis_server

__all__ = ["redis_client", "redis_server"]

NOW = 1_700_000_000.0
BODY = b'{"eventType": "PAYMENT", "amount": 1280}'
PATH = "/providers/quickpay/transactions"
POST = {"method": "POST", "path": PATH, "query": ""}
"""The request line every test verifies unless it says otherwise."""


@pytest.fixture
def keys() -> dict[str, bytes]:
    """Fresh secrets for two providers."""
    return {"quickpay": secrets.token_bytes(32), "towncoin": secrets.token_bytes(32)}


@pytest.fixture
def verifier(keys: dict[str, bytes]) -> Verifier:
    """A verifier with a fixed clock."""
    return Verifier(keys, MemoryReplayGuard(), clock=lambda: NOW)


def test_a_signed_request_is_accepted(verifier: Verifier, keys: dict[str, bytes]) -> None:
    headers = sign("quickpay", keys["quickpay"], BODY, path=PATH, now=NOW)
    assert verifier.verify(headers, BODY, **POST, provider="quickpay") == "quickpay"


def test_unsigned_and_partial_headers_are_refused(verifier: Verifier,
                                                  keys: dict[str, bytes]) -> None:
    with pytest.raises(SignatureRejected, match="unsigned"):
        verifier.verify({}, BODY, **POST)
    headers = sign("quickpay", keys["quickpay"], BODY, path=PATH, now=NOW)
    del headers[HEADER_SIGNATURE]
    with pytest.raises(SignatureRejected, match="unsigned"):
        verifier.verify(headers, BODY, **POST)


def test_forged_signatures_are_refused(verifier: Verifier, keys: dict[str, bytes]) -> None:
    forged = sign("quickpay", secrets.token_bytes(32), BODY, path=PATH, now=NOW)
    with pytest.raises(SignatureRejected, match="wrong signature") as caught:
        verifier.verify(forged, BODY, **POST)
    assert caught.value.reason_code == "signature"
    tampered = sign("quickpay", keys["quickpay"], BODY, path=PATH, now=NOW)
    with pytest.raises(SignatureRejected, match="wrong signature"):
        verifier.verify(tampered, BODY.replace(b"1280", b"9280"), **POST)
    moved = sign("quickpay", keys["quickpay"], BODY, path=PATH, now=NOW)
    moved[HEADER_TIMESTAMP] = str(int(NOW) + 1)
    with pytest.raises(SignatureRejected, match="wrong signature"):
        verifier.verify(moved, BODY, **POST)


def _v2(secret: bytes, stamp: str, method: str, path: str, query: str, body: bytes) -> str:
    """The signature of the documented canonical string, computed here on its own."""
    canonical = f"{stamp}\n{method}\n{path}\n{query}\n".encode() + body
    return "v2=" + hmac.new(secret, canonical, hashlib.sha256).hexdigest()


def test_the_signature_is_the_hmac_of_the_documented_canonical_string(
        keys: dict[str, bytes]) -> None:
    batch = "/providers/quickpay/batch"
    assert canonical_string("1700000000", "POST", batch, "lenient=true", BODY) == (
        b"1700000000\nPOST\n/providers/quickpay/batch\nlenient=true\n" + BODY)
    headers = sign("quickpay", keys["quickpay"], BODY, path=batch, query="lenient=true", now=NOW)
    assert headers == {
        HEADER_PROVIDER: "quickpay", HEADER_TIMESTAMP: "1700000000",
        HEADER_SIGNATURE: _v2(keys["quickpay"], "1700000000", "POST", batch, "lenient=true", BODY)}


@pytest.mark.parametrize("change", [
    {"method": "PUT"},
    {"method": "GET"},
    {"path": "/providers/quickpay/batch"},
    {"path": "/providers/towncoin/transactions"},
    {"query": "lenient=true"},
    {"path": PATH + "?lenient=true"},
])
def test_a_request_sent_otherwise_than_it_was_signed_is_refused(
        verifier: Verifier, keys: dict[str, bytes], change: dict[str, str]) -> None:
    headers = sign("quickpay", keys["quickpay"], BODY, path=PATH, now=NOW)
    with pytest.raises(SignatureRejected, match="wrong signature") as caught:
        verifier.verify(headers, BODY, **{**POST, **change})
    assert type(caught.value) is SignatureRejected and caught.value.reason_code == "signature"
    assert verifier.verify(headers, BODY, **POST) == "quickpay"  # no place kept in the guard


def test_a_signed_query_is_accepted_with_that_query_only(verifier: Verifier,
                                                         keys: dict[str, bytes]) -> None:
    batch = {"method": "POST", "path": "/providers/quickpay/batch"}
    headers = sign("quickpay", keys["quickpay"], BODY, path=batch["path"], query="lenient=true",
                   now=NOW)
    for query in ("", "lenient=false", "lenient=true&lenient=true", "lenient=TRUE"):
        with pytest.raises(SignatureRejected, match="wrong signature"):
            verifier.verify(headers, BODY, **batch, query=query)
    assert verifier.verify(headers, BODY, **batch, query="lenient=true") == "quickpay"


@pytest.mark.parametrize("target", [{"path": PATH + "?lenient=true"}, {"path": "/プロバイダ"},
                                    {"query": "a b"}, {"query": "x#y"}])
def test_sign_refuses_a_target_that_would_not_be_sent_as_signed(
        keys: dict[str, bytes], target: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="as sent on the request line"):
        sign("quickpay", keys["quickpay"], BODY, **{"path": PATH, **target})


def test_a_v1_signature_of_the_timestamp_and_body_only_is_refused(
        verifier: Verifier, keys: dict[str, bytes]) -> None:
    v1 = "v1=" + hmac.new(keys["quickpay"], b"1700000000." + BODY, hashlib.sha256).hexdigest()
    headers = {HEADER_PROVIDER: "quickpay", HEADER_TIMESTAMP: "1700000000", HEADER_SIGNATURE: v1}
    with pytest.raises(SignatureRejected, match=r"v1 signatures .* no longer accepted") as caught:
        verifier.verify(headers, BODY, **POST)
    assert caught.value.reason_code == "signature"


def _refusal(verifier: Verifier, headers: dict[str, str]) -> tuple[type, str, str]:
    with pytest.raises(SignatureRejected) as caught:
        verifier.verify(headers, BODY, **POST)
    return type(caught.value), caught.value.reason_code, str(caught.value)


@pytest.mark.parametrize("given", ["v2=" + "0" * 64, "v2=0", "", "v1=" + "0" * 64, "v2=\u0394"])
@pytest.mark.parametrize("stamp", ["1700000000", "soon"])
def test_an_unknown_signer_is_refused_as_a_known_one_with_a_wrong_signature(
        verifier: Verifier, given: str, stamp: str) -> None:
    known = {HEADER_PROVIDER: "quickpay", HEADER_TIMESTAMP: stamp, HEADER_SIGNATURE: given}
    assert _refusal(verifier, {**known, HEADER_PROVIDER: "nobody"}) == _refusal(verifier, known)


def test_an_unknown_signers_own_signature_is_a_wrong_signature(verifier: Verifier) -> None:
    headers = sign("nobody", secrets.token_bytes(32), BODY, path=PATH, now=NOW)
    assert _refusal(verifier, headers) == (SignatureRejected, "signature", "wrong signature")


def test_an_unknown_signer_costs_the_same_hmac_and_comparison(
        verifier: Verifier, monkeypatch: pytest.MonkeyPatch) -> None:
    macs: list[int] = []
    compared: list[tuple[int, int]] = []
    real_new, real_compare = hmac.new, hmac.compare_digest

    def new(key: bytes, msg: bytes | None = None, digestmod: Any = None) -> hmac.HMAC:
        macs.append(len(msg or b""))
        return real_new(key, msg, digestmod)

    def compare(a: Any, b: Any) -> bool:
        compared.append((len(a), len(b)))
        return real_compare(a, b)

    monkeypatch.setattr(hmac, "new", new)
    monkeypatch.setattr(hmac, "compare_digest", compare)
    for signer in ("quickpay", "nobody"):
        headers = {HEADER_PROVIDER: signer, HEADER_TIMESTAMP: "1700000000",
                   HEADER_SIGNATURE: "v2=" + "0" * 64}
        with pytest.raises(SignatureRejected):
            verifier.verify(headers, BODY, **POST)
    # one HMAC of the same canonical string and one constant-time comparison each
    assert len(macs) == 2 and macs[0] == macs[1] > len(BODY)
    assert len(compared) == 2 and compared[0] == compared[1]


@pytest.mark.parametrize("offset", [-301, 301, -86_400])
def test_stale_requests_are_refused(verifier: Verifier, keys: dict[str, bytes],
                                    offset: int) -> None:
    headers = sign("quickpay", keys["quickpay"], BODY, path=PATH, now=NOW + offset)
    with pytest.raises(StaleRequest) as caught:
        verifier.verify(headers, BODY, **POST)
    assert caught.value.reason_code == "stale"


@pytest.mark.parametrize("offset", [-300, 0, 300])
def test_requests_within_the_skew_are_accepted(verifier: Verifier, keys: dict[str, bytes],
                                               offset: int) -> None:
    headers = sign("quickpay", keys["quickpay"], BODY, path=PATH, now=NOW + offset)
    assert verifier.verify(headers, BODY, **POST) == "quickpay"


def test_a_replayed_request_is_refused_but_a_resigned_one_is_not(
        verifier: Verifier, keys: dict[str, bytes]) -> None:
    headers = sign("quickpay", keys["quickpay"], BODY, path=PATH, now=NOW)
    verifier.verify(headers, BODY, **POST)
    with pytest.raises(ReplayedRequest):
        verifier.verify(headers, BODY, **POST)
    again = sign("quickpay", keys["quickpay"], BODY, path=PATH, now=NOW + 1)
    assert verifier.verify(again, BODY, **POST) == "quickpay"


def test_a_forged_request_does_not_poison_the_replay_guard(
        verifier: Verifier, keys: dict[str, bytes]) -> None:
    headers = sign("quickpay", keys["quickpay"], BODY, path=PATH, now=NOW)
    with pytest.raises(SignatureRejected):
        verifier.verify(headers, BODY + b" ", **POST)
    assert verifier.verify(headers, BODY, **POST) == "quickpay"


def test_a_provider_cannot_sign_for_another(verifier: Verifier, keys: dict[str, bytes]) -> None:
    headers = sign("towncoin", keys["towncoin"], BODY, path=PATH, now=NOW)
    with pytest.raises(ForeignTransaction) as caught:
        verifier.verify(headers, BODY, **POST, provider="quickpay")
    assert caught.value.reason_code == "cross_provider"


def test_events_of_another_provider_are_refused() -> None:
    at = dt.datetime(2022, 3, 1, 12, tzinfo=dt.UTC)
    mine = Purchase(source="quickpay", id="a", person="MKA", at=at, provider="quickpay",
                    amount=100, store="S1", store_municipality="131016")
    Verifier.check_events("quickpay", [mine])
    theirs = mine.model_copy(update={"provider": "paypay"})
    with pytest.raises(ForeignTransaction):
        Verifier.check_events("quickpay", [mine, theirs])
    with pytest.raises(ForeignTransaction):
        Verifier.check_events("towncoin", [mine])


@pytest.mark.parametrize("signer, kind, allowed", [
    ("quickpay", "purchase", True),
    ("quickpay", "refund", True),
    ("quickpay", "mynapoint_application", False),
    ("mykey", "mynapoint_application", True),
    ("mykey", "health_insurance_registration", True),
    ("mykey", "public_funds_account_registration", True),
    ("mykey", "residence_change", False),
    ("mykey", "lottery_draw", False),
    ("mykey", "participation", False),
    ("mykey", "purchase", False),
    ("juki-net", "residence_change", True),
    ("juki-net", "mynapoint_application", False),
])
def test_a_sender_posts_only_the_types_of_event_it_sends(signer: str, kind: str,
                                                         allowed: bool) -> None:
    fields: dict[str, object] = {
        "purchase": {"provider": signer, "amount": 100, "store": "S1",
                     "store_municipality": "131016"},
        "refund": {"provider": signer, "transaction": "t1", "amount": 100},
        "mynapoint_application": {"phase": 2, "provider": "paypay",
                                  "card_applied_on": "2021-12-01", "residence": "131016"},
        "health_insurance_registration": {},
        "public_funds_account_registration": {},
        "residence_change": {"residence": "131016"},
        "lottery_draw": {"program": "kumamoto-health-lottery"},
        "participation": {"municipality": "192015", "activity": "walk"},
    }[kind]
    event = event_from_dict({"type": kind, "source": signer, "id": "e1", "person": "MKA",
                             "at": "2022-03-01T12:00:00+09:00", **fields})
    if allowed:
        Verifier.check_events(signer, [event])
        return
    with pytest.raises(ForbiddenEventType) as caught:
        Verifier.check_events(signer, [event])
    assert caught.value.reason_code == "forbidden_event_type"
    assert f"{kind!r}" in str(caught.value)


def test_the_redis_guard_is_shared_by_verifiers(redis_client: redis.Redis,
                                                keys: dict[str, bytes]) -> None:
    first = Verifier(keys, RedisReplayGuard(redis_client), clock=lambda: NOW)
    second = Verifier(keys, RedisReplayGuard(redis_client), clock=lambda: NOW)
    headers = sign("quickpay", keys["quickpay"], BODY, path=PATH, now=NOW)
    first.verify(headers, BODY, **POST)
    with pytest.raises(ReplayedRequest):
        second.verify(headers, BODY, **POST)
    ttl = redis_client.ttl(next(iter(redis_client.scan_iter("pe:replay:*"))))
    assert 0 < ttl <= 601


def test_secrets_come_from_a_file_and_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "secrets.yaml"
    path.write_text("quickpay: 0123456789abcdef0123\ntowncoin: fedcba9876543210fedc\n")
    loaded = load_secrets(path, {"POINTENGINE_SECRET_CARRIERPAY": "c" * 20,
                                 "POINTENGINE_SECRET_TOWNCOIN": "t" * 20})
    assert loaded == {"quickpay": b"0123456789abcdef0123", "towncoin": b"t" * 20,
                      "carrierpay": b"c" * 20}
    assert load_secrets(None, {"POINTENGINE_SECRETS_FILE": str(path)})["quickpay"]
    with pytest.raises(ConfigurationError, match="shorter"):
        load_secrets(None, {"POINTENGINE_SECRET_QUICKPAY": "short"})
    path.write_text("- a list\n")
    with pytest.raises(ConfigurationError, match="mapping"):
        load_secrets(path, {})

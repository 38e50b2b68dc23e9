"""Provider request signing: forged, stale, replayed and cross-provider requests are refused."""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path

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
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    MemoryReplayGuard,
    RedisReplayGuard,
    Verifier,
    load_secrets,
    sign,
)
from tests.redis_fixtures import redis_client, redis_server

__all__ = ["redis_client", "redis_server"]

NOW = 1_700_000_000.0
BODY = b'{"eventType": "PAYMENT", "amount": 1280}'


@pytest.fixture
def keys() -> dict[str, bytes]:
    """Fresh secrets for two providers."""
    return {"quickpay": secrets.token_bytes(32), "towncoin": secrets.token_bytes(32)}


@pytest.fixture
def verifier(keys: dict[str, bytes]) -> Verifier:
    """A verifier with a fixed clock."""
    return Verifier(keys, MemoryReplayGuard(), clock=lambda: NOW)


def test_a_signed_request_is_accepted(verifier: Verifier, keys: dict[str, bytes]) -> None:
    headers = sign("quickpay", keys["quickpay"], BODY, now=NOW)
    assert verifier.verify(headers, BODY, provider="quickpay") == "quickpay"


def test_unsigned_and_partial_headers_are_refused(verifier: Verifier,
                                                  keys: dict[str, bytes]) -> None:
    with pytest.raises(SignatureRejected, match="unsigned"):
        verifier.verify({}, BODY)
    headers = sign("quickpay", keys["quickpay"], BODY, now=NOW)
    del headers[HEADER_SIGNATURE]
    with pytest.raises(SignatureRejected, match="unsigned"):
        verifier.verify(headers, BODY)


def test_forged_signatures_are_refused(verifier: Verifier, keys: dict[str, bytes]) -> None:
    forged = sign("quickpay", secrets.token_bytes(32), BODY, now=NOW)
    with pytest.raises(SignatureRejected, match="wrong signature") as caught:
        verifier.verify(forged, BODY)
    assert caught.value.reason_code == "signature"
    tampered = sign("quickpay", keys["quickpay"], BODY, now=NOW)
    with pytest.raises(SignatureRejected, match="wrong signature"):
        verifier.verify(tampered, BODY.replace(b"1280", b"9280"))
    moved = sign("quickpay", keys["quickpay"], BODY, now=NOW)
    moved[HEADER_TIMESTAMP] = str(int(NOW) + 1)
    with pytest.raises(SignatureRejected, match="wrong signature"):
        verifier.verify(moved, BODY)
    with pytest.raises(SignatureRejected, match="no secret"):
        verifier.verify(sign("nobody", b"x" * 32, BODY, now=NOW), BODY)


@pytest.mark.parametrize("offset", [-301, 301, -86_400])
def test_stale_requests_are_refused(verifier: Verifier, keys: dict[str, bytes],
                                    offset: int) -> None:
    headers = sign("quickpay", keys["quickpay"], BODY, now=NOW + offset)
    with pytest.raises(StaleRequest) as caught:
        verifier.verify(headers, BODY)
    assert caught.value.reason_code == "stale"


@pytest.mark.parametrize("offset", [-300, 0, 300])
def test_requests_within_the_skew_are_accepted(verifier: Verifier, keys: dict[str, bytes],
                                               offset: int) -> None:
    headers = sign("quickpay", keys["quickpay"], BODY, now=NOW + offset)
    assert verifier.verify(headers, BODY) == "quickpay"


def test_a_replayed_request_is_refused_but_a_resigned_one_is_not(
        verifier: Verifier, keys: dict[str, bytes]) -> None:
    headers = sign("quickpay", keys["quickpay"], BODY, now=NOW)
    verifier.verify(headers, BODY)
    with pytest.raises(ReplayedRequest):
        verifier.verify(headers, BODY)
    again = sign("quickpay", keys["quickpay"], BODY, now=NOW + 1)
    assert verifier.verify(again, BODY) == "quickpay"


def test_a_forged_request_does_not_poison_the_replay_guard(
        verifier: Verifier, keys: dict[str, bytes]) -> None:
    headers = sign("quickpay", keys["quickpay"], BODY, now=NOW)
    with pytest.raises(SignatureRejected):
        verifier.verify(headers, BODY + b" ")
    assert verifier.verify(headers, BODY) == "quickpay"


def test_a_provider_cannot_sign_for_another(verifier: Verifier, keys: dict[str, bytes]) -> None:
    headers = sign("towncoin", keys["towncoin"], BODY, now=NOW)
    with pytest.raises(ForeignTransaction) as caught:
        verifier.verify(headers, BODY, provider="quickpay")
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
    headers = sign("quickpay", keys["quickpay"], BODY, now=NOW)
    first.verify(headers, BODY)
    with pytest.raises(ReplayedRequest):
        second.verify(headers, BODY)
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

r"""Provider request signing: HMAC-SHA256, under the provider's secret, of the request's
timestamp, method, path, query and body.

A provider sends three headers with every request::

    X-Provider:  quickpay
    X-Timestamp: 1646105700                      (Unix seconds, UTC)
    X-Signature: v2=<hex HMAC-SHA256(secret, canonical string)>

The canonical string (:func:`canonical_string`) is five fields joined by a line feed (``\n``,
byte 0x0A), the body last and taken whole::

    timestamp \n METHOD \n path \n query \n body

* ``timestamp``: the ``X-Timestamp`` value, ASCII digits;
* ``METHOD``: the HTTP method in upper case (``POST``);
* ``path``: the request target's path exactly as sent on the request line, percent-encoding
  unchanged, without the query (``/providers/quickpay/batch``);
* ``query``: the query string exactly as sent, without the ``?``; empty when there is none
  (``lenient=true``);
* ``body``: the body's bytes as sent.

For ``POST /providers/quickpay/batch?lenient=true`` at 1646105700 the string is
``b"1646105700\nPOST\n/providers/quickpay/batch\nlenient=true\n" + body``. None of the first
four fields can hold a line feed, so each string has one reading. The service verifies the path
and query it receives: a proxy in front of it must pass them on unchanged. A ``v1=`` signature
(of ``timestamp + "." + body`` only, which let anyone add ``?lenient=true``) is refused.

:class:`Verifier` refuses, with a :class:`~pointengine.errors.SignatureRejected` (or a subclass,
each with its ``reason_code``):

* an unsigned request or a wrong signature (``signature``); a signer the service has no secret
  for gets the same answer after the same work (an HMAC under a dummy secret and a
  constant-time comparison), so neither the answer nor its time tells which providers exist;
* a timestamp more than ``skew`` seconds (300) from the server's clock (``stale``);
* the same signature again within the window (``replayed``); the guard that remembers
  signatures is shared through Redis so that every service instance sees every request;
* a request for a provider other than the signer, or events whose ``source``/``provider`` is
  not the signer (``cross_provider``);
* events of a type the signer does not send (``forbidden_event_type``): a payment provider
  sends charges, purchases and refunds; each platform source sends the types listed in
  :data:`PLATFORM_EVENT_TYPES`. Participations and lottery draws come from municipalities,
  which do not post to the service: they reach the engine in replayed files only.

The replay check comes last, so a forged request never takes a place in the guard. A provider
that re-delivers a transaction signs it again (a new timestamp): that is accepted, and the
engine's idempotency by event key makes it change nothing.

Secrets are never in the code: :func:`load_secrets` reads a YAML or JSON file mapping provider
ids to secrets, and ``POINTENGINE_SECRET_<PROVIDER>`` environment variables (``-`` written
``_``, upper case) override it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Protocol

import redis
import yaml

from pointengine.errors import (
    ConfigurationError,
    ForbiddenEventType,
    ForeignTransaction,
    ReplayedRequest,
    SignatureRejected,
    StaleRequest,
)
from pointengine.model.events import AnyEvent, Charge, Purchase, Refund

__all__ = [
    "HEADER_PROVIDER",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "MAX_SKEW",
    "PLATFORM_EVENT_TYPES",
    "TRANSACTION_TYPES",
    "MemoryReplayGuard",
    "RedisReplayGuard",
    "ReplayGuard",
    "Verifier",
    "canonical_string",
    "load_secrets",
    "sign",
    "signature",
]

HEADER_PROVIDER = "X-Provider"
HEADER_TIMESTAMP = "X-Timestamp"
HEADER_SIGNATURE = "X-Signature"
MAX_SKEW = 300
"""Seconds a request's timestamp may differ from the server's clock."""
MIN_SECRET_LENGTH = 16
_VERSION = "v2="
_RETIRED = "v1="
_ENV_PREFIX = "POINTENGINE_SECRET_"

Clock = Callable[[], float]


def canonical_string(timestamp: str, method: str, path: str, query: str, body: bytes) -> bytes:
    """What a ``v2`` signature is the HMAC of: ``timestamp``, ``method``, ``path`` and
    ``query`` each followed by a line feed, then ``body`` (see the module's description).

    The four text fields are encoded byte for byte (Latin-1), so that the service's reading of
    the request line's raw bytes gives back exactly the bytes that were sent.
    """
    head = f"{timestamp}\n{method}\n{path}\n{query}\n"
    return head.encode("latin-1") + body


def signature(secret: bytes, timestamp: str, body: bytes, *, method: str, path: str,
              query: str = "") -> str:
    """``v2=`` and the hex HMAC-SHA256 under ``secret`` of the request's canonical string."""
    message = canonical_string(timestamp, method, path, query, body)
    return _VERSION + hmac.new(secret, message, hashlib.sha256).hexdigest()


def sign(provider: str, secret: bytes, body: bytes, *, path: str, query: str = "",
         method: str = "POST", now: float | None = None) -> dict[str, str]:
    """The headers a provider sends with ``body`` to ``method path?query`` (timestamp
    ``now``, default the clock).

    ``path`` and ``query`` are what the request line will carry, already percent-encoded
    (``query`` without its ``?``; send the URL built from them, not one an HTTP client encodes
    again). Raises ``ValueError`` when either holds a character that cannot be sent as it is.
    """
    for name, value in (("path", path), ("query", query)):
        if not value.isascii() or any(c in value for c in " \t\r\n#") or \
                (name == "path" and "?" in value):
            raise ValueError(f"{name} {value!r}: give it as sent on the request line, "
                             "percent-encoded, the query apart from the path")
    timestamp = str(int(time.time() if now is None else now))
    return {HEADER_PROVIDER: provider, HEADER_TIMESTAMP: timestamp,
            HEADER_SIGNATURE: signature(secret, timestamp, body, method=method.upper(),
                                        path=path, query=query)}


TRANSACTION_TYPES = frozenset({"charge", "purchase", "refund"})
"""What a payment provider sends."""

PLATFORM_EVENT_TYPES: Mapping[str, frozenset[str]] = {
    "mykey": frozenset({"mynapoint_application", "health_insurance_registration",
                        "public_funds_account_registration"}),
    "juki-net": frozenset({"residence_change"}),
}
"""What each platform source sends: the MyKey platform a person's applications and
registrations, the resident registry their moves."""


class ReplayGuard(Protocol):
    """Remembers signatures for a while; answers whether one is used for the first time."""

    def first_use(self, key: str, ttl: int) -> bool:
        """True the first time ``key`` is seen within ``ttl`` seconds, False afterwards."""

    def forget(self, key: str) -> None:
        """Forget ``key`` (its request could not be stored: the provider may send it again)."""


class MemoryReplayGuard:
    """A replay guard for one process (tests, a single service instance)."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def first_use(self, key: str, ttl: int) -> bool:
        """True unless ``key`` was used less than ``ttl`` seconds ago."""
        now = self._clock()
        with self._lock:
            if len(self._seen) > 100_000:
                self._seen = {k: t for k, t in self._seen.items() if t > now}
            expires = self._seen.get(key)
            if expires is not None and expires > now:
                return False
            self._seen[key] = now + ttl
            return True

    def forget(self, key: str) -> None:
        """Forget ``key``."""
        with self._lock:
            self._seen.pop(key, None)


class RedisReplayGuard:
    """A replay guard shared by every service instance: ``SET key 1 NX EX ttl``."""

    def __init__(self, client: redis.Redis, *, prefix: str = "pe:") -> None:
        self.client = client
        self.prefix = prefix + "replay:"

    def first_use(self, key: str, ttl: int) -> bool:
        """True when the key was not set (and is now, for ``ttl`` seconds)."""
        return bool(self.client.set(self.prefix + key, b"1", nx=True, ex=ttl))

    def forget(self, key: str) -> None:
        """Delete the key."""
        self.client.delete(self.prefix + key)


class Verifier:
    """Checks provider signatures, freshness, replays and ownership of transactions."""

    def __init__(self, secrets: Mapping[str, bytes], guard: ReplayGuard, *,
                 skew: int = MAX_SKEW, clock: Clock = time.time) -> None:
        self._secrets = dict(secrets)
        # An unknown signer's request is checked against this, so that it costs what a known
        # signer's does; it is never accepted, whatever it compares equal to.
        self._dummy = os.urandom(32)
        self.guard = guard
        self.skew = skew
        self.clock = clock

    @property
    def providers(self) -> frozenset[str]:
        """The providers that have a secret."""
        return frozenset(self._secrets)

    def verify(self, headers: Mapping[str, str], body: bytes, *, method: str, path: str,
               query: str, provider: str | None = None) -> str:
        """The signing provider of a request; raise SignatureRejected (or a subclass).

        ``method``, ``path`` and ``query`` are the request line's, as received (the path and
        query undecoded, the query without its ``?``). ``headers`` are looked up
        case-insensitively when it is a case-insensitive mapping (Starlette's ``Headers``);
        ``provider``, when given, is the provider the request is for.
        """
        signer = headers.get(HEADER_PROVIDER) or headers.get(HEADER_PROVIDER.lower())
        stamp = headers.get(HEADER_TIMESTAMP) or headers.get(HEADER_TIMESTAMP.lower())
        given = headers.get(HEADER_SIGNATURE) or headers.get(HEADER_SIGNATURE.lower())
        if not signer or not stamp or not given:
            raise SignatureRejected(
                f"unsigned request: {HEADER_PROVIDER}, {HEADER_TIMESTAMP} and "
                f"{HEADER_SIGNATURE} are required")
        # Every check up to the comparison reads the headers only, never whether the signer
        # is known: an unknown signer must get the same answer, after the same work.
        if not stamp.isascii() or not stamp.isdigit() or len(stamp) > 12:
            raise SignatureRejected(f"{HEADER_TIMESTAMP} must be Unix seconds")
        if given.startswith(_RETIRED):
            raise SignatureRejected(
                "v1 signatures (of the timestamp and body only) are no longer accepted: sign "
                "v2, the timestamp, method, path, query and body")
        secret = self._secrets.get(signer)
        known = secret is not None
        expected = signature(secret if secret is not None else self._dummy, stamp, body,
                             method=method, path=path, query=query)
        # Bytes, not text: compare_digest refuses text that is not ASCII, and a header may be.
        matches = hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))
        if not (matches and known):
            raise SignatureRejected("wrong signature")
        drift = self.clock() - int(stamp)
        if abs(drift) > self.skew:
            raise StaleRequest(f"timestamp {drift:+.0f} s from the server's clock "
                               f"(at most {self.skew} s accepted)")
        if provider is not None and provider != signer:
            raise ForeignTransaction(f"{signer} signed a request for provider {provider}")
        if not self.guard.first_use(f"{signer}:{given}", 2 * self.skew + 1):
            raise ReplayedRequest("this signed request was received before")
        return signer

    def forget(self, headers: Mapping[str, str]) -> None:
        """Let a verified request be sent again: it could not be stored (a backend failed)."""
        signer = headers.get(HEADER_PROVIDER) or headers.get(HEADER_PROVIDER.lower())
        given = headers.get(HEADER_SIGNATURE) or headers.get(HEADER_SIGNATURE.lower())
        if signer and given:
            self.guard.forget(f"{signer}:{given}")

    @staticmethod
    def check_events(signer: str, events: Iterable[AnyEvent]) -> None:
        """Raise ForeignTransaction unless every event's source is ``signer``, and the
        provider of every charge, purchase and refund too; ForbiddenEventType for an event of
        a type ``signer`` does not send."""
        sends = PLATFORM_EVENT_TYPES.get(signer, TRANSACTION_TYPES)
        for event in events:
            # An application's ``provider`` is the person's choice, not the sender.
            owner = event.provider if isinstance(event, Charge | Purchase | Refund) else \
                event.source
            if event.source != signer or owner != signer:
                raise ForeignTransaction(
                    f"{signer} posted event {event.id} of source {event.source!r}, "
                    f"provider {owner!r}: a provider may post only its own transactions")
            if event.type not in sends:
                raise ForbiddenEventType(
                    f"{signer} posted event {event.id} of type {event.type!r}: {signer} sends "
                    f"only {', '.join(sorted(sends))} events")


def load_secrets(path: Path | None = None,
                 environ: Mapping[str, str] | None = None) -> dict[str, bytes]:
    """Provider secrets from ``path`` (YAML or JSON mapping) and ``POINTENGINE_SECRET_*``.

    ``path`` defaults to ``$POINTENGINE_SECRETS_FILE``. Raises ConfigurationError on a file
    that is not a mapping of strings, or a secret shorter than 16 characters.
    """
    env = os.environ if environ is None else environ
    secrets: dict[str, bytes] = {}
    path = path or (Path(env["POINTENGINE_SECRETS_FILE"])
                    if env.get("POINTENGINE_SECRETS_FILE") else None)
    if path is not None:
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigurationError(f"cannot read provider secrets {path}: {exc}") from exc
        if not isinstance(doc, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in doc.items()):
            raise ConfigurationError(f"{path}: expected a mapping of provider id to secret")
        secrets.update({k: v.encode() for k, v in doc.items()})
    for name, value in env.items():
        if name.startswith(_ENV_PREFIX) and value:
            secrets[name[len(_ENV_PREFIX):].lower().replace("_", "-")] = value.encode()
    short = sorted(p for p, s in secrets.items() if len(s) < MIN_SECRET_LENGTH)
    if short:
        raise ConfigurationError(
            f"secrets shorter than {MIN_SECRET_LENGTH} characters: {', '.join(short)}")
    return secrets

"""Staff accounts of the console: a name, a jurisdiction and a password hash, in one JSON file.

Each member of staff signs in for one jurisdiction (a municipality's or prefecture's local
government code, or ``national`` for the ministry) and may change only that jurisdiction's
programs. Passwords are kept as scrypt hashes (``hashlib.scrypt``, salted, n=2**14), never as
text; a check takes the same time whether or not the name exists, and five failures in a row
lock a name for five minutes, so guessing from the sign-in form is slow.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from pointengine.errors import ConfigurationError
from pointengine.model.municipalities import registry
from pointengine.model.output import write_whole

__all__ = ["LOCK_AFTER", "LOCK_SECONDS", "Account", "Accounts"]

LOCK_AFTER = 5
"""Failed sign-ins in a row that lock a name."""
LOCK_SECONDS = 300.0
_N, _R, _P = 2**14, 8, 1
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789._-")


@dataclass(frozen=True)
class Account:
    """A member of staff: who, and for which jurisdiction."""

    name: str
    jurisdiction: str


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=32)


def check_jurisdiction(code: str) -> str:
    """``code`` if it names a jurisdiction that runs programs, else :class:`ConfigurationError`."""
    if code == "national":
        return code
    codes = registry()
    if code not in codes:
        near = codes.closest(code)
        hint = f" (did you mean {near}?)" if near else ""
        raise ConfigurationError(f"unknown local government code {code!r}{hint}")
    if codes.get(code).kind == "designated_city_ward":
        raise ConfigurationError(f"{code} is a ward of a designated city; staff sign in for "
                                 f"the city, {codes.local_government_of(code)}")
    return code


@dataclass
class Accounts:
    """The accounts file (``accounts.json``): name → jurisdiction and scrypt hash."""

    path: Path
    _failures: dict[str, tuple[int, float]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _dummy_salt: bytes = field(default_factory=lambda: secrets.token_bytes(16), repr=False)

    def _read(self) -> dict[str, dict[str, str]]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ConfigurationError(f"{self.path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigurationError(f"{self.path} is not a mapping of accounts")
        return data

    def add(self, name: str, jurisdiction: str, password: str) -> Account:
        """Add or replace ``name``'s account; :class:`ConfigurationError` for a bad name, code
        or a password shorter than 12 characters."""
        if not name or len(name) > 64 or not set(name) <= _NAME_CHARS:
            raise ConfigurationError("a staff name is 1-64 of a-z, 0-9, '.', '_' and '-'")
        if len(password) < 12:
            raise ConfigurationError("a password has at least 12 characters")
        check_jurisdiction(jurisdiction)
        salt = secrets.token_bytes(16)
        with self._lock:
            accounts = self._read()
            accounts[name] = {"jurisdiction": jurisdiction, "salt": salt.hex(),
                              "scrypt": _hash(password, salt).hex()}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_whole(self.path, orjson.dumps(accounts, option=orjson.OPT_INDENT_2),
                        durable=True)
            os.chmod(self.path, 0o600)
        return Account(name, jurisdiction)

    def names(self) -> dict[str, str]:
        """Name → jurisdiction of every account."""
        return {name: entry["jurisdiction"] for name, entry in self._read().items()}

    def locked(self, name: str, now: float | None = None) -> bool:
        """True while ``name`` is locked after :data:`LOCK_AFTER` failures in a row."""
        count, since = self._failures.get(name, (0, 0.0))
        return count >= LOCK_AFTER and (now or time.monotonic()) - since < LOCK_SECONDS

    def sign_in(self, name: str, password: str) -> Account | None:
        """The account if ``password`` is ``name``'s and the name is not locked; else None."""
        entry = self._read().get(name)
        salt = bytes.fromhex(entry["salt"]) if entry else self._dummy_salt
        # hashed even for an unknown name, so the answer takes as long either way
        digest = _hash(password, salt)
        with self._lock:
            if self.locked(name):
                return None
            if entry is not None and hmac.compare_digest(digest.hex(), entry["scrypt"]):
                self._failures.pop(name, None)
                return Account(name, entry["jurisdiction"])
            count, _ = self._failures.get(name, (0, 0.0))
            self._failures[name] = (count + 1, time.monotonic())
            return None

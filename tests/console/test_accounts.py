"""Staff accounts: scrypt hashes, one jurisdiction each, a lock after five failures."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from pointengine.console.accounts import LOCK_AFTER, Account, Accounts
from pointengine.errors import ConfigurationError

PASSWORD = "correct horse battery"


def test_an_account_signs_in_with_its_password_only(tmp_path: Path) -> None:
    accounts = Accounts(tmp_path / "accounts.json")
    accounts.add("miyoshi.tanaka", "342092", PASSWORD)
    assert accounts.sign_in("miyoshi.tanaka", PASSWORD) == Account("miyoshi.tanaka", "342092")
    assert accounts.sign_in("miyoshi.tanaka", PASSWORD + "x") is None
    assert accounts.sign_in("nobody", PASSWORD) is None
    stored = (tmp_path / "accounts.json").read_bytes()
    assert PASSWORD.encode() not in stored
    assert set(orjson.loads(stored)["miyoshi.tanaka"]) == {"jurisdiction", "salt", "scrypt"}
    assert (tmp_path / "accounts.json").stat().st_mode & 0o777 == 0o600


def test_five_failures_lock_the_name(tmp_path: Path) -> None:
    accounts = Accounts(tmp_path / "accounts.json")
    accounts.add("kofu.sato", "192015", PASSWORD)
    for _ in range(LOCK_AFTER):
        assert accounts.sign_in("kofu.sato", "wrong password!") is None
    assert accounts.locked("kofu.sato")
    assert accounts.sign_in("kofu.sato", PASSWORD) is None  # even the right one, for now


@pytest.mark.parametrize(("name", "code", "password"), [
    ("Tanaka", "342092", PASSWORD),        # upper case
    ("tanaka", "342099", PASSWORD),        # no such code
    ("tanaka", "011011", PASSWORD),        # a ward of 札幌市: staff sign in for the city
    ("tanaka", "342092", "short"),
])
def test_bad_accounts_are_refused(tmp_path: Path, name: str, code: str, password: str) -> None:
    with pytest.raises(ConfigurationError):
        Accounts(tmp_path / "accounts.json").add(name, code, password)
    assert not (tmp_path / "accounts.json").exists()


def test_prefectures_and_the_ministry_have_accounts(tmp_path: Path) -> None:
    accounts = Accounts(tmp_path / "accounts.json")
    accounts.add("hiroshima", "340006", PASSWORD)
    accounts.add("soumu", "national", PASSWORD)
    assert accounts.names() == {"hiroshima": "340006", "soumu": "national"}

"""The compact key tables behind the embedded store's memory of events and transactions."""

from __future__ import annotations

import pickle

import pytest

from pointengine.compact import KeyTable, fingerprint


def test_a_set_grows_and_keeps_every_key() -> None:
    table = KeyTable(values=False)
    for n in range(5_000):
        table.add(f"paypay/p{n}")
    assert len(table) == 5_000
    assert all(f"paypay/p{n}" in table for n in range(5_000))
    assert "paypay/p5000" not in table and 7 not in table


def test_a_map_keeps_values_through_growth_and_pickling() -> None:
    table = KeyTable()
    for n in range(3_000):
        table.add(f"t{n}", n << 32)
    table.add("t5", (5 << 32) + 3)
    restored = pickle.loads(pickle.dumps(table))
    assert restored.get("t5") == (5 << 32) + 3
    assert restored.get("t2999") == 2999 << 32
    assert restored.get("nope") is None
    assert len(restored) == 3_000


def test_fingerprints_are_xxh64_of_the_utf8_bytes_as_signed_integers() -> None:
    # XXH64 (seed 0) reference values: '' is 0xEF46DB3751D8E999.
    assert fingerprint("") == 0xEF46DB3751D8E999 - (1 << 64)
    assert fingerprint("a") == -3292477735350538661
    assert fingerprint("paypay/p440") == 3320438532356261979
    assert fingerprint("x" * 40) == -7894996728292697899  # the 32-byte stripes
    assert fingerprint("日本") != fingerprint("日本 ")


def test_a_table_refuses_to_restore_from_something_else() -> None:
    table = KeyTable(values=False)
    table.add("k")
    _, (keys, values, count) = table.__reduce__()
    with pytest.raises(ValueError):
        type(table).__reduce__(table)[0](keys[:-1], values, count)

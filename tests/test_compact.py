"""The compact key tables behind the embedded store's memory of events and transactions."""

from __future__ import annotations

import pickle

from pointengine.compact import KeyTable


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

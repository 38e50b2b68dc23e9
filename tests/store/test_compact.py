"""The compact key tables behind the embedded store's memory of events and transactions."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pointengine.store.compact import Counters, KeyTable, fingerprint


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


# --- Counters: the store's counters behave as the dict they replace --------------------------

_KEYS = st.sampled_from(["pp|a|MK1", "pg|national|MK1", "bu|b", "ad|b", "al|b|paypay"])


@given(st.lists(st.tuples(_KEYS, st.integers(-10**12, 10**12)), max_size=40))
def test_counters_behave_as_a_dict(writes: list[tuple[str, int]]) -> None:
    counters, plain = Counters(), dict[str, int]()
    for key, value in writes:
        counters[key] = counters.get(key, 0) + value
        plain[key] = plain.get(key, 0) + value
    assert dict(counters) == plain and dict(counters.items()) == plain
    assert len(counters) == len(plain) and sorted(counters) == sorted(plain)
    for key in ("pp|a|MK1", "bu|b", "missing"):
        assert (key in counters) == (key in plain)
        assert counters.get(key, 0) == plain.get(key, 0)
    assert dict(pickle.loads(pickle.dumps(counters))) == plain


def test_a_counter_set_to_zero_stays_and_a_missing_one_is_a_key_error() -> None:
    counters = Counters({"pp|a|MK1": 5000})
    counters["pp|a|MK1"] -= 5000
    assert "pp|a|MK1" in counters and counters["pp|a|MK1"] == 0
    with pytest.raises(KeyError):
        counters["pp|a|MK2"]
    with pytest.raises(OverflowError):
        counters["pp|a|MK2"] = -(2**63)

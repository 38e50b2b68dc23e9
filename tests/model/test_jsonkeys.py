"""Keys given twice are found, whether or not the quick count is enough to rule them out."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pointengine.model.jsonkeys import repeated_key


@pytest.mark.parametrize(("raw", "key"), [
    (b'{"a":1,"amount":5000,"amount":5}', "amount"),
    (b'{"amount" : 5000, "amount":5}', "amount"),
    (b'{"amount":"5000","amount":5}', "amount"),
    (b'{"a":{"b":1,"b":2}}', "b"),
    (b'[{"x":null},{"y":1,"y":1}]', "y"),
    (b'{"\\u0061":1,"a":2}', "a"),
    (b'{"s":"\\u0022\\u0022\\u0022","k":1,"k":2}', "k"),  # quotes hidden in escapes
])
def test_a_repeated_key_is_named(raw: bytes, key: str) -> None:
    assert repeated_key(raw) == key


@pytest.mark.parametrize("raw", [
    b'{"a":1,"b":"x\\"y","c":[1,"2"]}', b'{"a":{"a":1}}', b"{not json", b"[]", b'"a"',
    b'{"s":"\\u00e9"}', b'{"a":1}{"a":1}',
])
def test_lines_without_repeats_are_left_alone(raw: bytes) -> None:
    assert repeated_key(raw) is None


VALUES = st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.text())


@given(st.dictionaries(st.text(max_size=5), VALUES, min_size=1, max_size=6))
def test_the_quick_count_never_hides_a_repeat(fields: dict[str, object]) -> None:
    raw = orjson.dumps(fields)
    assert repeated_key(raw) is None
    first = next(iter(fields))
    assert repeated_key(raw[:-1] + b"," + orjson.dumps(first) + b":0}") == first

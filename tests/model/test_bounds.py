"""Bounds on an input's size and nesting, measured before any parser sees it."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pointengine.errors import MalformedEvent, NestedTooDeeply, TooLarge
from pointengine.model.bounds import MAX_EVENT_BYTES, MAX_NESTING, refuse_deep_json
from pointengine.model.events import parse_event
from pointengine.model.scan import nested_deeper_than

_JSON = st.recursive(
    st.none() | st.integers(-(2**63), 2**63 - 1) | st.text(alphabet='[]{}"\\ab'),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.text(alphabet='[]{}"\\ab', max_size=3), inner, max_size=3),
    max_leaves=40)


def depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    return 0


@given(_JSON, st.integers(min_value=0, max_value=8))
def test_nesting_is_measured_as_a_parser_reads_it(value: object, limit: int) -> None:
    """Brackets in strings (escaped quotes included) do not count."""
    assert nested_deeper_than(orjson.dumps(value), limit) == (depth(value) > limit)


LINE = (b'{"source":"x","id":"a","person":"MK12345678","at":"2022-07-01T00:00:00+09:00",'
        b'"type":"purchase","provider":"quickpay","amount":1000,"store":"s",'
        b'"store_municipality":"131016","meta":%s}')


@pytest.mark.parametrize("levels", [MAX_NESTING, 255, 256, 600, 1_000, 1_025, 20_000])
def test_an_event_nested_too_deeply_is_refused_with_its_reason(levels: int) -> None:
    # 256-1,024 levels once met orjson's writer (TypeError), more the standard parser's
    # recursion: every depth is now refused before either runs.
    with pytest.raises(NestedTooDeeply) as caught:
        parse_event(LINE % (b"[" * levels + b"]" * levels))
    assert caught.value.reason_code == "too_deep"
    assert str(caught.value) == (f"event: arrays and objects nested more than {MAX_NESTING} "
                                 "levels deep; nothing was stored")


def test_an_event_nested_as_deeply_as_allowed_is_judged_on_its_fields() -> None:
    levels = MAX_NESTING - 1  # the event's own object is the first level
    with pytest.raises(MalformedEvent) as caught:
        parse_event(LINE % (b"[" * levels + b"]" * levels))
    assert caught.value.reason_code == "malformed" and "meta" in str(caught.value)


def test_an_event_over_the_size_bound_is_refused_before_it_is_read() -> None:
    line = LINE % (b'"' + b"x" * MAX_EVENT_BYTES + b'"')
    with pytest.raises(TooLarge) as caught:
        parse_event(line)
    assert caught.value.reason_code == "too_large"


def test_what_the_refusal_names() -> None:
    with pytest.raises(NestedTooDeeply, match=r"^quickpay webhook: arrays"):
        refuse_deep_json(b"{" * 65, "quickpay webhook")
    refuse_deep_json(b"[" * 64, "anything")

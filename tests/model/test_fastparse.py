"""The replay's fast path builds the same events as full validation, or steps aside."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pointengine.errors import InputError
from pointengine.model.events import parse_event
from pointengine.model.fastparse import FastParser
from pointengine.model.privacy import carries_my_number
from pointengine.synth.generate import generate

BASE = {"type": "purchase", "source": "paypay", "id": "p1", "person": "MKA1",
        "at": "2022-03-01T10:00:00+09:00", "provider": "paypay", "amount": 1_000,
        "store": "ST131016-1", "store_municipality": "131016"}


def _agree(parser: FastParser, raw: bytes) -> bool:
    """True when the fast path took the line (and built what parse_event builds)."""
    fast = parser.parse(raw)
    try:
        slow = parse_event(raw)
    except InputError:
        assert fast is None, raw
        return False
    if fast is None:
        return False
    assert fast == slow and fast.model_dump() == slow.model_dump(), raw
    assert fast.at.isoformat() == slow.at.isoformat() and fast.key == slow.key
    return True


def test_generated_and_malformed_lines_agree(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    generate(path, persons=300, events=6_000, seed=11,
             adversarial={"malformed", "duplicates", "out_of_order"})
    parser = FastParser()
    taken = sum(_agree(parser, raw) for raw in path.read_bytes().splitlines())
    assert taken > 5_000


@pytest.mark.parametrize("change", [
    {"amount": 1.0}, {"amount": True}, {"amount": 0}, {"amount": 100_000_001},
    {"amount": "5"}, {"store_municipality": "131017"}, {"store": None}, {"store": "bad id"},
    {"person": "123456789018"}, {"person": ""}, {"at": "2022-03-01T10:00:00"},
    {"at": "2022-03-01 10:00:00+09:00"}, {"at": "2022-03-01T10:00:00Z"},
    {"at": "2022-03-01T10:00:00.5+09:00"}, {"extra": 1}, {"type": "charge", "store": None,
                                                          "store_municipality": None},
    {"type": "charge"}, {"id": "x" * 65}, {"source": 5},
    {"person": ["MK1"]}, {"person": {"a": 1}}, {"store": {"a": 1}}, {"source": ["paypay"]},
    {"provider": {"a": 1}}, {"store_municipality": ["131016"]},
    {"at": 1646096400}, {"at": "1646096400"}, {"at": "2022-03-01t10:00:00+09:00"},
    {"at": "2022-03-01T01:00:00z"}, {"at": "2022-03-01T10:00:00-00:00"},
    {"at": "0001-01-01T00:00:00+09:00"}, {"at": "9999-12-31T23:59:59-09:00"},
    {"at": "2022-03-01T10:00:00.1234567+09:00"},
])
def test_edge_cases_agree(change: dict[str, object]) -> None:
    _agree(FastParser(), orjson.dumps({**BASE, **change}))


def test_refunds_agree() -> None:
    refund = {"type": "refund", "source": "paypay", "id": "r1", "person": "MKA1",
              "at": "2022-03-02T10:00:00+09:00", "provider": "paypay", "transaction": "p1",
              "amount": 300}
    assert _agree(FastParser(), orjson.dumps(refund))
    _agree(FastParser(), orjson.dumps({**refund, "transaction": None}))
    _agree(FastParser(), orjson.dumps({**refund, "store": "S1"}))


REFUND = {"type": "refund", "source": "paypay", "id": "r1", "person": "MKA1",
          "at": "2022-03-02T10:00:00+09:00", "provider": "paypay", "transaction": "p1",
          "amount": 300}


@pytest.mark.parametrize(("base", "tail"), [
    (BASE, b',"amount":5}'), (BASE, b', "amount" : 5}'), (BASE, b',"store":"S2"}'),
    (BASE, b',"type":"purchase"}'), (REFUND, b',"amount":5}'), (REFUND, b',"transaction":"p2"}'),
])
def test_a_key_given_twice_is_left_to_full_validation(base: dict[str, object],
                                                       tail: bytes) -> None:
    raw = orjson.dumps(base)[:-1] + tail
    assert FastParser().parse(orjson.dumps(base)) is not None
    assert FastParser().parse(raw) is None
    with pytest.raises(InputError, match="more than once"):
        parse_event(raw)


_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 100_000_002), st.sampled_from([1.0, 1e3]),
    st.sampled_from(["131016", "130001", "999999", "MKA1", "ST-1", "paypay", "p1", "a b",
                     "é", "x\"y", "", "123456789018", "1234 5678 9018",
                     "2022-03-01T10:00:00+09:00", "2022-03-01T10:00:00.123456Z",
                     "2022-02-29T10:00:00+09:00", "2022-03-01T24:00:00+09:00",
                     "1899-12-31T23:59:59+09:00", "2022-03-01T10:00:00+24:00"]),
    st.text(max_size=8), st.lists(st.sampled_from(["a", "1"]), max_size=2))
_KEYS = st.sampled_from([*BASE, "transaction", "phase", "extra"])


@settings(max_examples=500, deadline=None)
@given(base=st.sampled_from([BASE, REFUND, {**BASE, "type": "charge"}]),
       changes=st.dictionaries(_KEYS, _VALUES, max_size=3),
       dropped=st.lists(_KEYS, max_size=2), spaced=st.booleans())
def test_any_line_is_read_as_the_model_reads_it_or_left_to_it(
        base: dict[str, object], changes: dict[str, object], dropped: list[str],
        spaced: bool) -> None:
    line = {k: v for k, v in {**base, **changes}.items() if k not in dropped}
    raw = orjson.dumps(line)
    if spaced:
        raw = raw.replace(b'":', b'" : ').replace(b',"', b', "')
    # the caller sends a line that carries a My Number to the model, never to the fast path
    assume(not carries_my_number(raw))
    _agree(FastParser(), raw)

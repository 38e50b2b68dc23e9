"""The Redis protocol and the Redis store's records, as every path writes them."""

from __future__ import annotations

import msgpack
import orjson
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from pointengine.store.records import Award, Transaction
from pointengine.store.wire import bulk_strings, command, hmget, ledger_commands, transaction_record
from tests.redis_fixtures import redis_client, redis_server  # noqa: F401

_int64 = st.one_of(st.integers(-(1 << 63), (1 << 63) - 1),
                   st.sampled_from([0, 127, 128, 255, 256, 65535, 65536, (1 << 32) - 1, 1 << 32,
                                    -1, -32, -33, -128, -129, -32768, -32769, -(1 << 31),
                                    -(1 << 31) - 1]))
_names = st.one_of(st.text(max_size=40),
                   st.sampled_from([31, 32, 255, 256, 65535, 65536]).map(lambda n: "a" * n))


@settings(max_examples=200, deadline=None)
@given(amount=_int64, refunded=_int64, payer=_names, refund=st.booleans(),
       awards=st.lists(st.tuples(_names, st.integers(0, 1 << 30), _int64, _names, _int64,
                                 st.lists(_names, max_size=3)), min_size=1, max_size=20))
def test_a_transaction_record_is_what_msgpack_writes(
        amount: int, refunded: int, payer: str, refund: bool,
        awards: list[tuple[str, int, int, str, int, list[str]]]) -> None:
    tx = Transaction(amount, tuple(Award(program, version, points, provider, tuple(caps))
                                   for program, version, points, provider, _, caps in awards),
                     payer)
    tx.refunded = refunded
    if refund:
        tx.reversed = [back for *_, back, _ in awards]
    rows = [[program, version, points, provider, back if refund else 0, *caps]
            for program, version, points, provider, back, caps in awards]
    assert transaction_record(tx) == msgpack.packb([amount, refunded, rows, payer])


def test_a_transaction_that_earned_nothing_is_recorded_as_text() -> None:
    tx = Transaction(19_000, (), "MK-1|paypay")
    tx.refunded = 2_000
    assert transaction_record(tx) == b"19000|2000|MK-1|paypay"


def test_commands_are_what_redis_reads(redis_client: redis.Redis) -> None:  # noqa: F811
    connection = redis_client.connection_pool.get_connection()
    try:
        line = orjson.dumps({"seq": 1, "kind": "award", "event": "qp/t1", "person": "MK-1",
                             "points": -250, "transaction": None}) + b"\n"
        connection.send_packed_command([
            command(b"HSET", ["h", "名前", 7]),
            ledger_commands([line], b"ledger"),
            hmget(b"h", ["名前", "nobody"])])
        assert connection.read_response() == 1
        assert connection.read_response()  # the stream entry's id
        assert connection.read_response() == [b"7", None]
    finally:
        redis_client.connection_pool.release(connection)
    [(_, fields)] = redis_client.xrange("ledger")
    assert fields == {b"seq": b"1", b"kind": b"award", b"event": b"qp/t1", b"person": b"MK-1",
                      b"points": b"-250"}
    assert bulk_strings([b"a", "é", -1]) == b"$1\r\na\r\n$2\r\n\xc3\xa9\r\n$2\r\n-1\r\n"

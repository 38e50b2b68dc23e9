"""Replay: bad lines are rejected, counted and reported (masked), and the run goes on."""

from __future__ import annotations

import gc
import itertools
from pathlib import Path

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from pointengine.decide.engine import FROZEN_BY_THE_INTERPRETER
from pointengine.model.privacy import carries_my_number
from pointengine.replay.run import ReplayReport, replay
from tests.world import APPLY, BUY, World

MY_NUMBER = "123456789018"
FULL_WIDTH = "１２３４５６７８９０１８"


def buy(**changes: object) -> bytes:
    return orjson.dumps({**BUY, **changes})


def escaped(field: str, **changes: object) -> bytes:
    """A purchase whose ``field`` is the My Number with its first digit as a JSON escape."""
    return buy(**{field: "PLACEHOLDER"}, **changes).replace(
        b"PLACEHOLDER", b"\\u0031" + MY_NUMBER[1:].encode())


Rejected = list[dict[str, object]]


def run(world: World, tmp_path: Path, *lines: bytes) -> tuple[ReplayReport, Rejected]:
    """Replay the application, then ``lines``; the report and the rejects."""
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join((orjson.dumps(APPLY), *lines)) + b"\n")
    rejects = tmp_path / "rejects.jsonl"
    report = replay(events, world.engine, rejects=rejects)
    return report, [orjson.loads(line) for line in rejects.read_bytes().splitlines()]


def test_an_escaped_my_number_is_rejected_wherever_it_is(world: World, tmp_path: Path) -> None:
    report, rejects = run(world, tmp_path, escaped("id"), escaped("person", id="b2"),
                          escaped("store", id="b3"), buy(id="b4"))
    assert report.applied == 2 and report.reasons == {"my_number": 3}
    assert [r["line"] for r in rejects] == [2, 3, 4]
    assert [e.event for e in world.sink.entries] == ["t/b4"]
    for reject in rejects:
        assert not carries_my_number(orjson.dumps(reject)), reject
        assert "************" in str(reject["input"])


def test_full_width_digits_are_masked_in_the_rejects(world: World, tmp_path: Path) -> None:
    report, rejects = run(world, tmp_path, buy(person=FULL_WIDTH), buy(id="b2", store=FULL_WIDTH))
    assert report.rejected == 2 and report.applied == 1
    for reject in rejects:
        assert FULL_WIDTH not in str(reject["input"]) and "************" in str(reject["input"])
        assert not carries_my_number(orjson.dumps(reject))


def test_unhashable_values_are_malformed_and_the_run_goes_on(world: World,
                                                             tmp_path: Path) -> None:
    report, rejects = run(world, tmp_path, buy(person=["MK1"]), buy(id="b2", store={"a": 1}),
                          buy(id="b3"))
    assert report.reasons == {"malformed": 2} and report.applied == 2
    assert [(r["line"], r["reason"]) for r in rejects] == [(2, "malformed"), (3, "malformed")]


def test_a_timestamp_out_of_range_is_malformed_and_the_run_goes_on(world: World,
                                                                   tmp_path: Path) -> None:
    lines = [orjson.dumps({**APPLY, "id": "a0", "at": "0001-01-01T00:00:00+09:00"}),
             buy(at="0001-01-01T00:00:00+09:00"), buy(id="b2", at="9999-12-31T23:59:59-09:00"),
             buy(id="b3")]
    report, rejects = run(world, tmp_path, *lines)
    assert report.reasons == {"malformed": 3} and report.applied == 2
    assert all("out of range" in str(r["message"]) for r in rejects)


def test_a_repeated_key_is_named_and_nothing_of_it_applied(world: World,
                                                            tmp_path: Path) -> None:
    report, rejects = run(world, tmp_path, buy()[:-1] + b',"amount":5}', buy(id="b2"))
    assert report.applied == 2 and report.reasons == {"malformed": 1}
    assert rejects[0]["line"] == 2
    assert "'amount' is given more than once" in str(rejects[0]["message"])
    assert [(e.event, e.points) for e in world.sink.entries] == [("t/b2", 4_750)]


def test_a_byte_order_mark_on_the_first_line_is_named(world: World, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\xef\xbb\xbf" + orjson.dumps(APPLY) + b"\n" + buy() + b"\n")
    rejects = tmp_path / "rejects.jsonl"
    report = replay(events, world.engine, rejects=rejects)
    assert report.reasons == {"malformed": 1} and report.applied == 1
    reject = orjson.loads(rejects.read_bytes())
    assert reject["line"] == 1 and "starts with a byte-order mark" in reject["message"]


def test_a_replay_freezes_what_outlives_a_batch_and_unfreezes_it_at_the_end(
        world: World, tmp_path: Path) -> None:
    frozen: list[int] = []
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join([orjson.dumps(APPLY), buy(), buy(id="b2")]) + b"\n")
    # On 3.12 the interpreter's own immortal objects are in the permanent generation already.
    before = gc.get_freeze_count()
    assert before <= FROZEN_BY_THE_INTERPRETER
    replay(events, world.engine, batch=1, after_batch=lambda: frozen.append(gc.get_freeze_count()))
    assert len(frozen) == 3 and all(count > before for count in frozen)
    assert gc.get_freeze_count() <= before
    assert [(e.event, e.points) for e in world.sink.entries] == [("t/b1", 4_750), ("t/b2", 250)]


def test_a_replay_leaves_objects_frozen_by_someone_else_frozen(
        world: World, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(orjson.dumps(APPLY) + b"\n")
    gc.freeze()
    try:
        replay(events, world.engine)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_a_line_nested_too_deeply_is_counted_and_the_run_goes_on(world: World,
                                                                 tmp_path: Path) -> None:
    # 256-1,024 levels once stopped the replay with a TypeError on every later try.
    deep = buy(id="b2")[:-1] + b',"meta":' + b"[" * 600 + b"]" * 600 + b"}"
    report, rejects = run(world, tmp_path, deep, buy(id="b3"))
    assert report.reasons == {"too_deep": 1} and report.applied == 2
    assert rejects[0]["line"] == 2
    assert [e.event for e in world.sink.entries] == ["t/b3"]


def test_a_line_longer_than_any_event_is_counted_unread_and_the_run_goes_on(
        world: World, tmp_path: Path) -> None:
    from pointengine.model.bounds import MAX_EVENT_BYTES

    huge = buy(id="b2")[:-1] + b',"note":"' + b"x" * (3 * MAX_EVENT_BYTES) + b'"}'
    def padded(n: int, id: str) -> bytes:  # valid JSON of exactly n bytes
        line = buy(id=id)
        return line[:-1] + b" " * (n - len(line)) + b"}"

    report, rejects = run(world, tmp_path, huge, buy(id="b3"),
                          padded(MAX_EVENT_BYTES + 1, "b4"), padded(MAX_EVENT_BYTES, "b5"),
                          padded(MAX_EVENT_BYTES, "b6") + b"\r")
    assert report.reasons == {"too_large": 2} and report.applied == 4  # b6 with a CRLF too
    assert [(r["line"], r["reason"]) for r in rejects] == [(2, "too_large"), (4, "too_large")]
    assert [e.event for e in world.sink.entries] == ["t/b3", "t/b5"]  # b6: the cap was full


def test_blocks_end_where_their_bytes_end_however_long_the_lines(tmp_path: Path) -> None:
    """The positions a checkpoint keeps are byte offsets: a cut line counts whole."""
    from pointengine.model.bounds import MAX_EVENT_BYTES
    from pointengine.replay.reading import read_blocks

    lines = [b"a" * n + b"\n" for n in (10, MAX_EVENT_BYTES - 1, MAX_EVENT_BYTES,
                                        MAX_EVENT_BYTES + 1, 5 * MAX_EVENT_BYTES, 3)]
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(lines) + b"b" * (2 * MAX_EVENT_BYTES))  # no final line break
    with events.open("rb") as handle:
        blocks = list(read_blocks(handle, batch=2))
    assert [position.offset for _, position in blocks] == [
        sum(map(len, lines[:2])), sum(map(len, lines[:4])), sum(map(len, lines)),
        events.stat().st_size]
    assert [position.line for _, position in blocks] == [2, 4, 6, 7]
    kept = [len(raw) for block, _ in blocks for raw in block.raws]
    cut = MAX_EVENT_BYTES + 2
    assert kept == [11, MAX_EVENT_BYTES, MAX_EVENT_BYTES + 1, cut, cut, 4, cut]


_LENGTHS = st.sampled_from([0, 5, 200, 65_535, 65_536, 65_537, 65_538, 140_001])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_LENGTHS, st.sampled_from([b"\n", b"\r\n"])), max_size=8),
       st.booleans(), st.integers(1, 3), st.sampled_from([64, 1_000, 70_000, 1 << 20]))
def test_blocks_are_the_lines_of_the_file_cut_at_the_bound(
        lines: list[tuple[int, bytes]], unfinished: bool, batch: int, chunk: int) -> None:
    """Whatever the chunks the file is read in: every line in order, a line over the bound
    cut, and each block's position the byte offset after its last line."""
    import io

    from pointengine.model.bounds import MAX_EVENT_BYTES
    from pointengine.replay import reading

    texts = [b"x" * n + end for n, end in lines]
    if unfinished and texts:
        texts[-1] = texts[-1].rstrip(b"\r\n") or b"y"
    data = b"".join(texts)
    expected = [t if len(t.rstrip(b"\r\n")) <= MAX_EVENT_BYTES
                else t[:MAX_EVENT_BYTES] + b"\x00\n" for t in texts]
    ends = list(itertools.accumulate(map(len, texts)))
    original = reading._CHUNK
    reading._CHUNK = chunk
    try:
        blocks = list(reading.read_blocks(io.BytesIO(data), batch=batch))
    finally:
        reading._CHUNK = original
    assert [raw for block, _ in blocks for raw in block.raws] == expected
    assert [(p.offset, p.line) for _, p in blocks] == [
        (ends[min(i + batch, len(texts)) - 1], min(i + batch, len(texts)))
        for i in range(0, len(texts), batch)]


def test_a_my_number_however_grouped_is_rejected_and_masked(world: World,
                                                            tmp_path: Path) -> None:
    groupings = ["4712:1186:2524", "6273.1280.0619", "2464_6924_6999", "064-589-943-161",
                 "4712\u30001186\u30002524", "4712\u200b1186\u200b2524"]
    lines = [buy(id=f"b{i}", **{field: grouped})
             for i, grouped in enumerate(groupings, start=2)
             for field in ("person", "store")][::2]
    lines += [buy(id=grouped) for grouped in groupings[:4]] + [buy(id="b9")]
    report, rejects = run(world, tmp_path, *lines)
    assert report.reasons == {"my_number": len(lines) - 1} and report.applied == 2
    for reject in rejects:
        assert not carries_my_number(orjson.dumps(reject)), reject
        for grouped in groupings:
            assert grouped not in str(reject)


def test_a_my_number_across_the_cut_of_a_rejected_line_is_masked(world: World,
                                                                 tmp_path: Path) -> None:
    """The rejects file keeps the first 500 bytes of a line: masked first, then cut."""
    line = buy(id="b2", note="PLACEHOLDER")
    start = line.index(b"PLACEHOLDER")
    padded = line.replace(b"PLACEHOLDER", b"x" * (489 - start) + MY_NUMBER.encode())
    assert padded.index(MY_NUMBER.encode()) < 500 < padded.index(MY_NUMBER.encode()) + 12
    _, rejects = run(world, tmp_path, padded)
    assert MY_NUMBER[:11] not in str(rejects[0]["input"])

"""The ledger file: entries written and read back; a damaged line is named, not half-read."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from pointengine.errors import IntegrityError
from pointengine.model.ledger import FileSink, LedgerEntry, read_ledger

AWARD = LedgerEntry(1, "award", "paypay/P-1", "MK1", "national-phase2-card", 1, 250, "paypay",
                    "2022-02-01T10:00:00+09:00")
REVERSAL = LedgerEntry(2, "reversal", "paypay/R-1", "MK1", "national-phase2-card", 1, -250,
                       "paypay", "2022-02-02T10:00:00+09:00", "paypay/P-1")


def test_entries_are_read_back_as_written(tmp_path: Path) -> None:
    sink = FileSink(tmp_path / "ledger.jsonl")
    sink.append([AWARD, REVERSAL])
    sink.close()
    assert list(read_ledger(tmp_path / "ledger.jsonl")) == [AWARD, REVERSAL]


@pytest.mark.parametrize(("line", "why"), [
    (b"{not json\n", "not JSON"),
    (b"[1, 2]\n", "not a ledger entry"),
    (orjson.dumps({**orjson.loads(AWARD.to_json()), "points": 0.5}), "points is 0.5, not int"),
    (orjson.dumps({**orjson.loads(AWARD.to_json()), "points": True}), "points is True, not int"),
    (orjson.dumps({**orjson.loads(AWARD.to_json()), "kind": "gift"}), "kind is 'gift'"),
    (orjson.dumps({**orjson.loads(AWARD.to_json()), "extra": 1}), "not a ledger entry"),
])
def test_a_damaged_line_is_named_with_its_file_and_line(tmp_path: Path, line: bytes,
                                                        why: str) -> None:
    path = tmp_path / "ledger.jsonl"
    path.write_bytes(AWARD.to_json() + line.rstrip(b"\n") + b"\n")
    with pytest.raises(IntegrityError) as caught:
        list(read_ledger(path))
    assert str(caught.value).startswith(f"{path}:2: {why}")


def test_a_damaged_line_s_message_never_repeats_a_my_number() -> None:
    line = orjson.dumps({**orjson.loads(AWARD.to_json()), "points": "123456789018"})
    with pytest.raises(IntegrityError) as caught:
        LedgerEntry.from_json(line)
    assert "123456789018" not in str(caught.value)
    assert str(caught.value) == "points is '************', not int"
    with pytest.raises(IntegrityError) as caught:
        LedgerEntry.from_json(orjson.dumps({"123456789018": 1}))
    assert "123456789018" not in str(caught.value)

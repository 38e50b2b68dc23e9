"""Output files written whole or not at all; failures to write name their file and cause.

``/dev/full`` stands for a full disk: every write to it fails with ENOSPC.
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from pointengine.errors import OperationalError, OutputError
from pointengine.model.ledger import FileSink, LedgerEntry
from pointengine.model.output import (
    appending,
    csv_bytes,
    cut_back,
    make_folder,
    partial_of,
    whole_file,
    write_all,
    write_whole,
)

FULL = Path("/dev/full")
pytestmark = pytest.mark.skipif(not FULL.exists(), reason="needs Linux's /dev/full")


def test_a_whole_file_replaces_the_old_one_only_once_it_is_written(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    path.write_bytes(b"old")
    write_whole(path, b"new")
    assert path.read_bytes() == b"new" and not partial_of(path).exists()
    partial_of(path).symlink_to(FULL)
    with pytest.raises(OutputError) as caught:
        write_whole(path, b"newer" * 100_000)
    assert str(caught.value) == f"cannot write {path}: No space left on device"
    assert caught.value.path == path and caught.value.cause.errno == errno.ENOSPC
    assert isinstance(caught.value, OperationalError)
    assert path.read_bytes() == b"new" and not partial_of(path).is_symlink()


def test_a_whole_file_whose_writer_fails_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    with pytest.raises(KeyboardInterrupt), whole_file(path) as handle:
        handle.write(b"half")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_a_folder_under_a_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match=r"cannot write .*/file/out: Not a directory$"):
        make_folder(tmp_path / "file" / "out")
    with pytest.raises(OutputError, match=r"Not a directory$"):
        write_whole(tmp_path / "file" / "x.json", b"{}")


def test_an_appended_file_that_fails_is_named_and_closed(tmp_path: Path) -> None:
    rejects = tmp_path / "rejects.jsonl"
    rejects.symlink_to(FULL)
    with pytest.raises(OutputError, match=r"rejects\.jsonl: No space left on device"), \
            appending(rejects) as handle:
        handle.write(b"x" * 10)
    with pytest.raises(RuntimeError), appending(rejects) as handle:  # the first failure stays
        handle.write(b"x" * 10)
        raise RuntimeError


def test_cut_back_removes_or_truncates(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    path.write_bytes(b"line 1\nline 2\nhalf a li")
    cut_back(path, 7)
    assert path.read_bytes() == b"line 1\n"
    cut_back(path, 100)  # never made longer
    assert path.read_bytes() == b"line 1\n"
    cut_back(path, None)
    assert not path.exists()
    cut_back(path, None)


def test_a_ledger_on_a_full_disk_says_which_file(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.jsonl"
    ledger.symlink_to(FULL)
    sink = FileSink(ledger)
    entry = LedgerEntry(1, "award", "t/e1", "MK-A", "national-phase2-card", 1, 100, "paypay",
                        "2022-02-01T12:00:00+09:00", None)
    sink.append([entry])  # buffered
    with pytest.raises(OutputError) as caught:
        sink.flush()
    assert str(caught.value) == f"cannot write {ledger}: No space left on device"
    sink.abandon()  # closes without raising the same failure again
    plain = tmp_path / "plain"
    plain.write_text("")
    with pytest.raises(OutputError, match=f"cannot write {plain}: File exists"):
        FileSink(plain / "ledger.jsonl")


def test_csv_is_utf8_with_a_bom_and_crlf_lines() -> None:
    data = csv_bytes([["日付", "ポイント（円）"], ["2022-03-01", 100], ["a,b", None]])
    assert data == ("\ufeff日付,ポイント（円）\r\n2022-03-01,100\r\n\"a,b\",\r\n").encode()


def test_files_are_written_all_or_none(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    assert [p.name for p in write_all(folder, {"a.csv": b"1", "b.csv": b"2"})] == [
        "a.csv", "b.csv"]
    (folder / "b.csv.partial").mkdir()  # the second file cannot be written
    with pytest.raises(OutputError) as caught:
        write_all(folder, {"a.csv": b"new", "b.csv": b"new"})
    assert "b.csv" in str(caught.value)
    assert (folder / "a.csv").read_bytes() == b"1"  # as it was
    assert sorted(p.name for p in folder.iterdir()) == ["a.csv", "b.csv", "b.csv.partial"]

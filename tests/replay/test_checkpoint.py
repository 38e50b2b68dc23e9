"""Checkpoints of the embedded store: consistent with the ledger, and recovery after a crash."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pointengine.errors import OutputError
from pointengine.model.ledger import FileSink, LedgerEntry
from pointengine.replay.checkpoint import CheckpointError, Kept, load, restore, save
from pointengine.store.memory import MemoryStore
from pointengine.synth.generate import generate
from tests.world import ROOT, RULES


def _entry(seq: int) -> LedgerEntry:
    return LedgerEntry(seq, "award", f"t/e{seq}", "MK-A", "national-phase2-card", 1, 100,
                       "paypay", "2022-02-01T12:00:00+09:00", None)


def test_a_checkpoint_records_the_ledger_length(tmp_path: Path) -> None:
    ledger, state = tmp_path / "ledger.jsonl", tmp_path / "state.pickle"
    sink = FileSink(ledger)
    store = MemoryStore(sink)
    sink.append([_entry(1), _entry(2)])
    save(state, store, sink)
    assert store.sink is sink  # put back after pickling
    sink.close()
    saved, recorded, progress = load(state)
    assert isinstance(saved, MemoryStore) and recorded == ledger.stat().st_size
    assert progress is None


def test_restore_cuts_lines_written_after_the_checkpoint(tmp_path: Path) -> None:
    ledger, state = tmp_path / "ledger.jsonl", tmp_path / "state.pickle"
    sink = FileSink(ledger)
    sink.append([_entry(1)])
    save(state, MemoryStore(sink), sink)
    kept = ledger.read_bytes()
    sink.append([_entry(2), _entry(3)])
    sink.close()
    restored = restore(state, ledger)
    cut = len(_entry(2).to_json()) + len(_entry(3).to_json())
    assert (restored.dropped_lines, restored.dropped_bytes) == (2, cut)
    assert ledger.read_bytes() == kept


def test_a_ledger_shorter_than_its_checkpoint_is_refused(tmp_path: Path) -> None:
    ledger, state = tmp_path / "ledger.jsonl", tmp_path / "state.pickle"
    sink = FileSink(ledger)
    sink.append([_entry(1), _entry(2)])
    save(state, MemoryStore(sink), sink)
    sink.close()
    ledger.write_bytes(ledger.read_bytes()[:10])
    with pytest.raises(CheckpointError, match="missing"):
        restore(state, ledger)
    assert len(ledger.read_bytes()) == 10  # nothing changed


def test_a_checkpoint_of_another_version_is_refused_with_what_to_do(tmp_path: Path) -> None:
    state = tmp_path / "state.pickle"
    state.write_bytes(pickle.dumps({"store": MemoryStore(), "ledger_bytes": 0}))  # format 1
    with pytest.raises(CheckpointError, match=r"another version .*format 1.*--fresh"):
        load(state)
    state.write_bytes(pickle.dumps(MemoryStore()))  # saved before checkpoints had a ledger
    with pytest.raises(CheckpointError, match="another version"):
        load(state)
    # format 4: the store's class was pointengine.memory_store.MemoryStore
    moved = pickle.dumps({"format": 4, "store": MemoryStore(), "ledger_bytes": 0})
    state.write_bytes(moved.replace(b"pointengine.store.memory", b"pointengine.memory_store"))
    with pytest.raises(CheckpointError, match=r"another version .*--fresh"):
        load(state)


def test_something_else_is_not_a_checkpoint(tmp_path: Path) -> None:
    state = tmp_path / "state.pickle"
    state.write_bytes(pickle.dumps({"store": "no"}))
    with pytest.raises(CheckpointError, match="not a saved embedded store"):
        load(state)
    state.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="not a saved embedded store"):
        load(state)


def _replay(stream: Path, out: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "pointengine.cli.main", "replay", str(stream), "--rules", str(RULES),
         "--out", str(out), *extra], cwd=ROOT, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE)


def _checkpointed_replay(stream: Path, out: Path) -> subprocess.Popen[bytes]:
    """A replay that checkpoints after every batch, once its first checkpoint is written."""
    process = _replay(stream, out, "--checkpoint-every", "0")
    deadline = time.monotonic() + 60
    while not (out / "state.pickle").exists():
        assert process.poll() is None, "the replay ended before its first checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return process


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes, bytes]:
    """A stream with bad lines and re-deliveries, and the ledger and rejects one
    uninterrupted replay writes for it."""
    folder = tmp_path_factory.mktemp("crash")
    path = folder / "events.jsonl"
    generate(path, persons=3_000, events=60_000, seed=11,
             adversarial={"malformed", "duplicates"})
    clean = folder / "clean"
    assert _replay(path, clean).wait() == 0
    return path, (clean / "ledger.jsonl").read_bytes(), (clean / "rejects.jsonl").read_bytes()


def test_a_killed_replay_continues_to_the_same_ledger(stream: tuple[Path, bytes, bytes],
                                                      tmp_path: Path) -> None:
    path, expected, rejects = stream
    out = tmp_path / "out"
    process = _checkpointed_replay(path, out)
    time.sleep(0.5)
    process.send_signal(signal.SIGKILL)
    process.wait()
    again = _replay(path, out)
    assert again.wait() == 0, again.stderr.read() if again.stderr else ""
    assert again.stderr is not None and b"continuing" in again.stderr.read()
    assert (out / "ledger.jsonl").read_bytes() == expected  # every event exactly once
    assert (out / "rejects.jsonl").read_bytes() == rejects  # every bad line once


def test_ctrl_c_stops_after_the_batch_and_saves(stream: tuple[Path, bytes, bytes],
                                                tmp_path: Path) -> None:
    path, expected, rejects = stream
    out = tmp_path / "out"
    process = _checkpointed_replay(path, out)
    os.kill(process.pid, signal.SIGINT)
    assert process.wait() == 130
    assert process.stderr is not None and b"interrupted" in process.stderr.read()
    assert len((out / "ledger.jsonl").read_bytes()) < len(expected)
    assert _replay(path, out).wait() == 0
    assert (out / "ledger.jsonl").read_bytes() == expected
    assert (out / "rejects.jsonl").read_bytes() == rejects


def test_a_checkpoint_that_cannot_be_written_leaves_the_previous_one(tmp_path: Path) -> None:
    ledger, state = tmp_path / "ledger.jsonl", tmp_path / "state.pickle"
    sink = FileSink(ledger)
    sink.append([_entry(1)])
    save(state, MemoryStore(sink), sink)
    before = state.read_bytes()
    sink.append([_entry(2)])
    partial = tmp_path / "state.pickle.partial"
    partial.symlink_to("/dev/full")  # a full disk
    with pytest.raises(OutputError, match=f"cannot write {state}: No space left on device"):
        save(state, MemoryStore(sink), sink)
    sink.close()
    assert state.read_bytes() == before and not partial.is_symlink()
    assert restore(state, ledger).dropped_lines == 1  # the next run cuts the ledger back


def test_kept_cuts_back_to_the_last_checkpoint_or_removes(tmp_path: Path) -> None:
    ledger, rejects = tmp_path / "ledger.jsonl", tmp_path / "rejects.jsonl"
    ledger.write_bytes(b"1\n")
    kept = Kept.now(ledger, rejects)  # no rejects yet
    ledger.write_bytes(b"1\n2\nhal")
    rejects.write_bytes(b"r\n")
    assert kept.cut_back() is None
    assert ledger.read_bytes() == b"1\n" and not rejects.exists()

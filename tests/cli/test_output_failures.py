"""Output that cannot be written (a full disk, a read-only or forbidden folder): every command
says so in one line naming the file and the cause, exits 1, and leaves nothing half-written; a
replay stays resumable.

A full disk is simulated with ``/dev/full`` (every write fails with ENOSPC) put where a command
writes; where unprivileged user namespaces are available, a real tiny tmpfs is filled up or
made read-only too (``unshare -Urm``: this works as root and as a user alike).
"""

from __future__ import annotations

import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson
import pytest
from click.testing import Result
from typer.testing import CliRunner

from pointengine.cli.main import app
from pointengine.synth.generate import generate
from tests.world import APPLY, BUY, ROOT, RULES

runner = CliRunner()
FULL = Path("/dev/full")
ENOSPC = "No space left on device"

pytestmark = pytest.mark.skipif(not FULL.exists(), reason="needs Linux's /dev/full")


def _stream(path: Path, lines: int = 40) -> Path:
    """An application and ``lines`` purchases, one of them malformed (a reject)."""
    rows = [orjson.dumps(APPLY)]
    for n in range(lines):
        rows.append(b"{not json" if n == 7 else orjson.dumps(
            {**BUY, "id": f"b{n}", "amount": 1_000 + n}))
    path.write_bytes(b"\n".join(rows) + b"\n")
    return path


def _one_line(result: Result, pattern: str) -> str:
    """The single line of ``result``'s output that says what could not be written."""
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if "cannot write" in line]
    assert len(lines) == 1, result.output
    assert re.fullmatch(pattern, lines[0]), lines[0]
    return lines[0]


def _replay(stream: Path, out: Path, *extra: str) -> Result:
    return runner.invoke(app, ["replay", str(stream), "--rules", str(RULES), "--out", str(out),
                               *extra])


def _full(path: Path) -> None:
    """Make every write to ``path`` fail as on a full disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(FULL)


@pytest.fixture
def clean(tmp_path: Path) -> tuple[Path, bytes, bytes]:
    """A stream, and the ledger and rejects an undisturbed replay writes for it."""
    stream = _stream(tmp_path / "events.jsonl")
    out = tmp_path / "clean"
    assert _replay(stream, out).exit_code == 0
    return stream, (out / "ledger.jsonl").read_bytes(), (out / "rejects.jsonl").read_bytes()


def test_replay_into_a_folder_under_a_file_says_so_and_creates_nothing(tmp_path: Path) -> None:
    stream = _stream(tmp_path / "events.jsonl")
    (tmp_path / "file").write_text("not a folder")
    out = tmp_path / "file" / "out"
    _one_line(_replay(stream, out), re.escape(f"cannot write {out}: Not a directory"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl", "file"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_replay_into_a_read_only_folder_says_so_and_writes_nothing(tmp_path: Path) -> None:
    stream = _stream(tmp_path / "events.jsonl")
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    try:
        _one_line(_replay(stream, out),
                  re.escape(f"cannot write {out / 'ledger.jsonl'}: Permission denied") + ".*")
        assert list(out.iterdir()) == []
    finally:
        out.chmod(0o755)


def test_a_first_checkpoint_on_a_full_disk_keeps_nothing_and_the_replay_starts_over(
        clean: tuple[Path, bytes, bytes], tmp_path: Path) -> None:
    stream, ledger, rejects = clean
    out = tmp_path / "out"
    _full(out / "state.pickle.partial")
    line = _one_line(_replay(stream, out),
                     re.escape(f"cannot write {out / 'state.pickle'}: {ENOSPC}") + ";.*")
    assert "nothing this run wrote is kept" in line
    assert list(out.iterdir()) == []  # no ledger without its state, no .partial
    assert _replay(stream, out).exit_code == 0
    assert (out / "ledger.jsonl").read_bytes() == ledger
    assert (out / "rejects.jsonl").read_bytes() == rejects


def test_a_full_disk_cuts_the_ledger_and_rejects_back_to_the_last_checkpoint(
        clean: tuple[Path, bytes, bytes], tmp_path: Path) -> None:
    stream, ledger, rejects = clean
    lines = stream.read_bytes().splitlines(keepends=True)
    growing = tmp_path / "growing.jsonl"  # a file that grows is continued where it was left
    growing.write_bytes(b"".join(lines[:20]))
    out = tmp_path / "out"
    assert _replay(growing, out).exit_code == 0
    saved = {p.name: p.read_bytes() for p in out.iterdir() if p.name != "summary.json"}
    with growing.open("ab") as handle:
        handle.write(b"".join(lines[20:]))
    _full(out / "state.pickle.partial")
    line = _one_line(_replay(growing, out),
                     re.escape(f"cannot write {out / 'state.pickle'}: {ENOSPC}") + ";.*")
    assert f"cut back to the checkpoint in {out / 'state.pickle'}" in line
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name != "summary.json"} == saved
    result = _replay(growing, out)
    assert result.exit_code == 0, result.output
    assert "continuing" in result.output
    assert (out / "ledger.jsonl").read_bytes() == ledger
    assert (out / "rejects.jsonl").read_bytes() == rejects


def test_a_summary_on_a_full_disk_leaves_no_partial_file(
        clean: tuple[Path, bytes, bytes], tmp_path: Path) -> None:
    stream, ledger, _ = clean
    out = tmp_path / "out"
    _full(out / "summary.json.partial")
    line = _one_line(_replay(stream, out),
                     re.escape(f"cannot write {out / 'summary.json'}: {ENOSPC}") + ";.*")
    assert "the replay is complete" in line
    assert sorted(p.name for p in out.iterdir()) == ["ledger.jsonl", "rejects.jsonl",
                                                     "state.pickle"]
    assert (out / "ledger.jsonl").read_bytes() == ledger


def test_schema_on_a_full_disk_or_under_a_file_says_so(tmp_path: Path) -> None:
    out = tmp_path / "schema"
    _full(out / "program.schema.json.partial")
    _one_line(runner.invoke(app, ["schema", str(out)]),
              re.escape(f"cannot write {out / 'program.schema.json'}: {ENOSPC}"))
    assert list(out.iterdir()) == []
    (tmp_path / "file").write_text("")
    under = tmp_path / "file" / "schema"
    _one_line(runner.invoke(app, ["schema", str(under)]),
              re.escape(f"cannot write {under}: Not a directory"))


def test_settle_on_a_full_disk_says_so(clean: tuple[Path, bytes, bytes],
                                       tmp_path: Path) -> None:
    stream, _, _ = clean
    out = tmp_path / "out"
    assert _replay(stream, out).exit_code == 0
    csv_file = tmp_path / "settlement.csv"
    _full(tmp_path / "settlement.csv.partial")
    _one_line(runner.invoke(app, ["settle", "--ledger", str(out / "ledger.jsonl"), "--state",
                                  str(out / "state.pickle"), "--out", str(csv_file)]),
              re.escape(f"settle failed: cannot write {csv_file}: {ENOSPC}"))
    assert not csv_file.exists() and not (tmp_path / "settlement.csv.partial").exists()


def test_demo_on_a_full_disk_leaves_no_half_written_stream(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    args = ["demo", "--persons", "50", "--events", "400", "--seed", "3", "--rules", str(RULES),
            "--out", str(out)]
    stream = out / "events-50-400-3.jsonl"
    _full(out / "events-50-400-3.jsonl.partial")
    _one_line(runner.invoke(app, args), re.escape(f"cannot write {stream}: {ENOSPC}"))
    assert list(out.iterdir()) == []  # a later demo does not replay a truncated stream
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert stream.exists() and (out / "ledger.jsonl").exists()


def test_a_replay_on_redis_that_cannot_write_its_rejects_or_summary_says_so(
        tmp_path: Path) -> None:
    from pointengine.store.redis_server import RedisServer

    stream = _stream(tmp_path / "events.jsonl")
    out = tmp_path / "out"
    _full(out / "rejects.jsonl")
    with RedisServer() as server:
        line = _one_line(_replay(stream, out, "--redis-url", server.url),
                         re.escape(f"cannot write {out / 'rejects.jsonl'}: {ENOSPC}") + ";.*")
        assert "count as duplicates" in line
        (out / "rejects.jsonl").unlink()
        _full(out / "summary.json.partial")
        line = _one_line(_replay(stream, out, "--redis-url", server.url),
                         re.escape(f"cannot write {out / 'summary.json'}: {ENOSPC}") + ";.*")
    assert "the replay is complete" in line
    assert sorted(p.name for p in out.iterdir()) == ["rejects.jsonl"]


# -- real file systems: a tiny tmpfs in a private mount namespace ------------------------------


@pytest.fixture(scope="module")
def namespaces() -> None:
    """Skip unless this machine lets a process mount a tmpfs in a user namespace of its own."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare")
    with tempfile.TemporaryDirectory() as folder:
        probe = subprocess.run(["unshare", "-Urm", "sh", "-c",
                                f"mount -t tmpfs -o size=64k tmpfs {folder}"],
                               capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"no user namespaces here: {probe.stderr.decode(errors='replace')}")


def _in_namespace(script: str, **env: Path | str) -> None:
    """Run ``script`` (sh) in a private mount namespace, with ``$PE`` the pointengine command
    and ``env``."""
    variables = {**os.environ, "PE": f"{sys.executable} -m pointengine.cli.main",
                 **{k: str(v) for k, v in env.items()}}
    done = subprocess.run(["unshare", "-Urm", "sh", "-euc", script], cwd=ROOT, env=variables,
                          capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr.decode(errors="replace")


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes, bytes]:
    """A generated stream with bad lines and re-deliveries, and the ledger and rejects an
    undisturbed replay writes for it."""
    folder = tmp_path_factory.mktemp("big")
    path = folder / "events.jsonl"
    generate(path, persons=3_000, events=60_000, seed=11, adversarial={"malformed", "duplicates"})
    out = folder / "clean"
    assert _replay(path, out).exit_code == 0
    return path, (out / "ledger.jsonl").read_bytes(), (out / "rejects.jsonl").read_bytes()


def _said(err: Path) -> str:
    """The one line a failed command wrote to stderr besides its progress (a blank line, once a
    progress bar is gone, and where it continues from)."""
    text = err.read_text()
    assert "Traceback" not in text
    lines = [line for line in text.splitlines()
             if line.strip() and not line.startswith("continuing ")]
    assert len(lines) == 1, text
    return lines[0]


def _consistent(out: Path) -> bool:
    """Whether the ledger and the rejects in ``out`` are as long as its checkpoint says (or,
    without one, absent); True when a checkpoint is there."""
    names = {p.name for p in out.iterdir()}
    assert not [n for n in names if n.endswith(".partial")], names
    if "state.pickle" not in names:
        assert names == set(), names
        return False
    saved = pickle.loads((out / "state.pickle").read_bytes())
    assert (out / "ledger.jsonl").stat().st_size == saved["ledger_bytes"]
    assert (out / "rejects.jsonl").stat().st_size == saved["progress"]["rejects_bytes"]
    return True


@pytest.mark.parametrize("size, failed, checkpointed", [
    ("128k", "state.pickle", False),  # the first checkpoint
    ("256k", "ledger.jsonl", True),   # after a checkpoint
    ("6m", "state.pickle", True),     # a later checkpoint
])
def test_a_real_full_disk_leaves_the_replay_resumable(
        namespaces: None, big: tuple[Path, bytes, bytes], tmp_path: Path, size: str,
        failed: str, checkpointed: bool) -> None:
    stream, ledger, rejects = big
    mnt, host = tmp_path / "mnt", tmp_path / "host"
    mnt.mkdir()
    host.mkdir()
    _in_namespace("""
        mount -t tmpfs -o size=$SIZE tmpfs "$MNT"
        rc=0; $PE replay "$EVENTS" --rules "$RULES" --out "$MNT/out" --checkpoint-every 0 \
            >/dev/null 2>"$HOST/failed.err" || rc=$?
        echo $rc >"$HOST/failed.rc"
        cp -a "$MNT/out" "$HOST/failed"
        mount -o remount,size=64m "$MNT"
        rc=0; $PE replay "$EVENTS" --rules "$RULES" --out "$MNT/out" \
            >/dev/null 2>"$HOST/resumed.err" || rc=$?
        echo $rc >"$HOST/resumed.rc"
        cp -a "$MNT/out" "$HOST/resumed"
    """, SIZE=size, MNT=mnt, EVENTS=stream, RULES=RULES, HOST=host)
    assert (host / "failed.rc").read_text().strip() == "1"
    said = _said(host / "failed.err")
    assert said.startswith(f"cannot write {mnt / 'out' / failed}: {ENOSPC}; "), said
    assert ("cut back to the checkpoint" in said) is checkpointed
    assert _consistent(host / "failed") is checkpointed
    assert (host / "resumed.rc").read_text().strip() == "0", (host / "resumed.err").read_text()
    assert (host / "resumed" / "ledger.jsonl").read_bytes() == ledger
    assert (host / "resumed" / "rejects.jsonl").read_bytes() == rejects


def test_a_read_only_file_system_changes_nothing_and_the_replay_continues_later(
        namespaces: None, big: tuple[Path, bytes, bytes], tmp_path: Path) -> None:
    stream, ledger, rejects = big
    lines = stream.read_bytes().splitlines(keepends=True)
    growing, rest = tmp_path / "growing.jsonl", tmp_path / "rest.jsonl"
    growing.write_bytes(b"".join(lines[:30_000]))
    rest.write_bytes(b"".join(lines[30_000:]))
    mnt, host = tmp_path / "mnt", tmp_path / "host"
    mnt.mkdir()
    host.mkdir()
    _in_namespace("""
        mount -t tmpfs -o size=64m tmpfs "$MNT"
        $PE replay "$EVENTS" --rules "$RULES" --out "$MNT/out" >/dev/null 2>&1
        cp -a "$MNT/out" "$HOST/before"
        cat "$REST" >>"$EVENTS"
        mount -o remount,ro "$MNT"
        rc=0; $PE replay "$EVENTS" --rules "$RULES" --out "$MNT/out" \
            >/dev/null 2>"$HOST/refused.err" || rc=$?
        echo $rc >"$HOST/refused.rc"
        cp -a "$MNT/out" "$HOST/refused"
        mount -o remount,rw "$MNT"
        $PE replay "$EVENTS" --rules "$RULES" --out "$MNT/out" >/dev/null 2>&1
        cp -a "$MNT/out" "$HOST/resumed"
    """, MNT=mnt, EVENTS=growing, REST=rest, RULES=RULES, HOST=host)
    assert (host / "refused.rc").read_text().strip() == "1"
    said = _said(host / "refused.err")
    assert said.startswith(f"cannot write {mnt / 'out' / 'ledger.jsonl'}: Read-only file "
                           "system; "), said

    def files(folder: Path) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in folder.iterdir()}

    assert files(host / "refused") == files(host / "before")
    assert (host / "resumed" / "ledger.jsonl").read_bytes() == ledger
    assert (host / "resumed" / "rejects.jsonl").read_bytes() == rejects


# (the rules are no longer copied to the temporary folder: the stream is the first write)
@pytest.mark.parametrize("size, failed", [("64k", r"events\.jsonl"), ("1m", r"events\.jsonl")])
def test_simulate_on_a_full_temporary_folder_says_so_and_leaves_nothing(
        namespaces: None, tmp_path: Path, size: str, failed: str) -> None:
    mnt, host = tmp_path / "mnt", tmp_path / "host"
    mnt.mkdir()
    host.mkdir()
    _in_namespace("""
        mount -t tmpfs -o size=$SIZE tmpfs "$MNT"
        rc=0; TMPDIR="$MNT" $PE simulate "$RULEFILE" --rules "$RULES" --persons 2000 \
            --events 12000 >/dev/null 2>"$HOST/err" || rc=$?
        echo $rc >"$HOST/rc"
        ls -A "$MNT" >"$HOST/left"
    """, SIZE=size, MNT=mnt, RULEFILE=RULES / "342092-miyoshi" / "premium.yaml", RULES=RULES,
        HOST=host)
    assert (host / "rc").read_text().strip() == "1"
    said = _said(host / "err")
    assert re.fullmatch(rf"simulate: cannot write {mnt}/[^/]+/{failed}: {ENOSPC}", said), said
    assert (host / "left").read_text() == ""

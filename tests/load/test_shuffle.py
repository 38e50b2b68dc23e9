"""A stream delivered late within a window: every line kept once, none moved a window or more."""

from __future__ import annotations

from pathlib import Path

import pytest

from load.shuffle import main, shuffle_within


def _moves(lines: list[bytes], shuffled: list[bytes]) -> list[int]:
    where = {line: n for n, line in enumerate(shuffled)}
    return [where[line] - n for n, line in enumerate(lines)]


@pytest.mark.parametrize(("size", "window", "seed"), [
    (100_000, 20_000, 1), (100_000, 20_000, 2), (5_000, 7, 3), (1_000, 5_000, 4), (300, 1, 5),
    (1, 3, 6), (0, 4, 7)])
def test_no_line_moves_by_the_window_or_more_and_each_is_kept_once(
        size: int, window: int, seed: int) -> None:
    lines = [b"line %d" % n for n in range(size)]
    shuffled = shuffle_within(lines, window, seed)
    assert sorted(shuffled) == sorted(lines)
    moves = _moves(lines, shuffled)
    assert all(-window < move < window for move in moves)
    if window == 1:
        assert shuffled == lines
    elif size >= 5 * window >= 500:
        # the window is used: a line lands near i + d - window/2, so some move half of it
        # both ways
        assert max(moves) > 0.45 * window and min(moves) < -0.45 * window


def test_the_same_seed_gives_the_same_order_and_another_seed_another() -> None:
    lines = [b"%d" % n for n in range(10_000)]
    assert shuffle_within(lines, 100, 1) == shuffle_within(lines, 100, 1)
    assert shuffle_within(lines, 100, 1) != shuffle_within(lines, 100, 2)
    assert lines == [b"%d" % n for n in range(10_000)]  # the input is left as it was


def test_repeated_lines_are_each_kept() -> None:
    lines = [b"same"] * 50 + [b"other"] * 50
    assert sorted(shuffle_within(lines, 10, 1)) == sorted(lines)


@pytest.mark.parametrize("window", [0, -3])
def test_a_window_below_one_is_refused(window: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        shuffle_within([b"a"], window, 1)


def test_the_command_writes_the_shuffled_file(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    source, target = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    lines = [b'{"n":%d}' % n for n in range(2_000)]
    source.write_bytes(b"\n".join(lines) + b"\n")
    assert main([str(source), str(target), "--window", "50", "--seed", "9"]) == 0
    assert target.read_bytes().splitlines() == shuffle_within(lines, 50, 9)
    assert "2,000 lines" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "message"), [
    (["missing.jsonl", "out.jsonl"], "no such file"),
    (["in.jsonl", "out.jsonl", "--window", "0"], "--window must be at least 1"),
    (["in.jsonl", "in.jsonl"], "must be different files"),
    (["in.jsonl", "out.jsonl", "--window", "many"], "invalid int value"),
])
def test_the_command_refuses_bad_arguments_with_a_message(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
        message: str) -> None:
    (tmp_path / "in.jsonl").write_bytes(b"{}\n")
    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path / a) if a.endswith(".jsonl") else a for a in args])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out.jsonl").exists()

"""A stream delivered late, as a real one is: ``python -m load.shuffle IN OUT --window W --seed S``.

Real senders deliver out of order by a bounded amount (retries, parallel posts, a daily CSV after
the webhooks), not at random over the whole stream. :func:`shuffle_within` moves every line by
fewer than ``window`` positions: line ``i`` is sorted by ``i + d`` with ``d`` drawn uniformly from
``0..window-1`` (ties by ``i``), so a line can only be overtaken by the ``window - 1`` lines after
it and overtake the ``window - 1`` lines before it. A line lands near ``i + d - window/2``, so
in practice lines move up to about half the window either way (measured on 100,000 lines and a
window of 20,000: at most ~10,100 positions). The same seed gives the same order.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

__all__ = ["main", "shuffle_within"]


def shuffle_within(lines: list[bytes], window: int, seed: int) -> list[bytes]:
    """``lines`` in a seeded order where each line is fewer than ``window`` positions from its own.

    ``window`` 1 keeps the order; every line is kept exactly once. ``ValueError`` for a window
    below 1.
    """
    if type(window) is not int or window < 1:
        raise ValueError(f"the window must be a whole number of lines, at least 1: {window!r}")
    rng = random.Random(seed)
    # Integer offsets, so the bound is exact: a line j <= i - window always sorts before line i
    # (j + d_j <= i - 1), a line j >= i + window always after it.
    order = sorted(range(len(lines)), key=lambda i: (i + rng.randrange(window), i))
    return [lines[i] for i in order]


def main(argv: list[str] | None = None) -> int:
    """Write the lines of IN to OUT shuffled within a window; 2 on bad arguments."""
    parser = argparse.ArgumentParser(
        prog="python -m load.shuffle",
        description="Deliver an event file out of order, each line moved fewer than WINDOW "
                    "positions.")
    parser.add_argument("source", type=Path, metavar="IN", help="the event file (JSON lines)")
    parser.add_argument("target", type=Path, metavar="OUT", help="where to write the shuffled file")
    parser.add_argument("--window", type=int, default=20_000,
                        help="every line moves fewer than this many positions (default 20000)")
    parser.add_argument("--seed", type=int, default=1, help="the random seed (default 1)")
    args = parser.parse_args(argv)
    if args.window < 1:
        parser.error(f"--window must be at least 1, not {args.window}")
    if not args.source.is_file():
        parser.error(f"no such file: {args.source}")
    if args.source.resolve() == args.target.resolve():
        parser.error("IN and OUT must be different files")
    lines = args.source.read_bytes().splitlines()
    shuffled = shuffle_within(lines, args.window, args.seed)
    try:
        args.target.write_bytes(b"".join(line + b"\n" for line in shuffled))
    except OSError as error:
        parser.error(f"cannot write {args.target}: {error.strerror}")
    moved = sum(1 for n, line in enumerate(shuffled) if line is not lines[n])
    print(f"{len(lines):,} lines, {moved:,} moved (each fewer than {args.window:,} positions), "
          f"seed {args.seed} -> {args.target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

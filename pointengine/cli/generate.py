"""``pointengine generate``: write a synthetic stream of canonical events (load tests, demos).

A front for :func:`pointengine.synth.generate.generate`, whose docstring says what is written;
the same arguments give the same bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console

from pointengine.errors import OutputError
from pointengine.replay.progress import DEFAULT_EVERY, ProgressEvery, progress

__all__ = ["generate_command", "register"]


def generate_command(
    out: Annotated[Path, typer.Argument(help="the JSON-lines file to write (written whole)")],
    persons: Annotated[int, typer.Option(min=0, help="persons in the population")] = 20_000,
    events: Annotated[int, typer.Option(min=0, help="canonical events to write")] = 200_000,
    seed: Annotated[int, typer.Option(help="generator seed: same arguments, same bytes")] = 1,
    mix: Annotated[list[str] | None, typer.Option(
        "--mix", metavar="MIX[,MIX...]",
        help="adversarial lines to add: duplicates, out_of_order, malformed (repeat the "
        "option or separate with commas)")] = None,
    focus: Annotated[list[str] | None, typer.Option(
        "--focus", metavar="CODE",
        help="move a share of the persons to this local government (a prefecture's code "
        "means its municipalities); repeatable")] = None,
    focus_share: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="with --focus: the share of persons moved there")] = 0.25,
    names_out: Annotated[Path | None, typer.Option(
        help="also write a CSV of synthetic Japanese names per MyKey ID (slow)")] = None,
    data_dir: Annotated[Path | None, typer.Option(
        help="a folder of prefectures.csv and municipalities.csv instead of the shipped "
        "ones")] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="print what was written as JSON")] = False,
    progress_every: ProgressEvery = DEFAULT_EVERY,
) -> None:
    """Write a seeded synthetic stream of canonical events as JSON lines, and say what it holds.

    Applications, registrations and moves of the persons, then charges, purchases and refunds
    with their providers, in time order (see pointengine/synth/generate.py). The file is
    written whole or not at all.
    """
    from pointengine.synth.generate import ADVERSARIAL, generate

    mixes = frozenset(name.strip() for given in mix or () for name in given.split(",")
                      if name.strip())
    unknown = sorted(mixes - ADVERSARIAL)
    if unknown:
        raise typer.BadParameter(f"unknown {', '.join(unknown)}; choose from "
                                 f"{', '.join(sorted(ADVERSARIAL))}", param_hint="--mix")
    err = Console(stderr=True, soft_wrap=True)
    try:
        with progress("generate", events, err, every=progress_every) as update:
            report = generate(out, persons=persons, events=events, seed=seed,
                              data_dir=data_dir, adversarial=mixes, progress=update,
                              names_out=names_out, focus=tuple(focus or ()),
                              focus_share=focus_share)
    except OutputError as exc:
        err.print(f"generate: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    except ValueError as exc:  # what the generator refuses: too few events, an unknown place
        raise typer.BadParameter(str(exc)) from None
    if as_json:
        typer.echo(orjson.dumps(report, default=str).decode())
        return
    typer.echo(f"{report.events:,} events ({report.lines:,} lines) for {report.persons:,} "
               f"persons ({report.appliers:,} appliers) in {report.seconds:.1f} s: "
               f"{report.events_per_second:,.0f} events/s -> {out}; sha256 {report.sha256}")
    typer.echo(f"by type: {_counts(report.by_type)}; outside the window "
               f"{report.outside_window:,}; duplicates {report.duplicates:,}; out of order "
               f"{report.out_of_order:,}; malformed {_counts(report.malformed) or 0}")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n:,}" for name, n in sorted(counts.items()))


def register(app: typer.Typer) -> None:
    """Add ``generate`` to the ``pointengine`` command."""
    app.command("generate")(generate_command)

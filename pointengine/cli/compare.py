"""``pointengine compare DRAFT``: real history replayed under a draft, beside what was paid.

A front for :func:`pointengine.replay.compare.compare`: per program, provider and day, what the
draft would have paid, what was paid and the difference, and which persons gain or lose.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pointengine.cli.explain import LangOption, chosen_lang, report_rule_problems
from pointengine.errors import IntegrityError, OutputError, RuleFileError, UnreadableEvents
from pointengine.i18n import Lang, Text, say
from pointengine.replay.compare import MESSAGES, Comparison, PersonChange, Row, compare
from pointengine.replay.progress import DEFAULT_EVERY, MEGABYTE, ProgressEvery, progress

__all__ = ["compare_command", "print_comparison", "register"]


def compare_command(
    draft: Annotated[Path, typer.Argument(help="the draft program file")],
    events: Annotated[Path, typer.Option(
        "--events", help="the events of the months to replay (JSON lines)")],
    paid: Annotated[Path | None, typer.Option(
        "--paid", metavar="LEDGER", help="what was paid: a replay's ledger.jsonl of those "
        "events (default: the same events replayed under the rules in force)")] = None,
    rules: Annotated[Path | None, typer.Option(
        "--rules", help="the rules in force",
        show_default="rules/ if the working directory has one, else the shipped rules")]
    = None,
    top: Annotated[int, typer.Option(
        min=0, help="how many of the largest gains and losses to list")] = 10,
    csv_folder: Annotated[Path | None, typer.Option(
        "--csv", metavar="FOLDER", help="also write programs.csv, providers.csv, days.csv "
        "and persons.csv there (UTF-8 with BOM, headers in --lang)")] = None,
    lang: LangOption = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="print the comparison as JSON")] = False,
    progress_every: ProgressEvery = DEFAULT_EVERY,
) -> None:
    """Replay real history under a draft: what it would have paid per program, provider and
    day beside what was paid, and which persons gain or lose."""
    err = Console(stderr=True, soft_wrap=True)
    language = chosen_lang(lang)
    try:
        size = events.stat().st_size + (paid.stat().st_size if paid else events.stat().st_size)
    except OSError:
        size = 0  # compare says why a file cannot be read
    try:
        with progress("compare", size, err, unit="MB", scale=MEGABYTE, every=progress_every,
                      bar=size >= 5_000_000) as update:
            result = compare(draft, events=events, rules=rules, paid=paid, top=top,
                             on_progress=update)
        written = result.write_csv(csv_folder, language) if csv_folder is not None else []
    except RuleFileError as exc:
        report_rule_problems(err, exc)
        raise typer.Exit(1) from None
    except UnreadableEvents as exc:
        err.print(f"compare: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    except IntegrityError as exc:  # a damaged ledger
        err.print(f"compare: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    except OutputError as exc:
        err.print(f"compare: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(result.to_json().decode(), nl=False)
    else:
        print_comparison(result, Console(soft_wrap=True), language)
    if written:
        err.print(say(MESSAGES, Text("compare.csv_written", {
            "files": ", ".join(p.name for p in written), "folder": str(csv_folder)}),
            language), markup=False, highlight=False)


def print_comparison(result: Comparison, console: Console, lang: Lang) -> None:
    """The comparison as lines and rich tables, in ``lang``."""
    def s(code: str, **args: object) -> str:
        return say(MESSAGES, Text(code, args), lang)

    for line in result.summary:
        console.print(say(MESSAGES, line, lang), markup=False, highlight=False)
    for warning in result.warnings:
        console.print(warning, markup=False, highlight=False)
    days: list[Row] = result.per_day
    if len(days) > 31:
        months: dict[str, list[int]] = {}
        for row in days:
            month = months.setdefault(row.key[:7], [0, 0])
            month[0] += row.draft
            month[1] += row.paid
        days = [Row(m, d, p, d - p) for m, (d, p) in sorted(months.items())]
        by_day = ("title.month", "col.month")
    else:
        by_day = ("title.day", "col.day")
    for (title, first), rows in ((("title.program", "col.program"), result.per_program),
                                 (("title.provider", "col.provider"), result.per_provider),
                                 (by_day, days)):
        table = Table(s(first), s("col.draft"), s("col.paid"), s("col.difference"),
                      title=s(title))
        table.columns[0].overflow = "fold"  # a program's id whole, if on two lines
        for row in rows:
            table.add_row(row.key, f"{row.draft:,}", f"{row.paid:,}", f"{row.difference:+,}")
        table.add_row(s("col.total"), f"{result.draft_total:,}", f"{result.paid_total:,}",
                      f"{result.difference:+,}", style="bold")
        console.print(table)
    for title, people in (("title.gainers", result.top_gainers),
                          ("title.losers", result.top_losers)):
        if people:
            console.print(_persons(s(title), people, s))


def _persons(title: str, people: list[PersonChange], s: Callable[..., str]) -> Table:
    table = Table(s("col.person"), s("col.draft"), s("col.paid"), s("col.difference"),
                  title=title)
    for change in people:
        table.add_row(change.person, f"{change.draft:,}", f"{change.paid:,}",
                      f"{change.difference:+,}")
    return table



def register(app: typer.Typer) -> None:
    """Add ``compare`` to the ``pointengine`` command."""
    app.command("compare")(compare_command)

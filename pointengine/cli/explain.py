"""``pointengine explain PERSON``: one person's events, program by program, in Japanese or English.

A front for :func:`pointengine.replay.explain.explain_person`, which finds the person's lines
without replaying the file; :func:`describe` puts one engine decision in words (tests and
tools that hold decisions already).
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from pointengine.decide.engine import Decision
from pointengine.errors import (
    InputError,
    IntegrityError,
    MyNumberRejected,
    RuleFileError,
    UnreadableEvents,
)
from pointengine.i18n import Lang, Text, lang_from_env, say
from pointengine.model.privacy import carries_my_number
from pointengine.replay.explain import MESSAGES, explain_person
from pointengine.replay.progress import DEFAULT_EVERY, MEGABYTE, ProgressEvery, progress
from pointengine.store.contract import Outcome

__all__ = ["Language", "chosen_lang", "describe", "explain_command", "register",
           "report_rule_problems"]


class Language(enum.StrEnum):
    """The languages of a printout."""

    ja = "ja"
    en = "en"


LangOption = Annotated[Language | None, typer.Option(
    "--lang", help="language of the printout",
    show_default="en, or ja when POINTENGINE_LANG or LANG says so")]
"""The ``--lang`` option of ``explain`` and ``compare``."""


def chosen_lang(lang: Language | None) -> Lang:
    """The language asked for, else the environment's (English unless it says Japanese)."""
    if lang is not None:
        return "ja" if lang is Language.ja else "en"
    return lang_from_env()


def report_rule_problems(err: Console, exc: RuleFileError) -> None:
    """Every problem of the rules on its own line, then how many."""
    for problem in exc.problems:
        err.print(str(problem), markup=False, highlight=False, soft_wrap=True)
    err.print(f"[red]{len(exc.problems)} problem(s)[/red]")


def explain_command(
    person: Annotated[str, typer.Argument(help="the MyKey ID")],
    events: Annotated[Path, typer.Option("--events", help="the stream of events")],
    ledger: Annotated[Path | None, typer.Option(
        "--ledger", help="a replay's ledger.jsonl: what was actually awarded and reversed "
        "(budgets and allocations shared with others included), and the totals")] = None,
    rejects: Annotated[Path | None, typer.Option(
        "--rejects", help="the same replay's rejects.jsonl: the reasons it gave")] = None,
    rules: Annotated[Path | None, typer.Option(
        "--rules", help="the rules folder",
        show_default="rules/ if the working directory has one, else the shipped rules")]
    = None,
    lang: LangOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the explanation as JSON")]
    = False,
    progress_every: ProgressEvery = DEFAULT_EVERY,
) -> None:
    """For each of a person's events: what each program awarded or why not (the observed value
    beside the requirement), what a cap or budget clipped, the person's refused lines and
    totals. Only the person's lines are decided: the file is searched, not replayed."""
    out = Console(soft_wrap=True)  # explain lines stay whole for grep
    err = Console(stderr=True, soft_wrap=True)
    language = chosen_lang(lang)
    if carries_my_number(person.encode()):
        # Refused, not searched for: no event can carry one, and it must not be echoed.
        err.print("PERSON carries a My Number, which is never a MyKey ID; nothing was looked up")
        raise typer.Exit(2)
    try:
        size = events.stat().st_size
    except OSError:
        size = 0  # explain_person says why the file cannot be read
    try:
        with progress("explain", size, err, unit="MB", scale=MEGABYTE, every=progress_every,
                      bar=size >= 50_000_000) as update:
            explanation = explain_person(person, events=events, rules=rules, ledger=ledger,
                                         rejects=rejects, on_progress=update)
    except MyNumberRejected:  # pragma: no cover - refused above; kept for a changed guard
        err.print("PERSON carries a My Number, which is never a MyKey ID; nothing was looked up")
        raise typer.Exit(2) from None
    except UnreadableEvents as exc:
        err.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(2) from None
    except InputError as exc:
        raise typer.BadParameter(str(exc), param_hint="PERSON") from None
    except RuleFileError as exc:
        report_rule_problems(err, exc)
        raise typer.Exit(1) from None
    except IntegrityError as exc:  # a damaged ledger or rejects file
        err.print(f"explain: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(explanation.to_json().decode(), nl=False)
    if not explanation.found:
        if not as_json:
            out.print(say(MESSAGES, Text("none.events", {"person": person}), language),
                      markup=False, highlight=False)
        raise typer.Exit(1)
    if not as_json:
        for line in explanation.render(language):
            out.print(line, markup=False, highlight=False)


def describe(decision: Decision) -> list[str]:
    """Human lines for one decision: the event, then one line per program."""
    event = decision.event
    amount = getattr(event, "amount", None)
    head = f"{event.at.isoformat()} {event.type} {event.key}"
    lines = [head + (f" {amount:,} yen" if amount is not None else "")]
    applied = decision.applied
    if applied.status != "applied":
        lines.append(f"  {applied.status}: {applied.reason}")
    # A program may make several claims for one event (a per-child grant to a known household:
    # one per birth date); its line adds them up and names every cap that limited one.
    outcomes: dict[str, list[Outcome]] = {}
    for outcome in applied.outcomes:
        outcomes.setdefault(outcome.program, []).append(outcome)
    for verdict in decision.verdicts:
        name = f"{verdict.program}@v{verdict.version}"
        if verdict.failed is not None:
            lines.append(f"  {name}: nothing; failed {verdict.failed.name}: "
                         f"{verdict.failed.explain}")
            continue
        claims = outcomes.get(verdict.program)
        if not claims:
            lines.append(f"  {name}: eligible, nothing to award")
            continue
        awarded = sum(o.awarded for o in claims)
        wanted = sum(o.wanted for o in claims)
        if awarded < wanted:
            limits = ", ".join(dict.fromkeys(o.limited_by for o in claims if o.limited_by))
            lines.append(f"  {name}: awarded {awarded:,} of {wanted:,}; limited by {limits}")
        else:
            lines.append(f"  {name}: awarded {awarded:,}")
    for program, points in applied.reversed.items():
        lines.append(f"  {program}: reversed {points:,}")
    return lines


def register(app: typer.Typer) -> None:
    """Add ``explain`` to the ``pointengine`` command."""
    app.command("explain")(explain_command)

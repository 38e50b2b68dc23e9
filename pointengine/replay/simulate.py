"""``pointengine simulate RULEFILE``: what a proposed program would do, before it launches.

The proposed program file is loaded together with the shipped catalog and validated as
``validate`` does (problems are reported against the proposed file's own path and lines). A file
that revises a shipped program (same id, or the shipped file itself) replaces it. Then a
synthetic population and event stream are generated with
:func:`pointengine.synth.generate.generate`, seeded, with a share of the persons moved to the
program's jurisdiction so that its residents and stores appear; the stream is replayed on an
in-memory store, and the ledger lines of the proposed
program answer what a municipality asks: persons reached, points paid in total and per
provider, the day the budget would run out (or that it does not), and the points per day.

All figures are integer yen, net of refunds. Days are JST calendar days.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from pointengine.catalog.drafts import load_with_proposal, scratch
from pointengine.catalog.loading import Catalog, Program
from pointengine.catalog.programs import Lottery, PerActivity
from pointengine.catalog.shipped import rules_folder
from pointengine.decide.engine import Decision, Engine
from pointengine.errors import OutputError, RuleFileError, UnreadableEvents
from pointengine.model.jst import JST
from pointengine.model.ledger import ListSink
from pointengine.replay.progress import (
    DEFAULT_EVERY,
    MEGABYTE,
    ProgressEvery,
    Update,
    progress,
)
from pointengine.replay.run import replay
from pointengine.store.memory import MemoryStore

if TYPE_CHECKING:
    from pointengine.synth.generate import Activities

BUDGET_LABELS = ("program budget", "program budget in persons")


@dataclass
class SimulationReport:
    """What the proposed program did over the simulated stream."""

    program: str
    name: str
    jurisdiction: str
    type_letter: str
    versions: list[str]
    events: int = 0
    trigger_events: dict[str, int] = field(default_factory=dict)
    persons_reached: int = 0
    points_total: int = 0
    points_per_provider: dict[str, int] = field(default_factory=dict)
    persons_per_provider: dict[str, int] = field(default_factory=dict)
    points_per_day: dict[str, int] = field(default_factory=dict)
    budget_yen: int | None = None
    budget_persons: int | None = None
    budget_exhausted_on: str | None = None
    limited: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    stream: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        """The report as indented JSON."""
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)


def run_simulation(catalog: Catalog, program_id: str, events: Path,
                   on_progress: Callable[[int], None] | None = None) -> SimulationReport:
    """Replay ``events`` on a fresh in-memory store and report on ``program_id``;
    ``on_progress`` gets the bytes read after each batch."""
    program = catalog.programs[program_id]
    current = program.current
    report = SimulationReport(
        program=program_id, name=current.name, jurisdiction=current.jurisdiction,
        type_letter=current.type_letter, versions=[v.label for v in program.versions],
        budget_yen=current.budget.yen if current.budget else None,
        budget_persons=current.budget.persons if current.budget else None)
    sink = ListSink()
    engine = Engine(catalog, MemoryStore(sink))
    limited: Counter[str] = Counter()
    refused_by_budget: list[str] = []

    types: Counter[str] = Counter()

    def watch(decisions: list[Decision]) -> None:
        for decision in decisions:
            types[decision.event.type] += 1
            for outcome in decision.applied.outcomes:
                if outcome.program != program_id or outcome.limited_by is None:
                    continue
                limited[outcome.limited_by] += 1
                if outcome.limited_by in BUDGET_LABELS and not refused_by_budget:
                    refused_by_budget.append(_day(decision.event.at))

    try:
        replayed = replay(events, engine, on_decisions=watch, on_progress=on_progress)
    finally:
        engine.close()
    report.events = replayed.lines
    report.trigger_events = {t: types[t] for t in sorted({t for v in program.versions
                                                           for t in v.on})}
    per_day: Counter[str] = Counter()
    per_provider: Counter[str] = Counter()
    per_person: Counter[tuple[str, str]] = Counter()
    spent = 0
    spent_out: str | None = None
    for entry in sink.entries:
        if entry.program != program_id:
            continue
        day = _day(dt.datetime.fromisoformat(entry.at))
        per_day[day] += entry.points
        per_provider[entry.provider] += entry.points
        per_person[(entry.person, entry.provider)] += entry.points
        spent += entry.points
        if report.budget_yen is not None and spent_out is None and spent >= report.budget_yen:
            spent_out = day
    reached = {person for (person, _), points in per_person.items() if points > 0}
    report.persons_reached = len(reached)
    report.points_total = spent
    report.points_per_provider = dict(sorted(per_provider.items()))
    report.persons_per_provider = dict(sorted(Counter(
        provider for (_, provider), points in per_person.items() if points > 0).items()))
    report.points_per_day = {d: p for d, p in sorted(per_day.items()) if p}
    candidates = [d for d in (spent_out, *refused_by_budget) if d is not None]
    report.budget_exhausted_on = min(candidates) if candidates else None
    report.limited = dict(limited.most_common())
    return report


def _day(at: dt.datetime) -> str:
    return at.astimezone(JST).date().isoformat()


def simulate(rulefile: Path, *, rules: Path | None = None, persons: int = 20_000,
             events: int = 100_000, seed: int = 2022, focus_share: float = 0.25,
             stream: Path | None = None, console: Console | None = None,
             progress_every: float = DEFAULT_EVERY) -> SimulationReport:
    """Validate ``rulefile`` with the shipped catalog, build or read a stream, and report.

    Without ``stream``, ``events`` events over ``persons`` persons are generated with ``seed``,
    with ``focus_share`` of the persons living in the program's jurisdiction (none is moved for
    a national program). ``rules`` is the shipped rules folder (by default ``rules/`` of the
    working directory, else the rules installed with the package:
    :func:`~pointengine.catalog.shipped.rules_folder`). With ``console`` (stderr), the
    generation and the replay report their progress there
    (:func:`pointengine.replay.progress.progress`). Raises :class:`RuleFileError` for an
    invalid file and ``ValueError`` for generator arguments it refuses (fewer than 1 person,
    a share outside 0..1, fewer events than the persons' own applications and
    registrations).
    """
    if stream is None:  # checked before the catalog is loaded: the answer does not depend on it
        if persons < 1:
            raise ValueError(f"persons: a population needs at least 1 person, got {persons}")
        if not 0 <= focus_share <= 1:
            raise ValueError(f"focus_share: a share is between 0 and 1, got {focus_share}")
    catalog, program_id = load_with_proposal(rulefile, rules_folder(rules))
    warnings = [str(w) for w in catalog.warnings if w.file == str(rulefile)]
    if stream is not None:
        report = _simulate_with_progress(catalog, program_id, stream, console, progress_every)
        report.stream = {"file": str(stream)}
        report.warnings = warnings
        return report
    from pointengine.synth.generate import generate

    program = catalog.programs[program_id]
    jurisdiction = program.current.jurisdiction
    focus = () if jurisdiction == "national" else (jurisdiction,)
    activities = activities_for(program, focus)
    with scratch() as tmp:
        path = Path(tmp) / "events.jsonl"
        with _progress("generate", events, console, every=progress_every) as update:
            generate(path, persons=persons, events=events, seed=seed, focus=focus,
                     focus_share=focus_share, activities=activities, progress=update)
        report = _simulate_with_progress(catalog, program_id, path, console, progress_every)
    report.stream = {"persons": persons, "events": events, "seed": seed,
                     "focus": list(focus), "focus_share": focus_share if focus else 0.0}
    if activities is not None:
        report.stream["activities"] = {
            "names": list(activities.names), "health_points": list(activities.health_points),
            "share_of_slots": activities.share, "active_residents": activities.active_share,
            "draws": [[p, at.isoformat()] for p, at in activities.draws]}
    report.warnings = warnings
    return report


def _simulate_with_progress(catalog: Catalog, program_id: str, events: Path,
                            console: Console | None, every: float) -> SimulationReport:
    try:
        size: int | None = events.stat().st_size
    except OSError:
        size = None  # the replay says why it cannot read the file
    with _progress("simulate", size, console, unit="MB", scale=MEGABYTE, every=every,
                   bar=size is not None and size >= 5_000_000) as update:
        return run_simulation(catalog, program_id, events, lambda done: update(done, None))


def _progress(label: str, total: int | None, console: Console | None, **options: Any,
              ) -> contextlib.AbstractContextManager[Update]:
    """:func:`progress` to ``console``; nothing without one (the function called as a library)."""
    if console is None:
        return contextlib.nullcontext(_ignore)
    return progress(label, total, console, **options)


def _ignore(done: int, total: int | None = None) -> None:
    pass


def activities_for(program: Program, places: tuple[str, ...]) -> Activities | None:
    """The participations (and lottery draws) a synthetic stream needs for ``program``.

    None unless the program is triggered by participation. Activities are the program's own
    (the names of a points table), or one generic health programme; a lottery's participations
    bring a tenth to a half of its threshold in health points each (an assumption: the seeds
    give no distribution), and it is drawn at 10:00 JST the day after its period ends (or
    after the generated stream's last day), when every participation is in.
    """
    from pointengine.synth.generate import LAST_DAY, Activities
    from pointengine.synth.population import to_date

    versions = program.versions
    if not places or not any("participation" in v.on for v in versions):
        return None
    names = sorted({name for v in versions if isinstance(v.award, PerActivity)
                    for name in v.award.points}) or ["health-program"]
    health: tuple[int, ...] = (0,)
    draws: tuple[tuple[str, dt.datetime], ...] = ()
    award = program.current.award
    if isinstance(award, Lottery):
        health = tuple(max(1, award.threshold * k // 100) for k in (10, 20, 30, 50))
        period = program.current.conditions.period
        last = period.to if period is not None else to_date(LAST_DAY)
        # drawn the morning after the period ends, when every participation is in
        draws = ((program.id, dt.datetime.combine(last + dt.timedelta(days=1), dt.time(10),
                                                  JST)),)
    return Activities(places, tuple(names), health, draws=draws)


def print_report(report: SimulationReport, console: Console) -> None:
    """The report as rich tables."""
    head = Table("program", "jurisdiction", "type", "versions", title="proposed program")
    head.add_row(f"{report.program}\n{report.name}", report.jurisdiction, report.type_letter,
                 ", ".join(report.versions))
    console.print(head)
    summary = Table("figure", "value", title=f"over {report.events:,} simulated events")
    summary.add_row("persons reached", f"{report.persons_reached:,}")
    summary.add_row("points paid (yen)", f"{report.points_total:,}")
    budget = [f"{report.budget_yen:,} yen"] if report.budget_yen is not None else []
    if report.budget_persons is not None:
        budget.append(f"{report.budget_persons:,} persons")
    summary.add_row("budget", " and ".join(budget) or "none")
    summary.add_row("budget runs out on",
                    report.budget_exhausted_on or ("does not run out" if budget else "-"))
    for label, count in report.limited.items():
        summary.add_row(f"claims limited by {label}", f"{count:,}")
    console.print(summary)
    providers = Table("provider", "persons", "points (yen)", title="per provider")
    for provider, points in report.points_per_provider.items():
        providers.add_row(provider, f"{report.persons_per_provider.get(provider, 0):,}",
                          f"{points:,}")
    providers.add_row("total", f"{report.persons_reached:,}", f"{report.points_total:,}",
                      style="bold")
    console.print(providers)
    days = report.points_per_day
    if len(days) <= 31:
        table = Table("day", "points (yen)", title="per day")
        rows = days
    else:
        table = Table("month", "points (yen)", "days with awards",
                      title="per month (--json lists every day)")
        months: Counter[str] = Counter()
        active: Counter[str] = Counter()
        for day, points in days.items():
            months[day[:7]] += points
            active[day[:7]] += 1
        rows = dict(sorted(months.items()))
    for key, points in rows.items():
        cells = [key, f"{points:,}"]
        if len(days) > 31:
            cells.append(str(active[key]))
        table.add_row(*cells)
    console.print(table)
    missing = [t for t, n in report.trigger_events.items() if n == 0]
    if missing:
        console.print(f"note: the stream has no {', '.join(missing)} events "
                      "(pass --events-file with such events)", markup=False)
    for warning in report.warnings:
        console.print(warning, markup=False, highlight=False)


def simulate_command(
    rulefile: Annotated[Path, typer.Argument(help="the proposed program file")],
    rules: Annotated[Path | None, typer.Option(
        "--rules", help="the shipped rules folder",
        show_default="rules/ if the working directory has one, else the shipped rules")]
    = None,
    persons: Annotated[int, typer.Option(
        min=1, help="persons in the synthetic population")] = 20_000,
    events: Annotated[int, typer.Option(min=1, help="events in the synthetic stream")] = 100_000,
    seed: Annotated[int, typer.Option(help="generator seed")] = 2022,
    focus_share: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="share of persons moved to the program's jurisdiction")] = 0.25,
    stream: Annotated[Path | None, typer.Option(
        "--events-file", help="replay this JSON-lines stream instead of generating one")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    progress_every: ProgressEvery = DEFAULT_EVERY,
) -> None:
    """Run a proposed program over a synthetic stream: reach, points, budget run-out day."""
    err = Console(stderr=True)
    try:
        report = simulate(rulefile, rules=rules, persons=persons, events=events, seed=seed,
                          focus_share=focus_share, stream=stream,
                          console=Console(stderr=True, soft_wrap=True),
                          progress_every=progress_every)
    except RuleFileError as exc:
        for problem in exc.problems:
            err.print(str(problem), markup=False, highlight=False, soft_wrap=True)
        err.print(f"[red]{len(exc.problems)} problem(s); nothing was simulated[/red]")
        raise typer.Exit(1) from None
    except UnreadableEvents as exc:
        err.print(f"simulate: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except OutputError as exc:  # the temporary copy of the rules, or the generated stream
        err.print(f"simulate: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if as_json:
        typer.echo(report.to_json().decode(), nl=False)
    else:
        print_report(report, Console())


def register(app: typer.Typer) -> None:
    """Add ``simulate`` to the ``pointengine`` command."""
    app.command("simulate")(simulate_command)

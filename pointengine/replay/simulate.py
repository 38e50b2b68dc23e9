"""``pointengine simulate RULEFILE``: what a proposed program would do, before it launches.

The proposed program file is loaded together with the shipped catalog and validated as
``validate`` does (problems are reported against the proposed file's own path and lines). A file
that revises a shipped program (same id, or the shipped file itself) replaces it.

Then the program is forecast on a sample of the population it concerns, scaled to that
population's real size (:mod:`pointengine.replay.forecast` says whom a program concerns and how
the figures are scaled and rounded): a seeded synthetic stream of that sample is generated with
:func:`pointengine.synth.generate.generate`, with the program's budget scaled down by the
sample's share, and replayed on an in-memory store; the proposed program's ledger lines,
scaled back up, answer what a municipality asks: persons reached out of the population
concerned, points paid out of the budget, per provider and per day, the budget left day by day,
and the day the budget runs out (or that it does not). Every assumption is listed, in Japanese
and English, and the report warns when the program's period lies outside the stream's.

All figures are integer yen, net of refunds. Days are JST calendar days.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from fractions import Fraction
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
from pointengine.i18n import Lang, Text, lang_from_env
from pointengine.model.jst import JST
from pointengine.model.ledger import LedgerEntry, ListSink
from pointengine.model.output import csv_bytes, write_all
from pointengine.replay.forecast import (
    FEW_RESIDENTS,
    POPULATION_AS_OF,
    SYNTHETIC_PERIOD,
    Concerned,
    Scale,
    Series,
    active_span,
    activity_assumptions,
    clip,
    concerned,
    day_series,
    entry_day,
    percent,
    period_warnings,
    persons_limit,
    place_name,
    render,
    rendered,
    scale_spent,
    scaled_catalog,
    scaling_assumptions,
    share_out,
    text,
)
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
CSV_FILES = ("days.csv", "providers.csv", "summary.csv")
"""What ``--csv FOLDER`` writes."""

OnProgress = Callable[[str, int, int | None], None]
"""``on_progress(stage, done, total)``: ``generate`` counts events, ``simulate`` the stream's
bytes read; ``total`` is None when unknown."""


@dataclass
class ProviderFigures:
    """One provider's share of a forecast (whole population): persons reached and points."""

    provider: str
    name: str
    persons: int
    points: int
    share: float | None
    """The provider's share of the points paid (None when nothing was paid)."""


@dataclass
class SimulationReport:
    """What the proposed program would do: the forecast for the whole population concerned.

    ``persons_reached``, ``points_*``, ``providers`` and ``series`` are scaled up to
    ``population`` (the population concerned; None when an events file was replayed as it is,
    unscaled); ``sample`` holds the simulated sample's own figures and ``scale`` the factor.
    ``trigger_events``, ``events`` and ``limited`` count the simulated stream's events and
    claims. ``assumptions`` and ``notices`` (warnings about the forecast: periods outside the
    stream, a thin sample, missing events) are :class:`~pointengine.i18n.Text` of
    :data:`pointengine.replay.forecast.TABLE`; ``warnings`` are the rule file's own.
    """

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
    population: int | None = None
    population_scope: str = "stream"
    population_area: str = ""
    population_area_name: str = ""
    """The area's name in Japanese (全国 for the country)."""
    reached_share: float | None = None
    budget_share: float | None = None
    scale: dict[str, Any] = field(default_factory=dict)
    sample: dict[str, Any] = field(default_factory=dict)
    stream_period: list[str] | None = None
    providers: list[ProviderFigures] = field(default_factory=list)
    series: Series = field(default_factory=Series)
    assumptions: list[Text] = field(default_factory=list)
    notices: list[Text] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-able data; each assumption and notice as its code, arguments
        and both renderings (``ja``, ``en``)."""
        data = asdict(self)
        data["assumptions"] = [rendered(t) for t in self.assumptions]
        data["notices"] = [rendered(t) for t in self.notices]
        return data

    def to_json(self) -> bytes:
        """The report as indented JSON (:meth:`as_dict`)."""
        return orjson.dumps(self.as_dict(),
                            option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)


@dataclass
class _Replayed:
    """What replaying one stream gave, in the sample: the program's ledger lines and more."""

    lines: int
    types: Counter[str]
    limited: Counter[str]
    refused_by_budget: str | None
    entries: list[LedgerEntry]
    first: dt.date | None
    last: dt.date | None


def _replay(catalog: Catalog, program_id: str, events: Path,
            on_progress: Callable[[int], None] | None = None) -> _Replayed:
    """Replay ``events`` on a fresh in-memory store, watching ``program_id``'s claims;
    ``on_progress`` gets the bytes read after each batch."""
    sink = ListSink()
    engine = Engine(catalog, MemoryStore(sink))
    limited: Counter[str] = Counter()
    types: Counter[str] = Counter()
    refused: list[str] = []
    span: list[dt.datetime] = []

    def watch(decisions: list[Decision]) -> None:
        for decision in decisions:
            event = decision.event
            types[event.type] += 1
            if not span:
                span.extend((event.at, event.at))
            elif event.at < span[0]:
                span[0] = event.at
            elif event.at > span[1]:
                span[1] = event.at
            for outcome in decision.applied.outcomes:
                if outcome.program != program_id or outcome.limited_by is None:
                    continue
                limited[outcome.limited_by] += 1
                if outcome.limited_by in BUDGET_LABELS and not refused:
                    refused.append(_day(event.at))

    try:
        done = replay(events, engine, on_decisions=watch, on_progress=on_progress)
    finally:
        engine.close()
    return _Replayed(done.lines, types, limited, refused[0] if refused else None,
                     [e for e in sink.entries if e.program == program_id],
                     span[0].astimezone(JST).date() if span else None,
                     span[1].astimezone(JST).date() if span else None)


def _day(at: dt.datetime) -> str:
    return at.astimezone(JST).date().isoformat()


def _share(part: int, whole: int | None) -> float | None:
    return round(part / whole, 6) if whole else None


def _forecast(catalog: Catalog, program: Program, replayed: _Replayed, scale: Scale,
              period: tuple[dt.date, dt.date] | None) -> SimulationReport:
    """The report of ``replayed`` (the sample's), scaled up by ``scale``.

    The budget is the proposed program's own; the sample ran with it scaled down. ``period``
    is the stream's (the series span the program's days within it).
    """
    current = program.current
    budget_yen = current.budget.yen if current.budget else None
    budget_persons = current.budget.persons if current.budget else None
    sample_program = catalog.programs[program.id].current
    sample_budget = sample_program.budget.yen if sample_program.budget else None
    report = SimulationReport(
        program=program.id, name=current.name, jurisdiction=current.jurisdiction,
        type_letter=current.type_letter, versions=[v.label for v in program.versions],
        budget_yen=budget_yen, budget_persons=budget_persons, events=replayed.lines)
    report.trigger_events = {t: replayed.types[t] for t in sorted({t for v in program.versions
                                                                    for t in v.on})}
    per_provider: Counter[str] = Counter()
    per_person: Counter[tuple[str, str]] = Counter()
    per_net: Counter[str] = Counter()
    spent = 0
    spent_out: str | None = None
    for entry in replayed.entries:
        per_provider[entry.provider] += entry.points
        per_person[(entry.person, entry.provider)] += entry.points
        per_net[entry.person] += entry.points
        spent += entry.points
        if sample_budget is not None and spent_out is None and spent >= sample_budget:
            spent_out = entry_day(entry).isoformat()
    reached = sum(1 for points in per_net.values() if points > 0)
    persons_per_provider = Counter(provider for (_, provider), points in per_person.items()
                                   if points > 0)
    report.sample = {
        "persons_reached": reached, "points_total": spent,
        "points_per_provider": dict(sorted(per_provider.items())),
        "persons_per_provider": dict(sorted(persons_per_provider.items())),
        "budget_yen": sample_budget,
        "budget_persons": sample_program.budget.persons if sample_program.budget else None}
    most = persons_limit(current)
    report.persons_reached = clip(scale.up(reached), most)
    report.points_total = scale_spent(spent, scale, budget_yen, sample_budget)
    report.points_per_provider = share_out(report.points_total,
                                           dict(sorted(per_provider.items())))
    report.persons_per_provider = {p: clip(scale.up(n), most)
                                   for p, n in sorted(persons_per_provider.items())}
    names = {p.id: p.name for p in catalog.providers.values()}
    report.providers = [
        ProviderFigures(p, names.get(p, p), report.persons_per_provider.get(p, 0), points,
                        _share(points, report.points_total))
        for p, points in report.points_per_provider.items()]
    span = active_span(program)
    first: dt.date | None = None
    last: dt.date | None = None
    if period is not None:
        first, last = period
        if span is not None:
            first, last = max(first, span[0]), min(last, span[1])
        if last < first:
            first = last = None
    report.series = day_series(replayed.entries, first, last, scale, budget_yen,
                               budget_persons, sample_budget, most)
    report.points_per_day = {d: p for d, p in zip(report.series.days, report.series.points,
                                                  strict=True) if p}
    candidates = [d for d in (spent_out, replayed.refused_by_budget) if d is not None]
    report.budget_exhausted_on = min(candidates) if candidates else None
    report.limited = dict(replayed.limited.most_common())
    report.budget_share = _share(report.points_total, budget_yen)
    report.scale = {"population": scale.population, "sample": scale.sample,
                    "factor": scale.factor_text()}
    missing = [t for t, n in report.trigger_events.items() if n == 0]
    if missing:
        report.notices.append(text("w_no_trigger", types=", ".join(missing)))
    return report


def simulate(rulefile: Path, *, rules: Path | None = None, persons: int = 20_000,
             events: int = 100_000, seed: int = 2022, stream: Path | None = None,
             on_progress: OnProgress | None = None, console: Console | None = None,
             progress_every: float = DEFAULT_EVERY) -> SimulationReport:
    """Validate ``rulefile`` with the shipped catalog and forecast it.

    Without ``stream``, the program is forecast on a sample of the population it concerns
    (:func:`pointengine.replay.forecast.concerned`): ``persons`` persons (all of them when the
    population is smaller, with ``events`` cut in the same proportion) and ``events`` events,
    generated with ``seed``, scaled to the population's real size. With ``stream``, that
    JSON-lines file is replayed as it is, unscaled. ``rules`` is the shipped rules folder (by
    default ``rules/`` of the working directory, else the rules installed with the package:
    :func:`~pointengine.catalog.shipped.rules_folder`).

    ``on_progress(stage, done, total)`` is told how far the generation (``generate``, events)
    and the replay (``simulate``, bytes) got; with ``console`` (stderr) they also report there
    (:func:`pointengine.replay.progress.progress`). Raises :class:`RuleFileError` for an
    invalid file, :class:`UnreadableEvents` for a ``stream`` that cannot be read,
    :class:`OutputError` when the temporary copy of the rules or the stream cannot be written,
    and ``ValueError`` for arguments it refuses (fewer than 1 person or event, fewer events than
    the persons' own applications and registrations).
    """
    if stream is None:  # checked before the catalog is loaded: the answer does not depend on it
        if persons < 1:
            raise ValueError(f"persons: a population needs at least 1 person, got {persons}")
        if events < 1:
            raise ValueError(f"events: a stream needs at least 1 event, got {events}")
    catalog, program_id = load_with_proposal(rulefile, rules_folder(rules))
    warnings = [str(w) for w in catalog.warnings if w.file == str(rulefile)]
    program = catalog.programs[program_id]
    if stream is not None:
        replayed = _replay_with_progress(catalog, program_id, stream, console, progress_every,
                                         on_progress)
        period = (replayed.first, replayed.last) \
            if replayed.first is not None and replayed.last is not None else None
        report = _forecast(catalog, program, replayed, Scale(1, 1), period)
        report.stream = {"file": str(stream)}
        report.assumptions = [text("a_events_file", file=str(stream))]
    else:
        report = _simulate_sample(catalog, program, persons=persons, events=events, seed=seed,
                                  console=console, every=progress_every,
                                  on_progress=on_progress)
        period = SYNTHETIC_PERIOD
    if period is not None:
        report.stream_period = [period[0].isoformat(), period[1].isoformat()]
        report.notices[:0] = period_warnings(program, *period)
    report.warnings = warnings
    return report


def _simulate_sample(catalog: Catalog, program: Program, *, persons: int, events: int,
                     seed: int, console: Console | None, every: float,
                     on_progress: OnProgress | None) -> SimulationReport:
    """Generate a sample of the population ``program`` concerns, replay it, scale it up."""
    from pointengine.synth.generate import generate
    from pointengine.synth.population import load_population

    current = program.current
    who = concerned(current, load_population())
    sample = min(persons, who.population)
    # fewer persons than asked (a small town): the events per person stay as asked
    n_events = events if sample == persons else max(1, round(Fraction(events * sample,
                                                                       persons)))
    scale = Scale(who.population, sample)
    scaled = scaled_catalog(catalog, program.id, scale)
    jurisdiction = current.jurisdiction
    activities = activities_for(scaled.programs[program.id],
                                () if jurisdiction == "national" else (jurisdiction,))
    with scratch() as tmp:
        path = Path(tmp) / "events.jsonl"
        with _progress("generate", n_events, console, on_progress, every=every) as update:
            made = generate(path, persons=sample, events=n_events, seed=seed,
                            residents_of=who.residents_of, activities=activities,
                            progress=update)
        replayed = _replay_with_progress(scaled, program.id, path, console, every, on_progress)
    report = _forecast(scaled, program, replayed, scale, SYNTHETIC_PERIOD)
    report.population = who.population
    report.population_scope = who.scope
    report.population_area = who.area
    report.population_area_name = _place(who.area, "ja")
    report.reached_share = _share(report.persons_reached, who.population)
    report.stream = {"persons": sample, "events": n_events, "seed": seed,
                     "residents_of": list(who.residents_of), "appliers": made.appliers}
    if activities is not None:
        report.stream["activities"] = {
            "names": list(activities.names), "health_points": list(activities.health_points),
            "share_of_slots": activities.share, "active_residents": activities.active_share,
            "draws": [[p, at.isoformat()] for p, at in activities.draws]}
    residents = round(Fraction(sample * who.jurisdiction_population, who.population))
    report.assumptions = _assumptions(program, who, scale, persons=persons, events=n_events,
                                      appliers=made.appliers, seed=seed, residents=residents,
                                      activities=activities)
    if who.scope in ("residents_and_visitors", "anyone") and residents < FEW_RESIDENTS:
        report.notices.insert(0, text("w_few_residents", residents=f"{residents:,}",
                                      jurisdiction=place_name(jurisdiction)))
    return report


def _assumptions(program: Program, who: Concerned, scale: Scale, *, persons: int, events: int,
                 appliers: int, seed: int, residents: int,
                 activities: Activities | None) -> list[Text]:
    """Every assumption of a scaled forecast, in words (see :data:`forecast.TABLE`)."""
    sample = scale.sample
    factor = scale.factor_text()
    said = [text("a_sample", sample=f"{sample:,}", population=f"{who.population:,}",
                 area=who.area_name, factor=factor)]
    jurisdiction = place_name(program.current.jurisdiction)
    if who.scope == "residents":
        said.append(text("a_scope_residents", area=who.area_name))
    elif who.scope == "residents_and_visitors":
        said.append(text("a_scope_visitors", area=who.area_name, jurisdiction=jurisdiction,
                         residents=f"{residents:,}"))
    else:
        said.append(text(f"a_scope_{who.scope}"))
    if who.source == "sum":
        said.append(text("a_population_sum", population=f"{who.population:,}",
                         as_of=POPULATION_AS_OF))
    else:
        said.append(text(f"a_population_{who.source}", area=who.area_name,
                         population=f"{who.population:,}", as_of=POPULATION_AS_OF))
    if who.scope != "residents" and who.area != program.current.jurisdiction \
            and program.current.jurisdiction != "national":
        said.append(text(f"a_population_{who.jurisdiction_source}", area=jurisdiction,
                         population=f"{who.jurisdiction_population:,}",
                         as_of=POPULATION_AS_OF))
    said.append(text("a_rates", card_rate=percent(who.card_rate), area=who.area_name,
                      apply_rate=percent(who.apply_given_card)))
    if sample < persons:
        said.append(text("a_events_cut", persons=f"{persons:,}", sample=f"{sample:,}"))
    said.append(text("a_events", events=f"{events:,}", per_person=f"{events / sample:,.1f}",
                     per_applier=f"{events / appliers:,.1f}" if appliers else "-",
                     appliers=f"{appliers:,}"))
    said.append(text("a_stream_period", first=SYNTHETIC_PERIOD[0].isoformat(),
                     last=SYNTHETIC_PERIOD[1].isoformat()))
    said.extend(activity_assumptions(activities))
    said.append(text("a_seed", seed=seed))
    said.extend(scaling_assumptions(program, scale))
    said.append(text("a_rounding", factor=factor))
    return said


def _replay_with_progress(catalog: Catalog, program_id: str, events: Path,
                          console: Console | None, every: float,
                          on_progress: OnProgress | None) -> _Replayed:
    try:
        size: int | None = events.stat().st_size
    except OSError:
        size = None  # the replay says why it cannot read the file
    with _progress("simulate", size, console, on_progress, unit="MB", scale=MEGABYTE,
                   every=every, bar=size is not None and size >= 5_000_000) as update:
        return _replay(catalog, program_id, events, lambda done: update(done, None))


@contextlib.contextmanager
def _progress(label: str, total: int | None, console: Console | None,
              on_progress: OnProgress | None, **options: Any) -> Iterator[Update]:
    """:func:`progress` to ``console`` (nothing without one), and ``on_progress`` told too."""
    shown = contextlib.nullcontext(_ignore) if console is None \
        else progress(label, total, console, **options)
    known = [total]
    with shown as update:
        def both(done: int, new_total: int | None = None) -> None:
            if new_total is not None:
                known[0] = new_total
            update(done, new_total)
            if on_progress is not None:
                on_progress(label, done, known[0])

        yield both


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


# --- printing and CSV ----------------------------------------------------------------------


def _say(lang: Lang, code: str, **args: object) -> str:
    return render(text(code, **args), lang)


def _place(code: str, lang: Lang) -> str:
    name = place_name(code)
    return name if isinstance(name, str) else render(name, lang)


def _limit_label(label: str, lang: Lang) -> str:
    """An engine's cap label (English) in ``lang``."""
    known = {"person cap": "limit_person_cap", "program budget": "limit_budget",
             "program budget in persons": "limit_budget_persons"}
    if label in known:
        return _say(lang, known[label])
    if label.startswith("person cap per "):
        return _say(lang, "limit_person_cap_per", per=label.removeprefix("person cap per "))
    if label.endswith(" total per person"):
        return _say(lang, "limit_group", group=label.removesuffix(" total per person"))
    if label.endswith("'s allocation of persons"):
        return _say(lang, "limit_allocation",
                    provider=label.removesuffix("'s allocation of persons"))
    return label


def _budget_text(report: SimulationReport, lang: Lang) -> str:
    parts = []
    if report.budget_yen is not None:
        parts.append(_say(lang, "budget_yen", yen=f"{report.budget_yen:,}"))
    if report.budget_persons is not None:
        parts.append(_say(lang, "budget_persons", persons=f"{report.budget_persons:,}"))
    return _say(lang, "and").join(parts) or _say(lang, "none")


def _ratio(share: float | None) -> Fraction | None:
    return None if share is None else Fraction(share).limit_denominator(10**6)


def _figures(report: SimulationReport, lang: Lang) -> list[tuple[str, str]]:
    """The summary's rows: (figure, value), in ``lang``."""
    rows: list[tuple[str, str]] = []
    if report.population is not None:
        rows.append((_say(lang, "population_concerned"),
                     _say(lang, "population_value", population=f"{report.population:,}",
                          area=_place(report.population_area, lang))))
        rows.append((_say(lang, "sample"), f"{report.scale['sample']:,}"))
        rows.append((_say(lang, "scale_factor"),
                     _say(lang, "scale_value", factor=report.scale["factor"])))
        rows.append((_say(lang, "persons_reached"),
                     _say(lang, "reached_value", persons=f"{report.persons_reached:,}",
                          share=percent(_ratio(report.reached_share)))))
    else:
        rows.append((_say(lang, "persons_reached"), f"{report.persons_reached:,}"))
    points = f"{report.points_total:,}"
    if report.budget_share is not None:
        points = _say(lang, "points_value", points=points,
                      share=percent(_ratio(report.budget_share)))
    rows.append((_say(lang, "points_paid"), points))
    rows.append((_say(lang, "budget"), _budget_text(report, lang)))
    has_budget = report.budget_yen is not None or report.budget_persons is not None
    rows.append((_say(lang, "runs_out"), report.budget_exhausted_on
                 or (_say(lang, "does_not_run_out") if has_budget else "-")))
    for label, count in report.limited.items():
        rows.append((_say(lang, "limited", label=_limit_label(label, lang)), f"{count:,}"))
    return rows


def print_report(report: SimulationReport, console: Console, lang: Lang = "en") -> None:
    """The report as rich tables, then its assumptions and warnings, in ``lang``."""
    head = Table(_say(lang, "col_program"), _say(lang, "col_jurisdiction"),
                 _say(lang, "col_type"), _say(lang, "col_versions"),
                 title=_say(lang, "title_program"))
    place = report.jurisdiction if report.jurisdiction == "national" \
        else f"{report.jurisdiction}\n{_place(report.jurisdiction, lang)}"
    head.add_row(f"{report.program}\n{report.name}", place, report.type_letter,
                 ", ".join(report.versions))
    console.print(head)
    summary = Table(_say(lang, "col_figure"), _say(lang, "col_value"),
                    title=_say(lang, "title_summary", events=f"{report.events:,}"))
    for figure, value in _figures(report, lang):
        summary.add_row(figure, value)
    console.print(summary)
    providers = Table(_say(lang, "col_provider"), _say(lang, "col_persons"),
                      _say(lang, "col_points"), _say(lang, "col_share"),
                      title=_say(lang, "title_providers"))
    for row in report.providers:
        providers.add_row(row.provider, f"{row.persons:,}", f"{row.points:,}",
                          percent(_ratio(row.share)))
    providers.add_row(_say(lang, "total"), f"{report.persons_reached:,}",
                      f"{report.points_total:,}", "", style="bold")
    console.print(providers)
    days = report.points_per_day
    monthly = len(days) > 31
    if not monthly:
        table = Table(_say(lang, "col_day"), _say(lang, "col_points"),
                      title=_say(lang, "title_days"))
        for day, points in days.items():
            table.add_row(day, f"{points:,}")
    else:
        table = Table(_say(lang, "col_month"), _say(lang, "col_points"),
                      _say(lang, "col_days_with_awards"), title=_say(lang, "title_months"))
        months: Counter[str] = Counter()
        active: Counter[str] = Counter()
        for day, points in days.items():
            months[day[:7]] += points
            active[day[:7]] += 1
        for month, points in sorted(months.items()):
            table.add_row(month, f"{points:,}", str(active[month]))
    console.print(table)
    console.print(_say(lang, "title_assumptions"), style="bold")
    for item in report.assumptions:
        console.print(f"- {render(item, lang)}", markup=False, highlight=False,
                      soft_wrap=True)
    for item in report.notices:
        console.print(_say(lang, "warning", text=render(item, lang)), markup=False,
                      highlight=False, soft_wrap=True)
    for warning in report.warnings:
        console.print(warning, markup=False, highlight=False, soft_wrap=True)


def report_csv(report: SimulationReport, lang: Lang) -> dict[str, bytes]:
    """``days.csv``, ``providers.csv`` and ``summary.csv`` of ``report``, headers in ``lang``
    (UTF-8 with a byte-order mark)."""
    series = report.series
    head = [_say(lang, "col_day"), _say(lang, "col_points"), _say(lang, "col_cumulative")]
    columns: list[list[Any]] = [series.days, series.points, series.cumulative_points]
    if series.budget_left is not None:
        head.append(_say(lang, "col_budget_left"))
        columns.append(series.budget_left)
    head.append(_say(lang, "col_persons_reached"))
    columns.append(series.persons_reached)
    if series.budget_persons_left is not None:
        head.append(_say(lang, "col_budget_persons_left"))
        columns.append(series.budget_persons_left)
    days = csv_bytes([head, *zip(*columns, strict=True)])
    providers = csv_bytes([
        [_say(lang, "col_provider"), _say(lang, "col_provider_name"), _say(lang, "col_persons"),
         _say(lang, "col_points"), _say(lang, "col_share")],
        *([p.provider, p.name, p.persons, p.points, "" if p.share is None else p.share]
          for p in report.providers),
        [_say(lang, "total"), "", report.persons_reached, report.points_total, ""]])
    rows: list[list[Any]] = [
        [_say(lang, "col_figure"), _say(lang, "col_value")],
        [_say(lang, "col_program"), report.program],
        [_say(lang, "row_program_name"), report.name],
        [_say(lang, "col_jurisdiction"), report.jurisdiction],
        [_say(lang, "col_type"), report.type_letter],
        [_say(lang, "col_versions"), ", ".join(report.versions)],
        *([figure, value] for figure, value in _figures(report, lang)),
    ]
    if report.sample.get("budget_yen") is not None and report.population is not None:
        rows.append([_say(lang, "row_sample_budget"), report.sample["budget_yen"]])
    rows += [[_say(lang, "row_assumption"), render(t, lang)] for t in report.assumptions]
    rows += [[_say(lang, "row_warning"), render(t, lang)] for t in report.notices]
    rows += [[_say(lang, "row_warning"), w] for w in report.warnings]
    return {"days.csv": days, "providers.csv": providers, "summary.csv": csv_bytes(rows)}


def write_csv(report: SimulationReport, folder: Path, lang: Lang) -> list[Path]:
    """Write :func:`report_csv` into ``folder``, all three whole or none
    (:class:`OutputError` naming the file that failed)."""
    return write_all(folder, report_csv(report, lang))


class Language(enum.StrEnum):
    """The languages of the printout."""

    ja = "ja"
    en = "en"


def simulate_command(
    rulefile: Annotated[Path, typer.Argument(help="the proposed program file")],
    rules: Annotated[Path | None, typer.Option(
        "--rules", help="the shipped rules folder",
        show_default="rules/ if the working directory has one, else the shipped rules")]
    = None,
    persons: Annotated[int, typer.Option(
        min=1, help="persons in the simulated sample (all of the population concerned when "
        "it is smaller); the figures are scaled to its real size")] = 20_000,
    events: Annotated[int, typer.Option(
        min=1, help="events in the synthetic stream of the sample")] = 100_000,
    seed: Annotated[int, typer.Option(help="generator seed")] = 2022,
    stream: Annotated[Path | None, typer.Option(
        "--events-file", help="replay this JSON-lines stream as it is (unscaled) instead of "
        "generating one")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    csv_folder: Annotated[Path | None, typer.Option(
        "--csv", metavar="FOLDER", help="also write days.csv, providers.csv and summary.csv "
        "there (UTF-8 with BOM, headers in --lang)")] = None,
    lang: Annotated[Language | None, typer.Option(
        "--lang", help="language of the printout and the CSV headers",
        show_default="en, or ja when POINTENGINE_LANG or LANG says so")] = None,
    progress_every: ProgressEvery = DEFAULT_EVERY,
) -> None:
    """Forecast a proposed program on a population scaled to its real size: reach, points,
    budget burn-down and run-out day, per provider and per day, with the assumptions."""
    err = Console(stderr=True)
    language: Lang = "ja" if (lang or lang_from_env()) == "ja" else "en"
    try:
        report = simulate(rulefile, rules=rules, persons=persons, events=events, seed=seed,
                          stream=stream, console=Console(stderr=True, soft_wrap=True),
                          progress_every=progress_every)
        written = write_csv(report, csv_folder, language) if csv_folder is not None else []
    except RuleFileError as exc:
        for problem in exc.problems:
            err.print(str(problem), markup=False, highlight=False, soft_wrap=True)
        err.print(f"[red]{len(exc.problems)} problem(s); nothing was simulated[/red]")
        raise typer.Exit(1) from None
    except UnreadableEvents as exc:
        err.print(f"simulate: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except OutputError as exc:  # the temporary copy of the rules, the stream, or the CSV
        err.print(f"simulate: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if as_json:
        typer.echo(report.to_json().decode(), nl=False)
    else:
        print_report(report, Console(), language)
    if written:
        err.print(_say(language, "csv_written", files=", ".join(p.name for p in written),
                       folder=str(csv_folder)), markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``simulate`` to the ``pointengine`` command."""
    app.command("simulate")(simulate_command)

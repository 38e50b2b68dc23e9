"""The ``pointengine`` command: validate rules, replay events, explain a person, run the demo."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Annotated, NoReturn

import orjson
import typer
from rich.console import Console
from rich.table import Table

from pointengine.catalog.loading import Catalog, Program, load_catalog
from pointengine.catalog.schema import SCHEMA_TEXTS, first_lines, write_schemas
from pointengine.catalog.shipped import rules_folder
from pointengine.cli.compare import register as register_compare
from pointengine.cli.console import register as register_console
from pointengine.cli.explain import register as register_explain
from pointengine.cli.generate import register as register_generate
from pointengine.cli.service import Prefix
from pointengine.cli.service import register as register_service_commands
from pointengine.decide.engine import Engine
from pointengine.decide.reload import CatalogWatcher, ReloadResult
from pointengine.errors import OperationalError, OutputError, RuleFileError, UnreadableEvents
from pointengine.i18n import Text, lang_from_env, lang_of, say
from pointengine.model.ledger import FileSink
from pointengine.model.output import cut_back, length_of, make_folder, write_whole
from pointengine.replay import checkpoint
from pointengine.replay.progress import DEFAULT_EVERY, MEGABYTE, ProgressEvery, progress
from pointengine.replay.run import START, Position, ReplayReport, open_events, replay
from pointengine.replay.simulate import register as register_simulate
from pointengine.store.contract import Store
from pointengine.store.memory import MemoryStore

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Mynapoint and municipal point programs as declarative rules.")
console = Console(soft_wrap=True)  # problem and explain lines stay whole for grep
err = Console(stderr=True, soft_wrap=True)
RULES_DEFAULT = "rules/ if the working directory has one, else the shipped rules"
RulesOption = Annotated[Path | None, typer.Option(
    "--rules", help="the rules folder", show_default=RULES_DEFAULT)]
ENV_REDIS_URL = "POINTENGINE_REDIS_URL"


def _version(asked: bool) -> None:
    if asked:
        typer.echo(f"pointengine {package_version()}")
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True,
        help="print the version and exit")] = False) -> None:
    # the options every command shares; the commands themselves are registered below
    pass


def package_version() -> str:
    """The installed package's version (``unknown`` when run from a tree not installed)."""
    try:
        return metadata.version("pointengine")
    except metadata.PackageNotFoundError:
        return "unknown"


def _catalog(rules: Path) -> Catalog:
    try:
        catalog = load_catalog(rules)
    except RuleFileError as exc:
        for problem in exc.problems:
            err.print(str(problem), markup=False, highlight=False)
        err.print(f"[red]{len(exc.problems)} problem(s) in {rules}[/red]")
        raise typer.Exit(1) from None
    for warning in catalog.warnings:
        err.print(str(warning), markup=False, highlight=False)
    return catalog


@app.command()
def validate(
    rules: Annotated[Path | None, typer.Argument(
        metavar="[PATH]", help="the rules folder, or one program file: checked with the rules "
        "folder it is in, or else (a draft) with --rules", show_default=RULES_DEFAULT)] = None,
    with_rules: Annotated[Path | None, typer.Option(
        "--rules", help="the rules folder to check a file outside any rules folder with",
        show_default=RULES_DEFAULT)] = None,
    lang: Annotated[str | None, typer.Option(
        help="ja or en (default: POINTENGINE_LANG or LANG, else en)")] = None,
) -> None:
    """Check every rule file, or one; print every problem at once as file:line: field: message.

    Exit status 1 when a file checked has an error. For one file (a program file, or the
    provider list ``providers.yaml``) or a folder inside a rules folder, the other files'
    problems are counted, not listed, and do not fail it. Exit status 2 for a path that does
    not exist.
    """
    # the catalog's words and checks, imported here: this command alone uses them
    from rich.markup import escape

    from pointengine.catalog.drafts import catalog_of, check_rule_file
    from pointengine.catalog.loading import check_catalog
    from pointengine.catalog.messages import render
    from pointengine.errors import Problem
    from pointengine.i18n import Text, lang_from_env, lang_of

    chosen = lang_of(lang) if lang is not None else lang_from_env()
    if chosen is None:
        raise typer.BadParameter(f"{lang!r}: give ja or en", param_hint="--lang")

    def words(code: str, **args: object) -> str:
        return render(Text(code, args), chosen)

    def show(problems: list[Problem]) -> None:
        for problem in problems:
            err.print(problem.describe(chosen), markup=False, highlight=False)

    def table_of(programs: list[Program]) -> Table:
        table = Table(*(words(f"validate.head.{name}")
                        for name in ("program", "jurisdiction", "type", "versions", "on")))
        for program in programs:
            current = program.current
            table.add_row(program.id, current.jurisdiction, current.type_letter,
                          str(len(program.versions)), ", ".join(current.on))
        return table

    def others(rules: Path, count: int) -> None:
        if count:
            err.print(words("validate.others", rules=rules, count=count), markup=False,
                      highlight=False)

    def failed(count: int, where: Path) -> NoReturn:
        err.print(f"[red]{escape(words('validate.problems', count=count, rules=where))}[/red]")
        raise typer.Exit(1)

    for given in (rules, with_rules):
        # a typo is said as one, not as a rules folder without its provider list
        if given is not None and not given.exists():
            err.print(words("validate.no_path", path=given), markup=False, highlight=False)
            raise typer.Exit(2)
    if rules is not None and rules.is_file():
        checked = check_rule_file(rules, rules=with_rules)
        if checked.provider_list:
            show(checked.problems)
            others(rules.parent, len(checked.elsewhere))
            if checked.errors or checked.catalog is None:
                failed(max(len(checked.errors), 1), rules)
            console.print(words("validate.providers_valid", file=rules,
                                providers=len(checked.catalog.providers),
                                warnings=len(checked.problems)), markup=False, highlight=False)
            return
        if not checked.in_catalog:
            err.print(words("validate.as_draft", file=rules, rules=checked.rules), markup=False,
                      highlight=False)
        show(checked.problems)
        if checked.elsewhere:
            err.print(words("validate.others", rules=checked.rules, count=len(checked.elsewhere)),
                      markup=False, highlight=False)
        program = checked.program
        if checked.errors or program is None:
            count = max(len(checked.errors), 1)
            err.print(f"[red]{escape(words('validate.problems', count=count, rules=rules))}[/red]")
            raise typer.Exit(1)
        console.print(words("validate.file_valid", file=rules, program=program.id,
                            jurisdiction=program.current.jurisdiction,
                            type=program.current.type_letter, versions=len(program.versions),
                            warnings=len(checked.problems)), markup=False, highlight=False)
        return
    folder = rules_folder(rules or with_rules)
    root = catalog_of(folder) if not (folder / "providers.yaml").is_file() else None
    if root is not None:  # a folder inside a rules folder: its files, checked with the rest
        found = check_catalog(root)
        inside = folder.resolve()

        def mine(file: str | Path) -> bool:
            return Path(file).resolve().is_relative_to(inside)

        errors = [p for p in found.problems if mine(p.file)]
        warnings = [w for w in found.catalog.warnings if mine(w.file)]
        show(sorted([*errors, *warnings], key=lambda p: (p.file, p.line)))
        others(root, len(found.problems) - len(errors))
        if errors:
            failed(len(errors), folder)
        programs = [p for p in found.catalog.programs.values() if mine(p.path)]
        console.print(table_of(programs))
        console.print(words("validate.folder_valid", folder=folder, programs=len(programs),
                            warnings=len(warnings)), markup=False, highlight=False)
        return
    found = check_catalog(folder)
    if found.problems:
        show(found.problems)
        said = words("validate.problems", count=len(found.problems), rules=folder)
        err.print(f"[red]{escape(said)}[/red]")
        raise typer.Exit(1)
    catalog = found.catalog
    show(catalog.warnings)
    console.print(table_of(list(catalog.programs.values())))
    console.print(words("validate.valid", programs=len(catalog.programs),
                        providers=len(catalog.providers), warnings=len(catalog.warnings)))


@app.command()
def schema(out: Annotated[Path, typer.Argument(help="folder to write the schemas to")]
           = Path("rules/schema"),
           lang: Annotated[str | None, typer.Option(
               help="ja or en (default: POINTENGINE_LANG or LANG, else en)")] = None) -> None:
    """Write JSON Schemas of program files and the provider list, for editors."""
    chosen = lang_of(lang) if lang is not None else lang_from_env()
    if chosen is None:
        raise typer.BadParameter(f"{lang!r}: give ja or en", param_hint="--lang")
    try:
        for path in write_schemas(out):
            console.print(say(SCHEMA_TEXTS, Text("schema.wrote", {"path": path}), chosen),
                          markup=False, highlight=False)
    except OutputError as exc:
        _cannot_write(str(exc))
    for line in first_lines(out):
        console.print(say(SCHEMA_TEXTS, line, chosen), markup=False, highlight=False)


@app.command("replay")
def replay_command(
    ctx: typer.Context,
    events: Annotated[Path, typer.Argument(help="JSON-lines file of canonical events")],
    rules: RulesOption = None,
    out: Annotated[Path, typer.Option(help="folder for ledger, rejects, summary, state")]
    = Path("out"),
    fresh: Annotated[bool, typer.Option(
        help="start over: delete the state, ledger and rejects in --out")] = False,
    redis_url: Annotated[str | None, typer.Option(
        "--redis-url", "--redis", envvar=ENV_REDIS_URL,
        help="keep state and ledger in Redis (redis://host:port/db) instead of the embedded "
        "store (--redis: its former name)")] = None,
    exclusive: Annotated[bool, typer.Option(
        help="with --redis-url: hold the store alone under a lease while the replay runs, apply "
        "in memory and write each batch back (several times faster; workers' batches are "
        "refused until it ends)")] = False,
    watch: Annotated[bool, typer.Option(
        help="reload changed rule files between batches")] = False,
    checkpoint_every: Annotated[float | None, typer.Option(
        help="seconds between checkpoints of the embedded state (at batch boundaries) "
        "[default: 300]", show_default=False)] = None,
    from_start: Annotated[bool, typer.Option(
        help="read the file from its first line even if a checkpoint says how far it got")]
    = False,
    progress_every: ProgressEvery = DEFAULT_EVERY,
    prefix: Prefix = "pe:",
) -> None:
    """Evaluate a stream; append to the ledger; write rejects and a summary.

    Ctrl-C stops the replay after the current batch and saves the state; replaying the same
    file again continues after the last line it got to (events already applied would only
    count as duplicates). Output that cannot be written (a full disk, a read-only folder) stops
    it with one line naming the file and the cause, and exit status 1; the ledger and the
    rejects are cut back to the last checkpoint, so replaying again continues from there.
    """
    _check_readable(events)
    if exclusive and redis_url is None:
        err.print("--exclusive: only with --redis-url (the embedded store is exclusive already)",
                  markup=False, highlight=False)
        raise typer.Exit(2)
    if redis_url is not None:
        embedded_only = [name for name, given in (
            ("--fresh", fresh), ("--from-start", from_start),
            ("--checkpoint-every", checkpoint_every is not None)) if given]
        if embedded_only:
            err.print(f"{', '.join(embedded_only)}: only for the embedded store's files in "
                      f"--out; with {_redis_named(ctx)} the state lives in Redis, where events "
                      "already applied count as duplicates (to start over, use an empty "
                      "database)", markup=False, highlight=False)
            raise typer.Exit(2)
        if _redis_named(ctx) == ENV_REDIS_URL:
            # an exported variable must not turn a replay meant for files into one on a
            # shared store unnoticed
            err.print(f"replaying on the Redis store {ENV_REDIS_URL} names (unset it to "
                      "replay on the embedded store)", markup=False, highlight=False)
    rules = rules_folder(rules)
    catalog = _catalog(rules)
    try:
        make_folder(out)
    except OutputError as exc:
        _cannot_write(str(exc))
    if redis_url is not None:
        _replay_on_redis(events, catalog, redis_url, out, rules if watch else None,
                         exclusive=exclusive, every=progress_every, prefix=prefix)
        return
    state, ledger, rejects = out / "state.pickle", out / "ledger.jsonl", out / "rejects.jsonl"
    # what a failure cuts the ledger and the rejects back to, once the run has begun: their
    # lengths at the last checkpoint, or when the run began
    kept: list[checkpoint.Kept] = []
    try:
        if fresh:
            for old in (state, ledger, rejects):
                cut_back(old, None)
        elif ledger.exists() and not state.exists():
            err.print(f"{ledger} exists but {state} does not: the ledger cannot be continued "
                      "without the state that produced it; use --fresh to start over")
            raise typer.Exit(2)
        start = START
        store = MemoryStore()
        if state.exists():
            restored = _restore(state, ledger)
            store = restored.store
            if not from_start:
                start = checkpoint.resume_at(events, restored.progress, rejects)
                if start.line:
                    err.print(f"continuing {events} after line {start.line:,} (the "
                              "checkpoint's); --from-start reads it all again", markup=False,
                              highlight=False)
        kept.append(checkpoint.Kept.now(ledger, rejects))
        sink = FileSink(ledger)
        store.sink = sink
        engine = Engine(catalog, store)
        watcher = CatalogWatcher(rules, engine, on_result=_log_reload) if watch else None
        saved_at = [time.monotonic()]
        every = 300.0 if checkpoint_every is None else checkpoint_every

        def save(position: Position) -> None:
            size = rejects.stat().st_size if rejects.exists() else 0
            record = checkpoint.progress_record(events, position, size)
            checkpoint.save(state, store, sink, record)
            kept[0] = checkpoint.Kept.now(ledger, rejects)
            saved_at[0] = time.monotonic()

        def at_position(position: Position) -> None:
            if time.monotonic() - saved_at[0] >= every:
                save(position)

        try:
            with _stop_on_interrupt() as stop:
                report = _replay_with_progress(
                    events, engine, rejects, watcher.after_batch if watcher else None, stop,
                    start=start, on_position=at_position, every=progress_every)
            save(report.position)
        except OutputError:
            sink.abandon()
            raise
        except BaseException:
            sink.close()
            raise
        finally:
            engine.close()
        sink.close()
    except OutputError as exc:
        _cannot_write(_after_failure(exc, kept[0] if kept else None, state, events))
    try:
        _write_summary(report, out / "summary.json")
    except OutputError as exc:
        saved = (f"saved up to line {report.position.line:,}: replay {events} again to "
                 "continue" if report.stopped_early else "saved: the replay is complete")
        _cannot_write(f"{exc}; the ledger, the rejects and the state are {saved}")
    _print_report(report, out)
    if report.stopped_early:
        err.print(f"interrupted after line {report.position.line:,}: the state is saved in "
                  f"{state}; replay {events} again to continue from there")
        raise typer.Exit(130)


def _redis_named(ctx: typer.Context) -> str:
    """How the command of ``ctx`` was given its Redis URL: ``--redis-url``, or the variable."""
    source = ctx.get_parameter_source("redis_url")
    return ENV_REDIS_URL if source is not None and source.name == "ENVIRONMENT" else \
        "--redis-url"


def _cannot_write(message: str) -> NoReturn:
    """Say in one line what could not be written and why; exit status 1."""
    err.print(message, markup=False, highlight=False)
    raise typer.Exit(1)


def _after_failure(exc: OutputError, kept: checkpoint.Kept | None, state: Path,
                   events: Path) -> str:
    """Cut a failed replay's ledger and rejects back to what its last checkpoint recorded (or
    remove them, without one), as the next run would; one line saying what happened."""
    if kept is None:  # it failed before writing anything
        return f"{exc}; nothing was written"
    uncut = kept.cut_back()
    if state.exists():
        where = f"the checkpoint in {state}"
        if uncut is not None:
            return (f"{exc}; and {uncut}: the next replay of {events} cuts it back to {where} "
                    "and continues from it")
        return (f"{exc}; {kept.ledger} and {kept.rejects} are cut back to {where}: replay "
                f"{events} again to continue from it")
    if uncut is not None:
        return f"{exc}; and {uncut}: replay {events} again with --fresh to start over"
    return f"{exc}; nothing this run wrote is kept: replay {events} again to start over"


def _check_readable(events: Path) -> None:
    """One line and exit status 2, before anything is created, when ``events`` is unreadable."""
    try:
        open_events(events).close()
    except UnreadableEvents as exc:
        err.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(2) from None


@contextlib.contextmanager
def _stop_on_interrupt() -> Iterator[Callable[[], bool]]:
    """The first Ctrl-C asks the replay to stop after its batch; a second one stops at once."""
    asked = [False]

    def handler(signum: int, frame: object) -> None:
        if asked[0]:
            raise KeyboardInterrupt
        asked[0] = True
        err.print("stopping after this batch (Ctrl-C again to stop at once, without saving)")

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: leave Ctrl-C alone
        yield lambda: False
        return
    try:
        yield lambda: asked[0]
    finally:
        signal.signal(signal.SIGINT, previous)


def _replay_on_redis(events: Path, catalog: Catalog, url: str, out: Path,
                     watch: Path | None, *, exclusive: bool, every: float,
                     prefix: str) -> None:
    import redis

    from pointengine.store.generation import Generation
    from pointengine.store.redis_store import RedisStore
    from pointengine.store.writeback import WriteBackStore

    client = redis.Redis.from_url(url)
    # As the workers do: nothing is applied onto a store that lost its state. The shared
    # store checks the marker in its script; an exclusive replay holds the lease, which a
    # flush deletes, and stops when it finds it gone.
    generation = Generation(client, prefix)
    store = RedisStore(client, prefix=prefix, generation=generation)
    try:
        generation.check()
        working: Store = WriteBackStore(store) if exclusive else store
    except (OperationalError, redis.RedisError) as exc:
        store.close()
        err.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(1) from None
    engine = Engine(catalog, working)
    watcher = CatalogWatcher(watch, engine, on_result=_log_reload) if watch else None
    rejects = out / "rejects.jsonl"
    began = length_of(rejects)
    failure: Exception | None = None
    try:
        report = _replay_with_progress(events, engine, rejects,
                                       watcher.after_batch if watcher else None, every=every)
    except OutputError as exc:
        try:
            cut_back(rejects, began)
        except OutputError as uncut:
            _cannot_write(f"{exc}; and {uncut}")
        # a new run reads the file from its start again and writes its bad lines again
        _cannot_write(f"{exc}; {rejects} is cut back to where this run began: replay {events} "
                      "again (the events already applied count as duplicates)")
    except (OperationalError, redis.RedisError) as exc:  # Redis failed, or lost the state
        failure = exc
    finally:
        engine.close()
        try:
            working.close()
        except (OperationalError, redis.RedisError) as exc:
            failure = failure or exc
    if failure is not None:
        # a flush mid-run shows as a lost lease: the marker tells every process what it was
        with contextlib.suppress(OperationalError, redis.RedisError):
            generation.check()
        err.print(f"{failure}; what was applied before stays in Redis", markup=False,
                  highlight=False)
        raise typer.Exit(1)
    try:
        _write_summary(report, out / "summary.json")
    except OutputError as exc:
        _cannot_write(f"{exc}; the replay is complete")
    _print_report(report, out, ledger=f"{url} stream {store.keys.ledger}")


def _restore(state: Path, ledger: Path) -> checkpoint.Restored:
    try:
        restored = checkpoint.restore(state, ledger)
    except checkpoint.CheckpointError as exc:
        err.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(2) from None
    if restored.dropped_lines:
        err.print(f"{ledger}: cut {restored.dropped_lines:,} line(s) written after the last "
                  f"checkpoint; their events are applied again", markup=False)
    return restored


def _log_reload(result: ReloadResult) -> None:
    for line in result.lines():
        err.print(line, markup=False, highlight=False, soft_wrap=True)


def _replay_with_progress(events: Path, engine: Engine, rejects: Path,
                          after_batch: Callable[[], None] | None = None,
                          should_stop: Callable[[], bool] | None = None, *,
                          start: Position = START,
                          on_position: Callable[[Position], None] | None = None,
                          every: float = DEFAULT_EVERY) -> ReplayReport:
    size = events.stat().st_size
    with progress("replay", size, err, unit="MB", scale=MEGABYTE, every=every,
                  start=start.offset, bar=size >= 5_000_000) as update:
        return replay(events, engine, rejects=rejects,
                      on_progress=lambda done: update(done, None),
                      after_batch=after_batch, should_stop=should_stop, start=start,
                      on_position=on_position)


def _write_summary(report: ReplayReport, path: Path) -> None:
    """Write the summary whole, or raise OutputError and leave none."""
    summary = {
        "lines": report.lines, "applied": report.applied, "duplicates": report.duplicates,
        "rejected": report.rejected, "reasons": dict(report.reasons),
        "seconds": round(report.seconds, 3),
        "points_per_program": report.per_program(),
        "points_per_provider": report.per_provider(),
        "points_total": sum(report.totals.values()),
    }
    write_whole(path, orjson.dumps(summary, option=orjson.OPT_INDENT_2))


def _print_report(report: ReplayReport, out: Path, ledger: str | None = None) -> None:
    console.print(f"{report.lines:,} lines: {report.applied:,} applied, "
                  f"{report.duplicates:,} duplicates, {report.rejected:,} rejected "
                  f"in {report.seconds:.1f} s ({report.events_per_second:,.0f} events/s)")
    if report.reasons:
        console.print("rejected: " + ", ".join(f"{k} {v:,}" for k, v in
                                                report.reasons.most_common()))
    for title, rows in (("program", report.per_program()), ("provider", report.per_provider())):
        table = Table(title, "points (yen)")
        for name, points in rows.items():
            table.add_row(name, f"{points:,}")
        table.add_row("total", f"{sum(rows.values()):,}", style="bold")
        console.print(table)
    console.print(f"ledger: {ledger or out / 'ledger.jsonl'}  rejects: {out / 'rejects.jsonl'}  "
                  f"summary: {out / 'summary.json'}")


@app.command()
def demo(
    ctx: typer.Context,
    persons: Annotated[int, typer.Option(help="persons in the generated population")] = 20_000,
    events: Annotated[int, typer.Option(help="events in the generated stream")] = 200_000,
    seed: Annotated[int, typer.Option(help="generator seed")] = 2022,
    rules: RulesOption = None,
    out: Annotated[Path, typer.Option(help="output folder")] = Path("out/demo"),
    progress_every: ProgressEvery = DEFAULT_EVERY,
) -> None:
    """The main job on the embedded store: generate a stream, replay it, print the awards."""
    from pointengine.synth.generate import generate

    stream = out / f"events-{persons}-{events}-{seed}.jsonl"
    if not stream.exists():  # a stream is written whole or not at all: one that exists is whole
        console.print(f"generating {events:,} events over {persons:,} persons -> {stream}")
        try:
            with progress("generate", events, err, every=progress_every) as update:
                generate(stream, persons=persons, events=events, seed=seed, progress=update)
        except OutputError as exc:
            _cannot_write(str(exc))
    replay_command(ctx, stream, rules=rules, out=out, fresh=True,
                   progress_every=progress_every)


register_service_commands(app)
register_simulate(app)
register_explain(app)
register_compare(app)
register_generate(app)
register_console(app)


if __name__ == "__main__":  # pragma: no cover
    app()

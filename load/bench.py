"""The replay benchmark: one stream, the engine and its two baselines, in the same run.

``python -m load.bench --persons 100000 --events 1000000 --seed 1 [--check] [--redis]``
(also ``pointengine bench ...``) generates the event stream, or reuses the cached file of the
same persons, events, seed and mixes, then measures, one after the other on the same file:

1. **floor**: orjson-decode each line and add up the amounts (no validation, no rules);
2. **post()**: a straightforward use of durable_rules' Python API on the same rules
   (:class:`pointengine.decide.matching.PostRuleset`: one ``durable.lang`` ruleset per program
   version, one ``post()`` per event and candidate program), with pydantic parsing, persons
   kept in a dict and caps applied in plain Python; by default on the first 50,000 events only,
   because it is slow (the output says so);
3. **engine**: :func:`pointengine.replay.run.replay` on the embedded :class:`MemoryStore` with a
   ledger file; events/s, latency per batch (p50, p99: reading, parsing and deciding one batch),
   rejects by reason;
4. optionally, against a throw-away ``redis-server`` and on a sample (``--redis-events``):
   **redis exclusive**, the same replay held alone under the store's lease and written back
   after each batch (:class:`~pointengine.store.writeback.WriteBackStore`, ``pointengine replay
   --redis URL --exclusive``), and **redis**, the same replay on the shared
   :class:`RedisStore`, whose script decides each intent as workers do. The exclusive run
   follows each engine run and is compared with it (with ``--repeat``, the median of the
   pairs); the shared run comes once, at the end.

It prints the engine's throughput as ratios to the floor and to post(), and the peak resident
memory of the process (``ru_maxrss``) after each phase. With ``--repeat N`` the floor and the
engine run N times in turn (the engine on a fresh store each time) and each engine run is
compared with the floor run just before it: on a shared machine whose speed drifts from one
minute to the next, the median of those N ratios is what it reports, with their range.
With ``--check`` it replays the stream through the independent oracle (:mod:`load.oracle`)
and compares it with the engine's ledger per person and program; every difference is printed
and the exit status is 1.

By default only the national rule files are loaded (``rules/national`` and
``rules/providers.yaml``, copied next to the cached stream); ``--all-rules`` loads every rule
file under ``--rules``.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from load.oracle import ALL_PROGRAMS, PROGRAMS, Program, compare, expected_points
from pointengine.catalog.loading import Catalog, load_catalog
from pointengine.catalog.programs import ProgramVersion
from pointengine.decide.awards import person_cap, requested_points
from pointengine.decide.engine import Engine
from pointengine.decide.facts import build_fact
from pointengine.decide.matching import PostRuleset
from pointengine.errors import InputError
from pointengine.model.events import (
    AnyEvent,
    Charge,
    HealthInsuranceRegistration,
    MynapointApplication,
    PublicFundsAccountRegistration,
    Purchase,
    Refund,
    ResidenceChange,
    parse_event,
)
from pointengine.model.ledger import FileSink
from pointengine.model.persons import Enrolment, Person
from pointengine.replay.run import BATCH, replay
from pointengine.store.contract import Store
from pointengine.store.memory import MemoryStore
from pointengine.synth.generate import ADVERSARIAL, generate

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = ROOT / "out" / "bench"
POST_SAMPLE = 50_000


@dataclass
class Phase:
    """One measured phase: how many events in how many seconds."""

    name: str
    events: int
    seconds: float
    note: str = ""
    latencies: list[float] = field(default_factory=list)
    rss_mb: float = 0.0

    @property
    def rate(self) -> float:
        """Events per second."""
        return self.events / self.seconds if self.seconds > 0 else 0.0


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description:<10}"), BarColumn(), TaskProgressColumn(),
                    TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                    console=console, transient=True)


@contextmanager
def _bar(console: Console, label: str, total: int) -> Iterator[Callable[..., None]]:
    """A progress bar; yields ``update(done)`` that also shows the rate so far."""
    started = time.perf_counter()
    with _progress(console) as bar:
        task = bar.add_task(label, total=total, rate="")

        def update(done: int, unit_per_s: str = "") -> None:
            spent = time.perf_counter() - started
            bar.update(task, completed=done, rate=unit_per_s or (
                f"{done / spent / 1e6:,.1f} MB/s" if spent > 0 else ""))

        yield update


def stream_path(cache: Path, persons: int, events: int, seed: int,
                mixes: frozenset[str]) -> Path:
    """Where the stream of these parameters is cached."""
    suffix = "-" + "+".join(sorted(mixes)) if mixes else ""
    return cache / f"events-{persons}-{events}-{seed}{suffix}.jsonl"


def ensure_stream(cache: Path, persons: int, events: int, seed: int, mixes: frozenset[str],
                  console: Console) -> Path:
    """The cached stream, generated first when it is missing (deterministic for the seed)."""
    path = stream_path(cache, persons, events, seed, mixes)
    if path.exists():
        console.print(f"reusing {path}")
        return path
    partial = path.with_suffix(".partial")
    with _bar(console, "generate", events) as update:
        report = generate(partial, persons=persons, events=events, seed=seed,
                          adversarial=mixes,
                          progress=lambda done, _: update(done, f"{done:,} events"))
    partial.rename(path)
    console.print(f"generated {report.lines:,} lines over {persons:,} persons in "
                  f"{report.seconds:.1f} s -> {path}")
    return path


def national_rules(rules: Path, cache: Path) -> Path:
    """A copy of ``rules/providers.yaml`` and ``rules/national`` only, under ``cache``."""
    target = cache / "rules-national"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copy2(rules / "providers.yaml", target / "providers.yaml")
    shutil.copytree(rules / "national", target / "national")
    return target


def sample_of(path: Path, lines: int) -> Path:
    """The first ``lines`` lines of ``path`` (the whole file when it is shorter)."""
    target = path.with_name(f"{path.stem}.first{lines}.jsonl")
    if target.exists():
        return target
    with path.open("rb") as source, target.open("wb") as out:
        for number, line in enumerate(source):
            if number >= lines:
                break
            out.write(line)
    return target



def parse_floor(path: Path, console: Console) -> Phase:
    """orjson-decode every line and add up the amounts: the floor of any Python pipeline."""
    size = path.stat().st_size
    total = lines = 0
    loads = orjson.loads
    with _bar(console, "floor", size) as update, path.open("rb") as handle:
        started = time.perf_counter()
        for line in handle:
            lines += 1
            try:
                total += loads(line).get("amount", 0)  # a float amount counts as it is
            except (orjson.JSONDecodeError, AttributeError, TypeError):
                continue
            if not lines & 0x3FFFF:
                update(handle.tell())
        seconds = time.perf_counter() - started
    return Phase("floor", lines, seconds, note=f"sum of amounts {int(total):,} yen",
                 rss_mb=peak_rss_mb())


class PostBaseline:
    """The whole job done plainly: pydantic events, ``post()`` per program, caps in dicts."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.bases = catalog.bases()
        self.rulesets: dict[int, PostRuleset] = {}
        self.persons: dict[str, Person] = {}
        self.seen: set[str] = set()
        self.points: dict[tuple[str, str], int] = {}
        self.groups: dict[tuple[str, str], int] = {}
        self.transactions: dict[str, tuple[int, list[list[object]]]] = {}
        self.refunded: dict[str, int] = {}
        self.awarded = 0
        self.rejected = 0

    def ruleset(self, version: ProgramVersion) -> PostRuleset:
        """The post() ruleset of a program version (registered on first use)."""
        from pointengine.decide.eligibility import checks_for

        found = self.rulesets.get(id(version))
        if found is None:
            found = self.rulesets[id(version)] = PostRuleset(version.label, checks_for(version))
        return found

    def feed(self, raw: bytes) -> None:
        """Apply one line."""
        try:
            event = parse_event(raw)
        except InputError:
            self.rejected += 1
            return
        if event.key in self.seen:
            return
        self.seen.add(event.key)
        if isinstance(event, Refund):
            self._refund(event)
            return
        person = self._update(event)
        if person is None:
            return
        fact = build_fact(event, person, self.bases)
        earned: list[list[object]] = []
        for program in self.catalog.candidates(["national"], event.type):
            version = program.version_at(event.at)
            if not self.ruleset(version).passes(fact):
                continue
            points = self._clip(version, person.id, requested_points(version, event, person))
            if points > 0:
                self.awarded += points
                earned.append([version, points, 0])
        if isinstance(event, Purchase | Charge):
            self.transactions[event.key] = (event.amount, earned)

    def _clip(self, version: ProgramVersion, person: str, wanted: int) -> int:
        key = (version.id, person)
        points = min(wanted, person_cap(version, wanted) - self.points.get(key, 0))
        group = version.person_total
        if group is not None:
            points = min(points, group.cap - self.groups.get((group.group, person), 0))
        if points <= 0:
            return 0
        self.points[key] = self.points.get(key, 0) + points
        if group is not None:
            gkey = (group.group, person)
            self.groups[gkey] = self.groups.get(gkey, 0) + points
        return points

    def _refund(self, event: Refund) -> None:
        key = f"{event.source}/{event.transaction}"
        found = self.transactions.get(key)
        refunded = self.refunded.get(key, 0) + event.amount
        if found is None or refunded > found[0]:
            self.rejected += 1
            return
        self.refunded[key] = refunded
        amount, earned = found
        for entry in earned:
            version, points, back = entry
            assert isinstance(version, ProgramVersion)
            assert isinstance(points, int) and isinstance(back, int)
            share = points * refunded // amount - back
            if share > 0:
                entry[2] = back + share
                self._clip(version, event.person, -share)

    def _update(self, event: AnyEvent) -> Person | None:
        person = self.persons.get(event.person)
        if isinstance(event, MynapointApplication):
            person = person or self.persons.setdefault(event.person, Person(event.person))
            if event.phase not in person.enrolments:
                person.enrolments[event.phase] = Enrolment(event.provider, event.at,
                                                           event.card_applied_on)
            if person.residence_at(event.at) != event.residence:
                person.move(event.at, event.residence)
            person.birth_date = event.birth_date or person.birth_date
            person.children = event.children_birth_dates or person.children
            person.phase1_applicant |= event.applied_in_phase1
        elif isinstance(event, HealthInsuranceRegistration | PublicFundsAccountRegistration):
            person = person or self.persons.setdefault(event.person, Person(event.person))
            what = ("health_insurance" if isinstance(event, HealthInsuranceRegistration)
                    else "public_funds_account")
            person.registrations.setdefault(what, event.at)
        elif isinstance(event, ResidenceChange) and person is not None:
            person.move(event.at, event.residence)
        return person


def post_baseline(path: Path, catalog: Catalog, limit: int, console: Console) -> Phase:
    """Run :class:`PostBaseline` over the first ``limit`` lines of ``path``."""
    baseline = PostBaseline(catalog)
    lines = 0
    with _bar(console, "post()", limit) as update, path.open("rb") as handle:
        started = time.perf_counter()
        for line in handle:
            if lines >= limit:
                break
            lines += 1
            baseline.feed(line)
            if not lines & 0x3FF:
                spent = time.perf_counter() - started
                update(lines, f"{lines / spent:,.0f} events/s")
        seconds = time.perf_counter() - started
    posts = sum(r.posts for r in baseline.rulesets.values())
    return Phase("post()", lines, seconds,
                 note=f"first {lines:,} lines; {posts:,} posts; {baseline.awarded:,} points",
                 rss_mb=peak_rss_mb())


def engine_replay(path: Path, catalog: Catalog, store: Store, label: str, batch: int,
                  rejects: Path, console: Console) -> tuple[Phase, dict[str, int]]:
    """Replay ``path`` through the engine on ``store``; the phase and the rejects by reason."""
    engine = Engine(catalog, store)
    size = path.stat().st_size
    latencies: list[float] = []
    rejects.unlink(missing_ok=True)
    with _bar(console, label, size) as update:
        last = [time.perf_counter()]

        def after_batch() -> None:
            now = time.perf_counter()
            latencies.append(now - last[0])
            last[0] = now

        try:
            report = replay(path, engine, rejects=rejects, batch=batch,
                            after_batch=after_batch, on_progress=update)
        finally:
            engine.close()
    points = sum(report.totals.values())
    note = (f"{report.applied:,} applied, {report.duplicates:,} duplicates, "
            f"{report.rejected:,} rejected; {points:,} points")
    phase = Phase(label, report.lines, report.seconds, note=note, latencies=latencies,
                  rss_mb=peak_rss_mb())
    return phase, dict(report.reasons)


def redis_replay(path: Path, catalog: Catalog, batch: int, rejects: Path,
                 console: Console, *, exclusive: bool = False) -> Phase:
    """The engine on :class:`RedisStore` against a throw-away ``redis-server``; with
    ``exclusive``, as a :class:`WriteBackStore` in front of it (its time includes loading the
    empty store and waiting for the last batch to be written back)."""
    from pointengine.store.redis_server import RedisServer
    from pointengine.store.redis_store import RedisStore
    from pointengine.store.writeback import WriteBackStore

    with RedisServer() as server:
        shared = RedisStore(server.client())
        started = time.perf_counter()
        store: Store = WriteBackStore(shared) if exclusive else shared
        try:
            phase, _ = engine_replay(path, catalog, store, "redis exclusive" if exclusive
                                     else "redis", batch, rejects, console)
        finally:
            store.close()
        phase.seconds = time.perf_counter() - started
    return phase


def check(path: Path, ledger: Path, console: Console,
          programs: tuple[Program, ...]) -> list[str]:
    """The oracle's expected points against the ledger, for the programs the oracle knows."""
    with console.status("oracle: replaying the stream independently"):
        expected = expected_points(path, programs)
        known = {p.id for p in programs}
        problems = [p for p in compare(expected, ledger) if p.split(" ")[1].rstrip(":") in known]
    return problems


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def paired_redis_ratios(phases: list[Phase]) -> list[float]:
    """Each exclusive Redis run's rate over that of the engine run just before it."""
    return _paired(phases, "engine", "redis exclusive")


def paired_ratios(phases: list[Phase]) -> list[float]:
    """Each engine run's rate over that of the floor run just before it."""
    return _paired(phases, "floor", "engine")


def _paired(phases: list[Phase], base: str, measured: str) -> list[float]:
    """Each ``measured`` phase's rate over that of the ``base`` phase just before it (each
    base phase is used once)."""
    ratios: list[float] = []
    before: Phase | None = None
    for phase in phases:
        if phase.name.startswith(base):
            before = phase
        elif phase.name.startswith(measured) and before is not None and before.rate:
            ratios.append(phase.rate / before.rate)
            before = None
    return ratios


def median_of(values: list[float]) -> float:
    """The middle value (the lower of the two middle ones of an even count)."""
    return sorted(values)[(len(values) - 1) // 2]


def print_results(console: Console, phases: list[Phase], engine: Phase,
                  reasons: dict[str, int]) -> None:
    """The table of phases with the engine's ratios; ``engine`` is the engine run whose
    figures the summary gives (the median one when the runs were repeated)."""
    table = Table("phase", "events", "seconds", "events/s", "engine ×", "peak RSS", "note")
    for phase in phases:
        ratio = (engine.rate / phase.rate if phase.rate and not phase.name.startswith("engine")
                 else None)
        table.add_row(phase.name, f"{phase.events:,}", f"{phase.seconds:,.2f}",
                      f"{phase.rate:,.0f}", f"{ratio:.3f}" if ratio is not None else "",
                      f"{phase.rss_mb:,.0f} MiB", phase.note)
    console.print(table)
    by_name = {p.name: p for p in phases}
    parts = [f"engine {engine.rate:,.0f} events/s"]
    ratios = paired_ratios(phases)
    if len(ratios) > 1:
        parts.append(f"{median_of(ratios):.3f} × floor (the median of {len(ratios)} runs, "
                     "each against the floor just before it: "
                     + ", ".join(f"{r:.3f}" for r in ratios) + ")")
    elif ratios:
        parts.append(f"{ratios[0]:.3f} × floor")
    if "post()" in by_name and by_name["post()"].rate:
        parts.append(f"{engine.rate / by_name['post()'].rate:.3f} × post()")
    exclusive = paired_redis_ratios(phases)
    if len(exclusive) > 1:
        parts.append(f"redis exclusive {median_of(exclusive):.2f} × embedded (the median of "
                     f"{len(exclusive)} runs, each against the engine run just before it: "
                     + ", ".join(f"{r:.2f}" for r in exclusive) + ")")
    elif exclusive:
        parts.append(f"redis exclusive {exclusive[0]:.2f} × embedded")
    if "redis" in by_name:
        parts.append(f"redis (shared) {by_name['redis'].rate / engine.rate:.2f} × embedded")
    console.print("; ".join(parts))
    if engine.latencies:
        ordered = sorted(engine.latencies)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        console.print(f"batch latency ({len(ordered):,} batches): p50 "
                      f"{_ms(statistics.median(ordered))}, p99 {_ms(p99)}")
    console.print(f"rejects: {sum(reasons.values()):,}"
                  + (" (" + ", ".join(f"{k} {v:,}" for k, v in sorted(reasons.items())) + ")"
                     if reasons else ""))
    console.print(f"peak memory (ru_maxrss, whole process): {peak_rss_mb():,.0f} MiB")


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m load.bench", description=__doc__.split("\n")[0])
    p.add_argument("--persons", type=int, default=100_000)
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--mix", default="", help="adversarial mixes, comma separated: "
                   + ", ".join(sorted(ADVERSARIAL)))
    p.add_argument("--rules", type=Path, default=ROOT / "rules", help="the rules folder")
    p.add_argument("--all-rules", action="store_true",
                   help="load every rule file (default: national rules only)")
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                   help="folder for the stream, ledger and rejects")
    p.add_argument("--batch", type=int, default=BATCH)
    p.add_argument("--post-events", type=int, default=POST_SAMPLE,
                   help="lines the post() baseline runs on (0: skip it)")
    p.add_argument("--no-floor", action="store_true", help="skip the parse-only floor")
    p.add_argument("--repeat", type=int, default=1,
                   help="run the floor and the engine this many times in turn and report the "
                   "median ratio")
    p.add_argument("--redis", action="store_true", help="also replay on Redis")
    p.add_argument("--redis-events", type=int, default=200_000,
                   help="lines the Redis replay runs on")
    p.add_argument("--check", action="store_true",
                   help="compare the ledger with the independent oracle; exit 1 on a difference")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; the exit status is 1 when ``--check`` finds a difference."""
    args = parser().parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 160)
    mixes = frozenset(m for m in args.mix.split(",") if m)
    cache: Path = args.cache
    cache.mkdir(parents=True, exist_ok=True)
    path = ensure_stream(cache, args.persons, args.events, args.seed, mixes, console)
    rules = args.rules if args.all_rules else national_rules(args.rules, cache)
    catalog = load_catalog(rules)
    console.print(f"{len(catalog.programs)} programs from {rules}; stream {path} "
                  f"({path.stat().st_size / 1e6:,.0f} MB)")
    phases: list[Phase] = []
    if args.post_events > 0:
        phases.append(post_baseline(path, catalog, args.post_events, console))
    ledger = cache / "ledger.jsonl"
    engines: list[Phase] = []
    rounds = max(args.repeat, 1)
    sample = None
    if args.redis:
        sample = path if args.redis_events >= args.events else sample_of(path, args.redis_events)
    for n in range(1, rounds + 1):
        suffix = f" #{n}" if rounds > 1 else ""
        if not args.no_floor:
            floor = parse_floor(path, console)
            floor.name += suffix
            phases.append(floor)
        ledger.unlink(missing_ok=True)
        sink = FileSink(ledger)
        try:
            engine, reasons = engine_replay(path, catalog, MemoryStore(sink), "engine" + suffix,
                                            args.batch, cache / "rejects.jsonl", console)
        finally:
            sink.close()
        phases.append(engine)
        engines.append(engine)
        if sample is not None:  # right after the engine run it is compared with
            exclusive = redis_replay(sample, catalog, args.batch,
                                     cache / "rejects-redis-exclusive.jsonl", console,
                                     exclusive=True)
            exclusive.name += suffix
            phases.append(exclusive)
    # the summary's figures are those of the engine run whose ratio is the median
    ratios = paired_ratios(phases)
    engine = (engines[ratios.index(median_of(ratios))] if ratios
              else sorted(engines, key=lambda e: e.rate)[(len(engines) - 1) // 2])
    if sample is not None:
        phases.append(redis_replay(sample, catalog, args.batch, cache / "rejects-redis.jsonl",
                                   console))
    print_results(console, phases, engine, reasons)
    if not args.check:
        return 0
    programs = ALL_PROGRAMS if args.all_rules else PROGRAMS
    problems = check(path, ledger, console, programs)
    for problem in problems:
        console.print(problem, markup=False, highlight=False)
    if problems:
        console.print(f"[red]oracle check: {len(problems):,} difference(s)[/red]")
        return 1
    console.print("oracle check: the ledger matches the oracle to the yen "
                  f"({', '.join(sorted(p.id for p in programs))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

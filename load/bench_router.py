"""Router scale benchmark: the shipped catalog against one more program per municipality.

``python -m load.bench_router [--persons N] [--events N] [--seed S] [--repeat R]``

The same generated event stream is decided twice on fresh embedded stores:

(a) with the shipped catalog (``rules/``);
(b) with the shipped catalog plus one generated program for each of the 1,741 municipalities,
    written as real rule files into a temporary folder and loaded through
    :func:`~pointengine.catalog.loading.load_catalog`: a type-D premium (residents, in-region
    stores) with varied rates, caps, triggers and partner providers.

Two measures, each on a fresh embedded store with every ruleset compiled before the clock
starts (as a service does at startup):

- *replay*: :func:`pointengine.replay.run.replay` of the file, end to end (read, parse, decide,
  apply), the figure the goal is about;
- *engine*: :meth:`Engine.process` alone over batches of 2,000 events parsed beforehand
  (routing, facts, matching, the store): stricter, as parsing is a cost both catalogs share.

Runs are interleaved (a, b, a, b, ...) so that both see the same machine load; the best run of
each is reported with the ratio b / a (the goal is at least 0.8), and so is the median of the
ratios of back-to-back pairs, which a burst of load on a shared machine moves less.

Before the runs, the ruleset of every generated program is compiled once in durable_rules, and the
time and the growth of the process's resident memory are reported (then they are dropped).
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pointengine.catalog.loading import Catalog, load_catalog
from pointengine.decide.eligibility import checks_for
from pointengine.decide.engine import Engine
from pointengine.decide.matching import CompiledRuleset
from pointengine.lane.attach import lane_for
from pointengine.model.events import AnyEvent, parse_event
from pointengine.model.ledger import LedgerEntry
from pointengine.model.municipalities import registry
from pointengine.replay.run import replay
from pointengine.store.memory import MemoryStore
from pointengine.synth.generate import generate

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "rules"
BATCH = 2_000
#: Partner providers the generated programs draw from (all listed in rules/providers.yaml).
PARTNERS = ("paypay", "d-barai", "rakuten-pay", "au-pay", "waon", "rakuten-edy", "j-coin-pay")
RATES = ("5%", "10%", "12.5%", "15%", "20%", "25%", "30%")
CAPS = (1_000, 2_000, 3_000, 5_000, 6_000, 10_000)


class NullSink:
    """A ledger sink that only counts lines (the benchmark is not about the ledger)."""

    def __init__(self) -> None:
        self.lines = 0

    def append(self, entries: Iterable[LedgerEntry]) -> None:
        """Count the entries."""
        self.lines += sum(1 for _ in entries)

    def append_lines(self, lines: bytes) -> None:
        """Count the lines."""
        self.lines += lines.count(b"\n")


def program_yaml(code: str, label: str, rng: random.Random) -> str:
    """One generated type-D premium program for municipality ``code``, as rule-file text."""
    rate = rng.choice(RATES)
    cap = rng.choice(CAPS)
    on = "[purchase]" if rng.random() < 0.7 else "[purchase, charge]"
    partners = rng.sample(PARTNERS, rng.randint(0, 3))
    lines = [
        f"# Generated for the router benchmark: {label}, +{rate} up to {cap:,} (type D).",
        f"id: bench-{code}",
        f"name: {label} 住民の域内店舗での支払いに +{rate} (benchmark)",
        f'jurisdiction: "{code}"',
        "phase: 2",
        f"on: {on}",
        "restriction: {persons: residents, stores: in_region}",
    ]
    if partners:
        lines.append("providers:")
        lines.extend(f"  - {{provider: {p}, persons: {rng.randint(1, 50) * 1000}}}"
                     for p in partners)
    lines += [
        "conditions:",
        "  period: {from: 2022-01-01, to: 2023-02-28}",
        f"award: {{kind: premium, rate: {rate}, cap: {cap}}}",
        f"budget: {{yen: {rng.randint(1, 500) * 1_000_000}}}",
    ]
    return "\n".join(lines) + "\n"


def write_scaled_rules(dest: Path, *, seed: int = 1741, source: Path = RULES) -> int:
    """Copy ``source`` to ``dest`` and add one program per municipality; return how many."""
    shutil.copytree(source, dest)
    rng = random.Random(f"{seed}:bench-programs")
    count = 0
    for place in registry().municipalities():
        folder = dest / f"{place.code}-bench"
        folder.mkdir()
        (folder / "premium.yaml").write_text(program_yaml(place.code, place.label, rng),
                                             encoding="utf-8")
        count += 1
    return count


def read_batches(path: Path) -> list[list[AnyEvent]]:
    """The stream, parsed, in batches of :data:`BATCH`."""
    events = [parse_event(line) for line in path.read_bytes().splitlines() if line.strip()]
    return [events[i: i + BATCH] for i in range(0, len(events), BATCH)]


@dataclass
class Run:
    """One timed pass over the stream."""

    label: str
    events: int
    seconds: float
    ledger_lines: int
    rulesets: int
    decisions: int = 0
    misses: int = 0

    @property
    def rate(self) -> float:
        """Events per second."""
        return self.events / self.seconds if self.seconds else 0.0


def timed_run(label: str, catalog: Catalog, batches: list[list[AnyEvent]] | Path, *,
              warm: bool = True) -> Run:
    """Decide the stream on a fresh embedded store: parsed ``batches`` through
    :meth:`Engine.process`, or a file through :func:`~pointengine.replay.run.replay`.

    With ``warm`` every version's ruleset is compiled before the clock starts, as a service
    does at startup; otherwise the lazy compilation during the stream is timed too.
    """
    sink = NullSink()
    engine = Engine(catalog, MemoryStore(sink))
    try:
        if warm:
            for program in catalog.programs.values():
                for version in program.versions:
                    engine.ruleset(version)
            lane = lane_for(engine)
            if lane is not None and isinstance(batches, Path):
                lane.prepare()
        started = time.perf_counter()
        if isinstance(batches, Path):
            count = replay(batches, engine).lines
        else:
            count = sum(len(b) for b in batches)
            for batch in batches:
                engine.process(batch)
        seconds = time.perf_counter() - started
        rulesets = list(engine._rulesets.values())
        hits = sum(r.hits for r in rulesets)
        misses = sum(r.misses for r in rulesets)
    finally:
        engine.close()
    return Run(label, count, seconds, sink.lines, len(rulesets),
               hits + misses, misses)


def _rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def compile_all(catalog: Catalog, prefix: str = "bench-") -> tuple[int, float, int]:
    """Compile every version of the generated programs; (rulesets, seconds, RSS growth KiB)."""
    before = _rss_kib()
    started = time.perf_counter()
    compiled: list[CompiledRuleset] = []
    for program in catalog.programs.values():
        if program.id.startswith(prefix):
            compiled.extend(CompiledRuleset(v.label, checks_for(v)) for v in program.versions)
    seconds = time.perf_counter() - started
    grown = _rss_kib() - before
    for ruleset in compiled:
        ruleset.close()
    return len(compiled), seconds, grown


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print events/s for both catalogs and their ratio."""
    parser = argparse.ArgumentParser(prog="python -m load.bench_router", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2022)
    parser.add_argument("--repeat", type=int, default=2, help="interleaved runs of each")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-router-") as tmp:
        work = Path(tmp)
        stream = work / "events.jsonl"
        started = time.perf_counter()
        generate(stream, persons=args.persons, events=args.events, seed=args.seed)
        batches = read_batches(stream)
        print(f"stream: {args.events:,} events, {args.persons:,} persons, seed {args.seed} "
              f"(generated and parsed in {time.perf_counter() - started:.1f} s)")
        shipped = load_catalog(RULES)
        started = time.perf_counter()
        added = write_scaled_rules(work / "rules")
        scaled = load_catalog(work / "rules")
        print(f"catalogs: (a) {len(shipped.programs)} programs; (b) {len(scaled.programs)} "
              f"programs ({added:,} generated rule files written and loaded in "
              f"{time.perf_counter() - started:.1f} s)")
        count, seconds, grown = compile_all(scaled)
        print(f"durable_rules: compiled {count:,} rulesets in {seconds:.2f} s "
              f"({seconds / max(count, 1) * 1000:.2f} ms each), resident memory "
              f"+{grown / 1024:.1f} MiB ({grown / max(count, 1):.1f} KiB each)")
        best: dict[tuple[str, str], Run] = {}
        pairs: dict[str, list[float]] = {measure: [] for measure in ("replay", "engine")}
        sources: dict[str, list[list[AnyEvent]] | Path] = {"replay": stream, "engine": batches}
        for i in range(args.repeat):
            for measure, source in sources.items():
                rates: list[float] = []
                for label, catalog in (("a", shipped), ("b", scaled)):
                    run = timed_run(label, catalog, source)
                    rates.append(run.rate)
                    print(f"  run {i + 1} {measure} ({label}): {run.rate:,.0f} events/s "
                          f"({run.seconds:.2f} s, {run.ledger_lines:,} ledger lines, "
                          f"{run.rulesets:,} rulesets, {run.decisions:,} program decisions, "
                          f"{run.misses:,} matched in durable_rules)")
                    key = (measure, label)
                    if key not in best or run.seconds < best[key].seconds:
                        best[key] = run
                pairs[measure].append(rates[1] / rates[0] if rates[0] else 0.0)
        for measure in sources:
            a, b = best[(measure, "a")], best[(measure, "b")]
            ratio = b.rate / a.rate if a.rate else 0.0
            verdict = "meets" if ratio >= 0.8 else "misses"
            print(f"{measure}: (a) shipped {a.rate:,.0f} events/s, (b) + 1,741 municipal "
                  f"{b.rate:,.0f} events/s, ratio b/a {ratio:.3f} ({verdict} the goal of 0.8); "
                  f"median of the {len(pairs[measure])} back-to-back pairs "
                  f"{statistics.median(pairs[measure]):.3f}")


if __name__ == "__main__":
    main()

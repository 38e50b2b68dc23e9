"""The standing fault and fuzz suite: ``python -m load.faults [--scale small|full] [--seed S]``.

Each check runs against the real parts (a ``redis-server`` it starts on a free loopback port,
the FastAPI app under Starlette's test client, :class:`~pointengine.service.worker.Worker`
objects and ``pointengine worker`` processes, ``pointengine replay``, the shipped rule files)
and prints one row of a table: the check, its size, the invariant, what was observed, PASS or
FAIL. The exit status is 1 when a check fails; the details of a failure (and how to get the same
input again: the seed, and the index of the request or file) follow the table.

``delivery``
    A generated stream (:func:`pointengine.synth.generate.generate`), each event delivered one
    to three times, shuffled across persons: each person's own events keep their order (and a
    re-delivery comes after the first delivery), because the order of one person's events
    changes the money today (event-time ordering is another matter). Evaluated by a replay on
    the embedded store and by workers on Redis; each ledger must equal the independent oracle
    (:mod:`load.oracle`, on the programs it knows) and the stream replayed once in order (on
    every program), with no (event, program) paid twice.
``worker kills`` / ``redis kills``
    Signed batches posted over HTTP in bursts while two ``pointengine worker`` processes apply
    them; during each burst a worker that holds entries it read and has not acknowledged is
    SIGKILLed (and a new one started), or ``redis-server`` (AOF, ``appendfsync always``) is
    SIGKILLed and restarted on its files while the next burst is posted (a 503 is posted
    again, signed anew, as a provider would). Every event answered 202 must be applied exactly
    once: none lost, none paid twice, the ledger equal to the accepted events replayed in order.
``small budgets``
    Concurrent workers on a program with a tiny budget in yen, and on one with a tiny budget in
    persons and a provider's allocation: 0 yen and 0 persons over, every budget used up.
``fuzzed payloads``
    Every sender's valid native bodies mutated (:func:`load.fuzz.mutate_payload`) and posted,
    signed, to both endpoints: no answer of 500 or more, no traceback logged, and a refused
    request leaves every Redis key as it was (keyspace notifications name the keys a request
    touched, whose contents are compared before and after); what was accepted is then evaluated
    by a worker without a failure.
``fuzzed rule files``
    Rule files edited as the catalog's fuzz test edits them, and at the byte level: loaded, or
    refused with located problems only, never a traceback; a refused edit leaves the rules in
    force (a worker's reload).
``my numbers (service)`` / ``my numbers (replay)``
    Valid My Numbers written plainly, in full-width digits, JSON-escaped (XML character
    references), as a JSON number, and grouped with colons, dots, underscores, hyphens, spaces,
    ideographic and no-break spaces, full-width hyphens, tabs, zero-width spaces and soft
    hyphens, in every field (and as a new field, nested, and as a field name) of every
    provider's format and of canonical events, through the service (and a worker) and through
    ``pointengine replay`` on each store. Afterwards every Redis key and value, the ledger, the
    rejects, the answers and the captured logs are searched for the numbers' digits (plainly,
    and however written and grouped) and with the guard's own
    :func:`~pointengine.model.privacy.carries_my_number`: 0 leaks.
``my numbers (request line)``
    A My Number, in the forms a URL carries as they are, as the provider in the path, as the
    signer, as the timestamp and in the query: echoed in no answer, log line or Redis key.

``--scale small`` is what the test suite runs (``tests/load/test_faults.py``); ``full`` (the
default) is the suite's own size.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import redis

from load.fuzz import (
    mutate_payload,
    mutate_rule_file,
    my_number_forms,
    place_in_csv,
    place_in_json,
    place_in_xml,
    valid_my_number,
)
from load.harness import (
    KEYS,
    ROOT,
    RULES,
    SENDERS,
    Request,
    drained,
    enqueue,
    event_key,
    make_worker,
    net_points,
    paid_twice,
    post,
    reference,
    requests_of,
    run_workers,
    sender_secrets,
    service,
    wait_for,
    worker_process,
)
from load.oracle import ALL_PROGRAMS, compare, expected_points
from load.service_scenario import build
from pointengine.catalog.loading import load_catalog
from pointengine.decide.engine import Engine
from pointengine.decide.reload import CatalogWatcher
from pointengine.errors import RuleFileError
from pointengine.model.events import AnyEvent, parse_event
from pointengine.model.ledger import FileSink, LedgerEntry, read_ledger
from pointengine.model.privacy import carries_my_number, plain_digits
from pointengine.replay.run import replay
from pointengine.service.jsonlog import JsonFormatter
from pointengine.service.signing import HEADER_SIGNATURE, HEADER_TIMESTAMP, sign
from pointengine.service.streams import lag_and_pending, read_rejects, shard_count
from pointengine.store.memory import MemoryStore
from pointengine.store.redis_server import RedisServer
from pointengine.store.redis_store import RedisStore, connect
from pointengine.synth.generate import generate

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

__all__ = ["CHECKS", "SCALES", "Row", "Sizes", "main", "run_checks", "table"]


@dataclass(frozen=True)
class Sizes:
    """How big each check is."""

    persons: int
    events: int
    delivery_workers: int
    kill_persons: int
    kill_transactions: int
    kills: int
    budget_persons: int
    budget_transactions: int
    budget_workers: int
    budget_yen: int
    budget_heads: int
    payloads: int
    rule_files: int
    every_form_everywhere: bool


SCALES = {
    "small": Sizes(persons=300, events=3_000, delivery_workers=3, kill_persons=150,
                   kill_transactions=1_200, kills=2, budget_persons=200,
                   budget_transactions=1_500, budget_workers=4, budget_yen=20_000,
                   budget_heads=12, payloads=600, rule_files=100,
                   every_form_everywhere=False),
    "full": Sizes(persons=3_000, events=40_000, delivery_workers=4, kill_persons=2_000,
                  kill_transactions=20_000, kills=10, budget_persons=1_000,
                  budget_transactions=8_000, budget_workers=8, budget_yen=60_000,
                  budget_heads=40, payloads=10_000, rule_files=1_000,
                  every_form_everywhere=True),
}


@dataclass
class Row:
    """One check's line of the table, and what explains a failure."""

    check: str
    size: str
    invariant: str
    observed: str
    ok: bool
    seconds: float = 0.0
    details: list[str] = field(default_factory=list)
    name: str = ""
    """The check's name in :data:`CHECKS` (what ``--only`` takes)."""


# -- logs --------------------------------------------------------------------------------------


class _Captured(logging.Handler):
    """Every log record, as the service writes it (one JSON line), and the tracebacks."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []
        self.tracebacks: list[str] = []
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception as exc:  # a record that cannot be written is a finding
            line = f"unformattable log record {record.name}: {exc!r}"
        with self._lock:
            self.lines.append(line)
            if record.exc_info or "Traceback (most recent call last)" in line:
                self.tracebacks.append(line)


@contextlib.contextmanager
def _captured_logs(level: int = logging.INFO) -> Iterator[_Captured]:
    root = logging.getLogger()
    handler = _Captured()
    handler.setLevel(level)
    before = root.level
    root.addHandler(handler)
    if before > level:  # NOTSET (0) on the root lets every record through already
        root.setLevel(level)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(before)


def _json_lines(text: str) -> Iterator[dict[str, Any]]:
    """The JSON objects among ``text``'s lines (a worker's log; other lines are skipped)."""
    for line in text.splitlines():
        if line.startswith("{"):
            with contextlib.suppress(orjson.JSONDecodeError):
                doc = orjson.loads(line)
                if isinstance(doc, dict):
                    yield doc


def _tracebacks(text: str) -> int:
    return text.count("Traceback (most recent call last)")


def _short(data: bytes | str, limit: int = 160) -> str:
    text = repr(data)
    return text if len(text) <= limit else text[:limit] + f"... ({len(data):,} long)"


# -- delivery: duplicates and a shuffle across persons ----------------------------------------


def deliver(lines: Sequence[bytes], persons: Sequence[str],
            rng: random.Random) -> tuple[list[bytes], int]:
    """``lines`` each delivered one to three times, shuffled across persons: a person's own
    lines keep their order, and every re-delivery comes after the line's first delivery.
    Returns the deliveries and how many were re-deliveries."""
    own: dict[str, list[bytes]] = {}
    for line, person in zip(lines, persons, strict=True):
        own.setdefault(person, []).append(line)
    copies = 0
    queues: dict[str, list[bytes]] = {}
    for person, mine in own.items():
        # each first delivery at its own place, each re-delivery somewhere after it
        keyed = [(float(n), line) for n, line in enumerate(mine)]
        for n, line in enumerate(mine):
            for _ in range(rng.choice((0, 0, 1, 2))):
                keyed.append((rng.uniform(n + 0.5, len(mine)), line))
                copies += 1
        keyed.sort(key=lambda item: item[0])
        queues[person] = [line for _, line in reversed(keyed)]  # taken from the end
    turns = [person for person, queue in queues.items() for _ in queue]
    rng.shuffle(turns)
    return [queues[person].pop() for person in turns], copies


def _ledger_file(entries: Iterable[LedgerEntry], path: Path) -> Path:
    with path.open("wb") as handle:
        for entry in entries:
            handle.write(entry.to_json())
    return path


def _oracle_differences(expected: dict[str, dict[str, int]], ledger: Path) -> list[str]:
    known = {p.id for p in ALL_PROGRAMS}
    return [p for p in compare(expected, ledger) if p.split(" ")[1].rstrip(":") in known]


def _differences(got: Counter[tuple[str, str]], want: Counter[tuple[str, str]]) -> list[str]:
    return [f"{person} {program}: expected {want.get((person, program), 0)}, got "
            f"{got.get((person, program), 0)}"
            for person, program in sorted(set(got) | set(want))
            if got.get((person, program), 0) != want.get((person, program), 0)]


def check_delivery(size: Sizes, seed: int, work: Path) -> Row:
    """Events delivered 1-3 times and shuffled across persons: the ledger equals the oracle,
    on the embedded store and through workers on Redis; nothing is paid twice."""
    catalog = load_catalog(RULES)
    stream = work / "events.jsonl"
    generate(stream, persons=size.persons, events=size.events, seed=seed)
    lines = stream.read_bytes().splitlines()
    persons = [str(orjson.loads(line)["person"]) for line in lines]
    deliveries, copies = deliver(lines, persons, random.Random(f"{seed}:delivery"))
    delivered = work / "delivered.jsonl"
    delivered.write_bytes(b"\n".join(deliveries) + b"\n")
    expected = expected_points(stream, ALL_PROGRAMS)

    in_order = work / "ledger-in-order.jsonl"
    sink = FileSink(in_order)
    engine = Engine(catalog, MemoryStore(sink))
    replay(stream, engine)
    sink.close()
    engine.close()
    want = net_points(read_ledger(in_order))

    embedded = work / "ledger-embedded.jsonl"
    sink = FileSink(embedded)
    engine = Engine(catalog, MemoryStore(sink))
    replay(delivered, engine)
    sink.close()
    engine.close()
    runs = {"embedded": list(read_ledger(embedded))}

    with RedisServer() as server:
        enqueue(server.client(), [parse_event(line) for line in deliveries], per_entry=20)
        run_workers(server, catalog, size.delivery_workers, count=10, retry_delay_ms=20,
                    retry_window_ms=300)
        runs[f"redis, {size.delivery_workers} workers"] = list(
            RedisStore(server.client()).ledger())

    details: list[str] = []
    observed: list[str] = []
    for index, (name, entries) in enumerate(runs.items()):
        written = _ledger_file(entries, work / f"ledger-run-{index}.jsonl")
        oracle = _oracle_differences(expected, written)
        others = _differences(net_points(entries), want)
        twice_lines, twice_yen = paid_twice(entries)
        observed.append(f"{name}: {len(oracle)} oracle / {len(others)} in-order differences, "
                        f"{twice_yen:,} yen twice")
        details += [f"{name}: oracle: {d}" for d in oracle[:10]]
        details += [f"{name}: in-order replay: {d}" for d in others[:10]]
        if twice_lines:
            details.append(f"{name}: {twice_lines} ledger line(s) repeat an (event, program)")
        if oracle or others or twice_lines:
            details.append(f"reproduce: python -m load.faults --only delivery --seed {seed}")
    paid = sum(sum(p.values()) for p in expected.values())
    return Row("delivered 1-3 times, shuffled",
               f"{len(lines):,} events, {size.persons:,} persons, {len(deliveries):,} "
               f"deliveries ({copies:,} again)", "ledger = oracle; 0 yen paid twice",
               "; ".join(observed) + f" ({paid:,} points expected)",
               not details and paid > 0, details=details)


# -- kills: workers and Redis, mid-stream ------------------------------------------------------


class _Durable:
    """A ``redis-server`` that keeps its port across a SIGKILL and a restart, and, when
    ``durable``, its data: AOF with ``appendfsync always``, in a folder of ours."""

    def __init__(self, folder: Path, durable: bool) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.args = ("--appendonly", "yes", "--appendfsync", "always",
                     "--dir", str(folder)) if durable else ()
        self.server = RedisServer(args=self.args).start()
        self.port = self.server.port
        if durable:  # the kills prove nothing about a server that did not take the settings
            config = self.server.client().config_get("append*")
            if (config.get("appendonly"), config.get("appendfsync")) != ("yes", "always"):
                raise RuntimeError(f"redis-server did not take AOF, appendfsync always: {config}")

    @property
    def url(self) -> str:
        """The server's URL (the same across restarts)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def kill_and_restart(self, down: float) -> None:
        """SIGKILL the server, wait ``down`` seconds, start it again on its files."""
        os.kill(self.server.pid, signal.SIGKILL)
        self.server.stop()  # reaps it; our folder, where the AOF is, stays
        time.sleep(down)
        self.server = RedisServer(port=self.port, args=self.args).start()

    def stop(self) -> None:
        """Stop the server."""
        self.server.stop()


def _events_done(client: redis.Redis) -> int:
    try:
        return int(client.hget(KEYS.stats, "events") or 0)
    except redis.RedisError:
        return -1


def check_kills(size: Sizes, seed: int, work: Path, target: str) -> Row:
    """Batches posted over HTTP while workers run; workers (``target`` ``worker``) or Redis
    (``redis``, under AOF) SIGKILLed mid-stream: every event answered 202 is applied once,
    and neither the service nor a worker logs a traceback."""
    with _captured_logs() as logs:
        row = _kills(size, seed, work, target)
    worker_log = (work / f"workers-{target}.log").read_text(errors="replace")
    found = len(logs.tracebacks) + _tracebacks(worker_log)
    taken = sum(int(doc.get("entries", 0)) for doc in _json_lines(worker_log)
                if doc.get("message") == "pending taken over")
    row.observed += (f"; {taken:,} entries left pending were taken over; {found} tracebacks "
                     "logged")
    if found:
        row.ok = False
        row.details += [f"traceback logged: {_short(t, 400)}" for t in logs.tracebacks[:3]]
        if _tracebacks(worker_log):
            row.details.append("tracebacks in the workers' log (--keep DIR keeps it)")
    return row


def _kills(size: Sizes, seed: int, work: Path, target: str) -> Row:
    rng = random.Random(f"{seed}:kills:{target}")
    catalog = load_catalog(RULES)
    scenario = build(size.kill_persons, size.kill_transactions, seed=seed)
    requests = requests_of(scenario, 50)
    keys = sender_secrets()
    redis_server = _Durable(work / f"redis-{target}", durable=target == "redis")
    url = redis_server.url
    logs = (work / f"workers-{target}.log").open("wb")
    workers: list[subprocess.Popen[bytes]] = []
    accepted: list[AnyEvent] = []
    statuses: Counter[int] = Counter()
    refused: list[str] = []
    posting_failed: list[str] = []
    monitor = connect(url, timeout=2.0, connect_timeout=1.0)
    total = len(requests)
    # The requests go in bursts, one more than there are kills: a kill comes once the
    # workers have begun on a burst, while they are busy with the rest of it, and the next
    # burst is posted as Redis goes down (or once the worker is dead).
    bursts = [requests[k * total // (size.kills + 1):(k + 1) * total // (size.kills + 1)]
              for k in range(size.kills + 1)]
    proceed = [threading.Event() for _ in bursts]
    posted = [0]

    def poster() -> None:
        try:
            with service(connect(url, timeout=0.5, connect_timeout=0.5), keys) as http:
                for burst, go in zip(bursts, proceed, strict=True):
                    post_all(http, burst)
                    go.wait(timeout=300)
        except Exception:  # reported in the row
            posting_failed.append(traceback.format_exc())

    def post_all(http: TestClient, burst: Sequence[Request]) -> None:
        for provider, body, events in burst:
            attempt = 0
            first = time.monotonic()
            while True:
                # signed anew each time, as a provider retries a 503
                status, answer = post(http, keys, provider, body, batch=True,
                                      now=time.time() + attempt % 200)
                statuses[status] += 1
                if status == 202:
                    accepted.extend(events)
                    break
                if status != 503 or time.monotonic() - first > 60:
                    refused.append(f"{provider}: {status} {answer.get('reason')}")
                    break
                attempt += 1
                time.sleep(0.05)
            posted[0] += 1

    def start_worker(n: int) -> None:
        workers.append(worker_process(url, RULES, f"{target}-{n}", logs))

    def all_registered() -> bool:
        """Every live worker is in the registry: past its start, where a SIGTERM would find
        it without its handler."""
        try:
            return all(monitor.zscore(KEYS.workers, f"{target}-{n}") is not None
                       for n, w in enumerate(workers) if w.poll() is None)
        except redis.RedisError:
            return False

    kills = mid_stream = holding = 0
    details: list[str] = []
    thread = threading.Thread(target=poster)
    try:
        for n in range(2):
            start_worker(n)
        wait_for(all_registered, "the workers registered", 120)
        thread.start()
        for k in range(size.kills):
            begun = sum(len(b) for b in bursts[:k]) + 1
            end = begun - 1 + len(bursts[k])
            wait_for(lambda begun=begun: posted[0] >= begun or not thread.is_alive(),  # type: ignore[misc]
                     "a burst begun", 120)
            # while the burst arrives the workers apply it: look for one holding entries
            busy = _holding_pending(monitor, lambda end=end: posted[0] >= end  # type: ignore[misc]
                                    and _drained_now(monitor))
            holding += busy is not None
            mid_stream += not _drained_now(monitor)
            if target == "worker":
                live = {f"{target}-{n}": w for n, w in enumerate(workers) if w.poll() is None}
                victim = live.get(busy or "") or rng.choice(list(live.values()))
                os.kill(victim.pid, signal.SIGKILL)
                victim.wait(timeout=10)
                start_worker(len(workers))
                proceed[k].set()
            else:
                proceed[k].set()
                redis_server.kill_and_restart(rng.uniform(0.05, 0.5))
            kills += 1
        proceed[-1].set()
        thread.join(timeout=600)
        if thread.is_alive():
            details.append("posting did not finish within 600 s")
        wait_for(lambda: _drained_now(monitor), "the workers drained the streams", 180)
        wait_for(all_registered, "the last worker registered", 120)
    except TimeoutError as exc:
        details.append(str(exc))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        exits = []
        for worker in workers:
            try:
                exits.append(worker.wait(timeout=20))
            except subprocess.TimeoutExpired:
                worker.kill()
                exits.append(worker.wait())
        logs.close()
    try:
        client = connect(url, timeout=5.0)
        store = RedisStore(client)
        keys_accepted = [event_key(e) for e in accepted]
        applied = store.applied(keys_accepted)
        rejected = {r.event for r in read_rejects(client, KEYS, count=1_000_000)}
        lost = sorted({k for k in keys_accepted if k not in applied and k not in rejected})
        entries = list(store.ledger())
        twice_lines, twice_yen = paid_twice(entries)
        raw_stats: dict[bytes, bytes] = client.hgetall(KEYS.stats)  # type: ignore[assignment]
        stats = {k.decode(): int(v) for k, v in raw_stats.items()}
        _, sink = reference(catalog, accepted)
        differences = _differences(net_points(entries), net_points(sink.entries))
        client.close()
    finally:
        monitor.close()
        redis_server.stop()
    crashed = [code for code in exits if code not in (0, -signal.SIGKILL)]
    details += [f"lost: {k}" for k in lost[:20]]
    details += [f"differs from the in-order replay: {d}" for d in differences[:10]]
    details += [f"refused: {r}" for r in refused[:10]] + posting_failed[:1]
    if twice_lines:
        details.append(f"{twice_lines} ledger line(s) repeat an (event, program)")
    if crashed:
        details.append(f"worker exit statuses other than 0 or SIGKILL: {crashed}")
    if kills < size.kills or not mid_stream or not holding:
        details.append(f"of {kills} kill(s), {mid_stream} came mid-stream, {holding} while a "
                       "worker held unacknowledged entries")
    if len(accepted) == 0:
        details.append("nothing was accepted")
    if details:
        details.append(f"reproduce: python -m load.faults --only '{target} kills' "
                       f"--seed {seed} --keep DIR")
    retried = statuses.get(503, 0)
    distinct = len(set(keys_accepted))
    counted = (f"; counted {stats.get('applied', 0):,} applied, {stats.get('duplicate', 0):,} "
               f"duplicates for {distinct:,} distinct events")
    what = ("worker processes SIGKILLed" if target == "worker" else
            "redis-server SIGKILLed and restarted (AOF, appendfsync always)")
    return Row(f"{target} kills", f"{total:,} requests, {len(accepted):,} events accepted, "
               f"{kills} kills", "0 accepted events lost; 0 yen twice",
               f"{kills} {what} mid-stream ({holding} while a worker held unacknowledged "
               f"entries); {len(lost)} lost, {twice_yen:,} yen twice, "
               f"{len(differences)} differences from the in-order replay, "
               f"{retried} 503s posted again{counted}", not details, details=details)


def _holding_pending(client: redis.Redis, over: Callable[[], bool],
                     seconds: float = 30.0) -> str | None:
    """The name of a worker holding entries it read and has not acknowledged (the holder of
    the lease of a shard with pending entries), as soon as there is one; None once ``over()``
    says there will be none (or after ``seconds``)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not over():
        with contextlib.suppress(redis.RedisError):
            shards = KEYS.all_shards(shard_count(client, KEYS))
            for shard, (_, pending) in lag_and_pending(client, KEYS, shards).items():
                token = client.get(KEYS.lease(shard)) if pending else None
                if isinstance(token, bytes):
                    return token.decode().split("/")[0]
    return None


def _drained_now(client: redis.Redis) -> bool:
    try:
        return drained(client)
    except redis.RedisError:
        return False


# -- small budgets, concurrent workers ---------------------------------------------------------

_TIGHT = """\
id: faults-tight-yen
name: 障害試験 千代田区 +25% (予算わずか)
jurisdiction: "131016"
phase: 2
on: [purchase, charge]
restriction: {{persons: anyone, stores: in_region}}
conditions:
  period: {{from: 2022-01-01, to: 2023-02-28}}
award: {{kind: premium, rate: 25%, cap: 3000}}
budget: {{yen: {yen}}}
assumptions: a program of the fault suite whose budget in yen runs out at once
---
id: faults-tight-persons
name: 障害試験 千代田区 +10% (人数わずか)
jurisdiction: "131016"
phase: 2
on: [purchase, charge]
restriction: {{persons: anyone, stores: in_region}}
providers:
  - {{provider: quickpay, persons: {allocation}}}
  - {{provider: transitcard}}
  - {{provider: carrierpay}}
  - {{provider: towncoin}}
conditions:
  period: {{from: 2022-01-01, to: 2023-02-28}}
award: {{kind: premium, rate: 10%, cap: 1000}}
budget: {{persons: {heads}}}
assumptions: a program of the fault suite whose budget in persons runs out at once
"""


def _tight_rules(folder: Path, yen: int, heads: int, allocation: int) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(RULES, folder)
    place = folder / "131016-faults"
    place.mkdir()
    yen_part, persons_part = _TIGHT.format(yen=yen, heads=heads,
                                           allocation=allocation).split("---\n")
    (place / "tight-yen.yaml").write_text(yen_part, encoding="utf-8")
    (place / "tight-persons.yaml").write_text(persons_part, encoding="utf-8")
    return folder


def check_budgets(size: Sizes, seed: int, work: Path) -> Row:
    """Concurrent workers on tiny budgets in yen and persons: 0 yen and 0 persons over."""
    allocation = max(1, size.budget_heads // 4)
    rules = _tight_rules(work / "rules-budgets", size.budget_yen, size.budget_heads, allocation)
    catalog = load_catalog(rules)
    scenario = build(size.budget_persons, size.budget_transactions, seed=seed, refunds=False)
    events = [*scenario.applications, *scenario.transactions]
    with RedisServer() as server:
        enqueue(server.client(), events, per_entry=5)
        workers = run_workers(server, catalog, size.budget_workers, count=2, lease_ms=1000,
                              retry_delay_ms=20, retry_window_ms=300)
        store = RedisStore(server.client())
        entries = list(store.ledger())
        totals = store.totals()
    spent = sum(e.points for e in entries if e.program == "faults-tight-yen")
    spent_totals = sum(v for (program, _), v in totals.items() if program == "faults-tight-yen")
    heads = {e.person for e in entries if e.program == "faults-tight-persons"}
    allocated = {e.person for e in entries
                 if e.program == "faults-tight-persons" and e.provider == "quickpay"}
    over_yen = max(0, spent - size.budget_yen)
    over_heads = max(0, len(heads) - size.budget_heads) + max(0, len(allocated) - allocation)
    busy = sum(1 for w in workers if w.report.entries)
    details = []
    if over_yen or over_heads:
        details.append(f"over: {over_yen} yen, {over_heads} persons")
    if spent != spent_totals:
        details.append(f"the ledger says {spent} yen, the totals {spent_totals}")
    if spent < size.budget_yen or len(heads) < size.budget_heads or len(allocated) < allocation:
        details.append("a budget was not used up: the demand did not test it")
    if busy < 2:
        details.append(f"only {busy} worker(s) did any work")
    if details:
        details.append(f"reproduce: python -m load.faults --only 'small budgets' --seed {seed}")
    return Row("small budgets",
               f"{len(events):,} events, {size.budget_workers} concurrent workers",
               "0 yen over; 0 persons over",
               f"{spent:,} of {size.budget_yen:,} yen ({over_yen} over), {len(heads)} of "
               f"{size.budget_heads} persons and {len(allocated)} of {allocation} quickpay "
               f"allocation ({over_heads} over); {busy} workers applied",
               not details, details=details)


# -- fuzzed payloads over HTTP -----------------------------------------------------------------

_MARK = "faults:mark"
_SYNTAX = {"carrierpay": "xml", "towncoin": "csv"}


class _StateWatch:
    """Which keys a request changed: keyspace notifications name the keys written, and each
    one's contents (``DUMP``, and whether it has a time to live) are compared with what they
    were before it. A key written and put back (the replay guard's place, taken and given back
    by a refused request) is not a change."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        client.config_set("notify-keyspace-events", "Eg$lshzt")
        self.pubsub = client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.psubscribe("__keyevent@0__:*")
        self.pubsub.subscribe(_MARK)
        self.state = {key: self._contents(key) for key in client.scan_iter(count=1000)}
        self.marks = 0
        self._drain()

    def _contents(self, key: bytes) -> tuple[bytes, bool] | None:
        pipe = self.client.pipeline(transaction=True)
        pipe.dump(key)
        pipe.pttl(key)
        dumped, ttl = pipe.execute()
        return None if dumped is None else (bytes(dumped), int(ttl) >= 0)

    def _drain(self) -> set[bytes]:
        """The keys written since the last call (up to a mark published now)."""
        self.marks += 1
        mark = str(self.marks).encode()
        self.client.publish(_MARK, mark)
        touched: set[bytes] = set()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            message = self.pubsub.get_message(timeout=1.0)
            if message is None:
                continue
            if message["type"] == "pmessage":
                touched.add(message["data"])
            elif message["type"] == "message" and message["data"] == mark:
                return touched
        raise TimeoutError("keyspace notifications did not arrive")

    def changed(self) -> list[bytes]:
        """The keys whose contents changed since the last call."""
        out = []
        for key in sorted(self._drain()):
            now = self._contents(key)
            if now != self.state.get(key):
                out.append(key)
            self.state[key] = now
        return out

    def close(self) -> None:
        """Stop listening."""
        self.pubsub.close()
        self.client.config_set("notify-keyspace-events", "")


def _valid_bodies(seed: int) -> dict[str, list[bytes]]:
    """Valid native bodies of every sender: webhooks, deliveries, notifications, small CSV
    files, and the platforms' canonical lines."""
    scenario = build(24, 240, seed=seed)
    bodies = {p: list(scenario.native.get(p, [])) for p in ("quickpay", "transitcard",
                                                               "carrierpay")}
    header, *lines = scenario.native["towncoin"][0].split(b"\r\n")
    lines = [line for line in lines if line]
    bodies["towncoin"] = [b"\r\n".join([header, *lines[i:i + 4]]) + b"\r\n"
                          for i in range(0, len(lines), 4)]
    bodies["mykey"] = [e.model_dump_json().encode() for e in scenario.applications]
    bodies["mykey"] += [orjson.dumps({"type": kind, "source": "mykey", "id": f"{kind[:2]}{n}",
                                      "person": a.person, "at": "2022-07-01T09:00:00+09:00"})
                        for n, a in enumerate(scenario.applications[:8])
                        for kind in ("health_insurance_registration",
                                     "public_funds_account_registration")]
    bodies["juki-net"] = [orjson.dumps({"type": "residence_change", "source": "juki-net",
                                        "id": f"m{n}", "person": a.person,
                                        "at": "2022-04-01T09:00:00+09:00",
                                        "residence": "342092"})
                          for n, a in enumerate(scenario.applications)]
    return bodies


def _as_batch(sender: str, parts: Sequence[bytes]) -> bytes:
    """Native bodies as one batch body of ``sender`` (a CSV file is a batch itself: the
    last part is taken)."""
    if sender == "towncoin":
        return parts[-1]
    if sender == "carrierpay":
        return b"[" + b",".join(orjson.dumps(p.decode("utf-8", "replace")) for p in parts) + b"]"
    if sender in ("mykey", "juki-net"):
        return b"\n".join(parts)
    return b"[" + b",".join(parts) + b"]"


def _post_oddly(http: TestClient, keys: dict[str, bytes], rng: random.Random, sender: str,
                body: bytes) -> tuple[str, int, dict[str, Any]]:
    """``body`` sent otherwise than a provider signs it: no signature, a wrong or retired
    one, an odd timestamp, another signer, an unknown or odd path, a query or method that
    was not signed; (what was done, status, answer)."""
    path = f"/providers/{sender}/transactions"
    headers = sign(sender, keys[sender], body, path=path)
    target, method = path, "POST"
    how = rng.choice(["unsigned", "wrong signature", "v1 signature", "stale", "future",
                      "timestamp not digits", "timestamp huge", "another signer",
                      "unknown provider", "odd path", "unsigned query", "odd query", "PUT",
                      "signature not ASCII"])
    if how == "unsigned":
        headers = {}
    elif how == "wrong signature":
        headers[HEADER_SIGNATURE] = "v2=" + "0" * 64
    elif how == "v1 signature":
        headers[HEADER_SIGNATURE] = "v1=" + headers[HEADER_SIGNATURE][3:]
    elif how in ("stale", "future"):
        shift = -400 if how == "stale" else 400
        headers = sign(sender, keys[sender], body, path=path, now=time.time() + shift)
    elif how == "timestamp not digits":
        headers[HEADER_TIMESTAMP] = rng.choice(["1e9", "-1", " 1", "١٢٣", "0x10", ""])
    elif how == "timestamp huge":
        headers[HEADER_TIMESTAMP] = "9" * rng.choice((13, 40, 5000))
    elif how == "another signer":
        other = rng.choice([s for s in SENDERS if s != sender])
        headers = sign(other, keys[other], body, path=path)
    elif how == "unknown provider":
        target = "/providers/nobody/transactions"
        headers = sign(sender, keys[sender], body, path=target)
    elif how == "odd path":
        target = rng.choice([f"/providers/{sender}%2Ftransactions", f"/providers/{sender}/",
                             f"/providers/{sender}/transactions/..", "/providers//transactions",
                             f"/providers/{sender}/transactions%00"])
        headers = sign(sender, keys[sender], body, path=target)
    elif how == "unsigned query":
        target = path + "?lenient=true"
    elif how == "odd query":
        query = rng.choice(["lenient=%ff", "lenient=true&lenient=false", "lenient",
                            "a=" + "b" * 5000])
        headers = sign(sender, keys[sender], body, path=path, query=query)
        target = f"{path}?{query}"
    elif how == "PUT":
        method = "PUT"
        headers = sign(sender, keys[sender], body, path=path, method="PUT")
    else:
        headers[HEADER_SIGNATURE] = "v2=" + "é" * 64
    # a header that is not ASCII goes as its UTF-8 bytes, as a client may send it
    raw = {k: v if v.isascii() else v.encode() for k, v in headers.items()}
    response = http.request(method, target, content=body, headers=raw)
    try:
        answer = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        answer = {}
    return how, response.status_code, answer if isinstance(answer, dict) else {}


def check_payloads(size: Sizes, seed: int, work: Path) -> Row:
    """Mutated native bodies of every sender, signed and posted: 0 answers >= 500, 0
    tracebacks, 0 state changes from a refused request; a worker then evaluates what was
    accepted without a failure."""
    rng = random.Random(f"{seed}:payloads")
    valid = _valid_bodies(seed)
    keys = sender_secrets()
    statuses: Counter[int] = Counter()
    details: list[str] = []
    changes = server_errors = blind = 0
    with RedisServer() as server, _captured_logs(logging.DEBUG) as logs:
        with service(server.client(), keys) as http:
            for sender in SENDERS:  # the first write of each: the store's marker, K, streams
                status, answer = post(http, keys, sender, valid[sender][0])
                if status != 202:
                    details.append(f"a valid {sender} body was refused: {status} {answer}")
            watch = _StateWatch(server.client())
            for index in range(size.payloads):
                sender = rng.choice(SENDERS)
                base = rng.choice(valid[sender])
                kind, body = mutate_payload(rng, base, _SYNTAX.get(sender, "json"))
                batch = rng.random() < 0.3
                lenient = batch and rng.random() < 0.5
                if batch:
                    beside = [rng.choice(valid[sender])] if rng.random() < 0.5 else []
                    body = _as_batch(sender, [*beside, body])
                try:
                    if rng.random() < 0.1:  # a valid body, sent otherwise than signed
                        kind, body, batch, lenient = "sent otherwise", base, False, False
                        how, status, answer = _post_oddly(http, keys, rng, sender, base)
                        kind += f": {how}"
                    else:
                        status, answer = post(http, keys, sender, body, batch=batch,
                                              lenient=lenient)
                except Exception as exc:  # the client could not even send it
                    status, answer = -1, {"detail": repr(exc)}
                statuses[status] += 1
                changed = watch.changed()
                if status == 202 and not changed:
                    blind += 1  # the watch must see what an accepted request wrote
                where = (f"#{index} {sender} {'batch' if batch else 'transactions'}"
                         f"{' lenient' if lenient else ''} ({kind})")
                if status >= 500 or status < 0:
                    server_errors += 1
                    details.append(f"{where}: {status} {answer}; body {_short(body)}")
                elif status != 202 and changed:
                    changes += 1
                    details.append(f"{where}: refused ({status} {answer.get('reason')}) but "
                                   f"changed {[k.decode(errors='replace') for k in changed]}")
            watch.close()
        worker = make_worker(server, load_catalog(RULES), "fuzz", count=50,
                             retry_delay_ms=20, retry_window_ms=200)
        try:
            worker.run(until_empty=True)
        except Exception:  # reported in the row
            details.append("the worker stopped: " + traceback.format_exc())
        worker.engine.close()
        applied = worker.report.statuses.get("applied", 0)
        rejected = sum(worker.report.rejected.values())
        failures = worker.report.failures
    if failures:
        details.append(f"the worker failed {failures} time(s) on accepted fuzzed events")
    if blind:
        details.append(f"{blind} accepted request(s) showed no change: the watch is blind")
    details += [f"traceback logged: {_short(line, 400)}" for line in logs.tracebacks[:5]]
    if details:
        details.append(f"reproduce: python -m load.faults --only 'fuzzed payloads' --seed {seed}")
    summary = ", ".join(f"{n:,} × {s}" for s, n in sorted(statuses.items()))
    return Row("fuzzed payloads (HTTP)", f"{size.payloads:,} requests, {len(SENDERS)} senders",
               "0 answers >= 500; 0 tracebacks; 0 state changes from a refused request",
               f"{server_errors} >= 500 ({summary}); {len(logs.tracebacks)} tracebacks; "
               f"{changes} state changes; worker: {applied:,} applied, {rejected:,} "
               f"refused, {failures} failures", not details, details=details)


# -- fuzzed rule files -------------------------------------------------------------------------


def check_rule_files(size: Sizes, seed: int, work: Path) -> Row:
    """Mutated rule files: loaded, or refused with located problems only; 0 tracebacks; a
    refused edit leaves the rules in force."""
    rng = random.Random(f"{seed}:rules")
    rules = work / "rules-fuzz"
    shutil.copytree(RULES, rules)
    names = sorted(str(p.relative_to(RULES)) for p in RULES.rglob("*.yaml"))
    engine = Engine(load_catalog(rules), MemoryStore())
    watcher = CatalogWatcher(rules, engine, interval=0)
    loaded = refused = problems = reloads = kept = 0
    details: list[str] = []
    crashes = unlocated = changed = 0
    for index in range(size.rule_files):
        name = rng.choice(names)
        path = rules / name
        original = (RULES / name).read_text(encoding="utf-8")
        how, data = mutate_rule_file(rng, original)
        where = f"#{index} {name} ({how})"
        path.write_bytes(data)
        try:
            load_catalog(rules)
            loaded += 1
        except RuleFileError as exc:
            refused += 1
            problems += len(exc.problems)
            bad = [p for p in exc.problems if p.line < 1 or not p.file]
            if not exc.problems or bad:
                unlocated += 1
                details.append(f"{where}: problems not located: {bad or 'none given'}")
        except Exception:  # a traceback is what this check looks for
            crashes += 1
            details.append(f"{where}: {traceback.format_exc(limit=3)}")
        if index % 5 == 0:  # a worker's reload, on a share of them (it loads twice more)
            before = engine.catalog
            result = watcher.poll(force=True)
            reloads += 1
            if result.status == "rejected":
                if engine.catalog is not before:
                    changed += 1
                    details.append(f"{where}: refused on reload, yet the rules changed")
                kept += 1
                if any("could not be loaded" in p.message for p in result.problems):
                    crashes += 1
                    details.append(f"{where}: the reload caught a loader's error: "
                                   f"{result.problems[0].message}")
            path.write_text(original, encoding="utf-8")
            watcher.poll(force=True)
        else:
            path.write_text(original, encoding="utf-8")
    engine.close()
    if details:
        details.append(f"reproduce: python -m load.faults --only 'fuzzed rule files' "
                       f"--seed {seed}")
    return Row("fuzzed rule files", f"{size.rule_files:,} mutated files",
               "located problems only; 0 tracebacks; a refused edit changes no rule in force",
               f"{loaded} loaded, {refused} refused ({problems:,} located problems, "
               f"{unlocated} unlocated); {crashes} tracebacks; {reloads} reloads, {kept} "
               f"refused, {changed} changed the rules in force", not details, details=details)


# -- the My Number matrix ----------------------------------------------------------------------

# Everything but the digits goes: whatever separates the digits of a number found in a value,
# it is found once they are in a row (another number's digits beside them cannot hide it).
_NOT_DIGITS = re.compile(r"[^0-9]+")
_CHARACTER_REFERENCE = re.compile(r"&#(?:x([0-9a-fA-F]{1,6})|([0-9]{1,7}));")


def _referenced(match: re.Match[str]) -> str:
    """An XML character reference as the character (the search reads them as XML does)."""
    code = int(match.group(1), 16) if match.group(1) else int(match.group(2))
    return chr(code) if code <= 0x10FFFF else match.group()


class _Leaks:
    """Searches text for the My Numbers put in, however written, and with the guard."""

    def __init__(self) -> None:
        self.numbers: set[str] = set()
        self.searched = 0
        self.found: dict[str, list[str]] = {}
        """Leaks by surface: where, and which number."""
        self.others: dict[str, list[str]] = {}
        """Values the guard takes for a My Number that none of ours is in (a hex id or a
        signature that happens to hold 12 digits with a valid check digit)."""

    def number(self, rng: random.Random) -> str:
        """A new valid My Number, remembered."""
        value = valid_my_number(rng)
        self.numbers.add(value)
        return value

    def search(self, surface: str, where: str, raw: bytes | str) -> None:
        """Search one value of ``surface`` (Redis, the ledger, rejects, answers, logs)."""
        data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
        self.searched += 1
        plain = [n for n in self.numbers if n.encode() in data]
        if not plain and (any(c in data for c in b"0123456789") or not data.isascii()):
            text = _CHARACTER_REFERENCE.sub(_referenced, data.decode("utf-8", "replace"))
            squeezed = _NOT_DIGITS.sub("", plain_digits(text.encode(
                "utf-8", "surrogatepass")).decode("utf-8", "replace"))
            plain = [n for n in self.numbers if n in squeezed]
        if plain:
            self.found.setdefault(surface, []).append(f"{where}: {plain[0]} in {_short(data)}")
        elif carries_my_number(data):
            self.others.setdefault(surface, []).append(f"{where}: {_short(data)}")

    def total(self) -> int:
        """How many values carried one of the numbers."""
        return sum(len(v) for v in self.found.values())


def _scan_redis(client: redis.Redis, leaks: _Leaks, surface: str = "redis") -> int:
    """Search every key and every value of every type; the number of keys."""
    count = 0
    for key in client.scan_iter(count=1000):
        count += 1
        name = key.decode("utf-8", "replace")
        leaks.search(surface, "key name", key)
        kind = client.type(key)
        values: Iterable[bytes | str] = []
        if kind == b"string":
            values = [client.get(key) or b""]
        elif kind == b"hash":
            values = (part for pair in client.hscan_iter(key, count=1000) for part in pair)
        elif kind == b"list":
            values = client.lrange(key, 0, -1)
        elif kind == b"set":
            values = client.sscan_iter(key, count=1000)
        elif kind == b"zset":
            values = (str(part) if isinstance(part, float) else part
                      for pair in client.zscan_iter(key, count=1000) for part in pair)
        elif kind == b"stream":
            values = _stream_values(client, key)
        for value in values:
            leaks.search(surface, name, value)
    return count


def _stream_values(client: redis.Redis, key: bytes) -> Iterator[bytes]:
    start = "-"
    while True:
        rows: Any = client.xrange(key, start, "+", count=1000) or []
        for entry_id, fields in rows:
            yield entry_id
            for name, value in fields.items():
                yield name
                yield value
        if len(rows) < 1000:
            break
        start = "(" + rows[-1][0].decode()
    groups: Any = client.xinfo_groups(key)
    for group in groups:
        yield group["name"]
        for consumer in client.xinfo_consumers(key, group["name"]):
            yield consumer["name"]


_CANONICAL: dict[str, dict[str, Any]] = {
    "mynapoint_application": {
        "type": "mynapoint_application", "source": "mykey", "id": "a", "person": "MKZ1",
        "at": "2022-02-01T09:00:00+09:00", "phase": 2, "provider": "quickpay",
        "card_applied_on": "2021-12-01", "residence": "131016", "birth_date": "1980-01-01",
        "children_birth_dates": ["2020-06-01"], "applied_in_phase1": False, "household": "H1"},
    "health_insurance_registration": {
        "type": "health_insurance_registration", "source": "mykey", "id": "h",
        "person": "MKZ1", "at": "2022-07-01T09:00:00+09:00"},
    "public_funds_account_registration": {
        "type": "public_funds_account_registration", "source": "mykey", "id": "f",
        "person": "MKZ1", "at": "2022-07-01T09:00:00+09:00"},
    "residence_change": {
        "type": "residence_change", "source": "juki-net", "id": "m", "person": "MKZ1",
        "at": "2022-04-01T09:00:00+09:00", "residence": "342092"},
    "purchase": {
        "type": "purchase", "source": "quickpay", "id": "p", "person": "MKZ1",
        "at": "2022-03-01T12:00:00+09:00", "provider": "quickpay", "amount": 4000,
        "store": "S1", "store_municipality": "131016"},
    "charge": {
        "type": "charge", "source": "transitcard", "id": "c", "person": "MKZ1",
        "at": "2022-03-01T12:00:00+09:00", "provider": "transitcard", "amount": 3000,
        "store": "S2", "store_municipality": "131016"},
    "refund": {
        "type": "refund", "source": "quickpay", "id": "r", "person": "MKZ1",
        "at": "2022-03-02T12:00:00+09:00", "provider": "quickpay", "transaction": "p",
        "amount": 1000},
    "participation": {
        "type": "participation", "source": "kofu", "id": "k", "person": "MKZ1",
        "at": "2022-05-01T09:00:00+09:00", "municipality": "192015",
        "activity": "health-walk", "health_points": 10},
    "lottery_draw": {
        "type": "lottery_draw", "source": "kumamoto", "id": "d", "person": "MKOFFICIAL",
        "at": "2023-04-03T10:00:00+09:00", "program": "kumamoto-health-lottery"},
}
_POSTED = {"mynapoint_application": "mykey", "health_insurance_registration": "mykey",
           "public_funds_account_registration": "mykey", "residence_change": "juki-net"}


def _forms(leaks: _Leaks, rng: random.Random) -> Iterator[tuple[str, str]]:
    """Every form, each of a new number."""
    for form in my_number_forms("0" * 12):
        yield form, my_number_forms(leaks.number(rng))[form]


def _variants(leaks: _Leaks, rng: random.Random, base: bytes, syntax: str,
              every: bool) -> Iterator[tuple[str, str, bytes]]:
    """(form, place, body): the numbers in every place of ``base``, in every form (``every``)
    or in every place once and every form once."""
    place = {"json": place_in_json, "xml": place_in_xml, "csv": place_in_csv}[syntax]
    placed: dict[str, list[tuple[str, bytes]]] = {}
    for form, text in _forms(leaks, rng):
        found = place(base, form, text)
        if found:
            placed[form] = found
    forms = sorted(placed)
    if every:
        for form in forms:
            for where, body in placed[form]:
                yield form, where, body
        return
    count = max(len(v) for v in placed.values())
    for index in range(count):  # each place once, the forms taking turns
        form = forms[index % len(forms)]
        if index < len(placed[form]):
            yield form, placed[form][index][0], placed[form][index][1]
    for form in forms:  # each form once more, in a place drawn at random
        where, body = rng.choice(placed[form])
        yield form, where, body


def check_my_numbers_service(size: Sizes, seed: int, work: Path) -> Row:
    """My Numbers in every form in every field of every sender's format, posted signed (alone,
    and in lenient batches beside a good record), then a worker: none in Redis, the ledger,
    the rejects, the answers or the logs."""
    rng = random.Random(f"{seed}:my-numbers:service")
    leaks = _Leaks()
    valid = _valid_bodies(seed)
    bases = {sender: valid[sender][0] for sender in ("quickpay", "transitcard", "carrierpay",
                                                      "towncoin")}
    bases["mykey"] = orjson.dumps(_CANONICAL["mynapoint_application"])
    bases["juki-net"] = orjson.dumps(_CANONICAL["residence_change"])
    keys = sender_secrets()
    statuses: Counter[int] = Counter()
    answers: list[bytes] = []
    requests = 0
    details: list[str] = []
    with RedisServer() as server, _captured_logs(logging.DEBUG) as logs:
        with service(server.client(), keys) as http:
            for sender, base in bases.items():
                syntax = _SYNTAX.get(sender, "json")
                for form, where, body in _variants(leaks, rng, base, syntax,
                                                   size.every_form_everywhere):
                    tries = [(body, False)]
                    if sender != "towncoin" and rng.random() < 0.3:
                        tries.append((_as_batch(sender, [valid[sender][1], body]), True))
                    for sent, batch in tries:
                        status, answer = post(http, keys, sender, sent, batch=batch,
                                              lenient=batch)
                        requests += 1
                        statuses[status] += 1
                        answers.append(orjson.dumps(answer))
                        if status >= 500:
                            details.append(f"{sender} {where} ({form}): {status} {answer}")
        worker = make_worker(server, load_catalog(RULES), "matrix", count=50,
                             retry_delay_ms=20, retry_window_ms=200)
        worker.run(until_empty=True)
        worker.engine.close()
        client = server.client()
        keys_scanned = _scan_redis(client, leaks)
        store = RedisStore(client)
        for entry in store.ledger():
            leaks.search("ledger", entry.event, entry.to_json())
        for reject in read_rejects(client, KEYS, count=1_000_000):
            leaks.search("rejects", reject.event, orjson.dumps(reject.doc()))
    for n, text in enumerate(answers):
        leaks.search("answers", f"answer #{n}", text)
    for n, line in enumerate(logs.lines):
        leaks.search("logs", f"log line #{n}", line)
    return _matrix_row("my numbers (service)", f"{requests:,} requests, {len(bases)} senders, "
                       f"{len(leaks.numbers):,} numbers", leaks, details + [
                           f"traceback logged: {_short(t, 400)}" for t in logs.tracebacks[:3]],
                       f"{keys_scanned:,} keys, {len(logs.lines):,} log lines, "
                       f"{statuses.get(202, 0)} accepted lenient batches", seed)


def check_my_numbers_request_line(size: Sizes, seed: int, work: Path) -> Row:
    """My Numbers outside the body: as the provider in the path, as the signer, as the
    timestamp, in the query: none echoed in an answer, a log line or Redis."""
    rng = random.Random(f"{seed}:my-numbers:request-line")
    leaks = _Leaks()
    keys = sender_secrets()
    body = _valid_bodies(seed)["quickpay"][0]
    statuses: Counter[int] = Counter()
    answers: list[tuple[str, bytes]] = []
    url_safe = ("plain", "colons", "dots", "underscores", "hyphens 3-3-3-3")
    with RedisServer() as server, _captured_logs(logging.DEBUG) as logs:
        with service(server.client(), keys) as http:
            for form in url_safe:
                for endpoint in ("transactions", "batch"):
                    number = my_number_forms(leaks.number(rng))[form]
                    probes: list[tuple[str, str, dict[str, str]]] = []
                    path = f"/providers/{number}/{endpoint}"
                    probes.append((f"provider {form} in the path ({endpoint})", path,
                                   sign("quickpay", keys["quickpay"], body, path=path)))
                    path = f"/providers/quickpay/{endpoint}"
                    probes.append((f"signer {form} ({endpoint})", path,
                                   sign(number, b"s" * 32, body, path=path)))
                    stamped = sign("quickpay", keys["quickpay"], body, path=path)
                    stamped[HEADER_TIMESTAMP] = number
                    probes.append((f"timestamp {form} ({endpoint})", path, stamped))
                    query = f"lenient={number}"
                    probes.append((f"query {form} ({endpoint})", f"{path}?{query}",
                                   sign("quickpay", keys["quickpay"], body, path=path,
                                        query=query)))
                    for what, target, headers in probes:
                        response = http.post(target, content=body, headers=headers)
                        statuses[response.status_code] += 1
                        answers.append((what, response.content))
        keys_scanned = _scan_redis(server.client(), leaks)
    for what, text in answers:
        leaks.search("answers", what, text)
    for n, line in enumerate(logs.lines):
        leaks.search("logs", f"log line #{n}", line)
    summary = ", ".join(f"{n} × {s}" for s, n in sorted(statuses.items()))
    return _matrix_row("my numbers (request line)",
                       f"{len(answers)} requests, {len(url_safe)} forms",
                       leaks, [], f"{summary}; {keys_scanned} keys, {len(logs.lines)} log lines",
                       seed, invariant="0 echoes in answers, logs or Redis")


def _matrix_row(name: str, size: str, leaks: _Leaks, details: list[str], scanned: str,
                seed: int, *, invariant: str = "0 leaks into Redis, the ledger, rejects, "
                "answers or logs") -> Row:
    for surface, found in sorted(leaks.found.items()):
        details += [f"leak into {surface}: {f}" for f in found[:10]]
    if details:
        details.append(f"reproduce: python -m load.faults --only '{name}' --seed {seed} "
                       "--keep DIR")
    others = sum(len(v) for v in leaks.others.values())
    by_surface = ", ".join(f"{s} {len(v)}" for s, v in sorted(leaks.found.items())) or "none"
    observed = (f"{leaks.total()} leaks ({by_surface}) in {leaks.searched:,} values "
                f"searched ({scanned})")
    if others:
        observed += (f"; {others} other value(s) the guard flags, none of ours (system ids "
                     "with 12 digits that happen to check)")
        details += [f"not ours, flagged by the guard: {s}: {v[0]}"
                    for s, v in sorted(leaks.others.items())]
    return Row(name, size, invariant, observed, leaks.total() == 0 and not any(
                   d for d in details if not d.startswith("not ours")), details=details)


def _canonical_lines(leaks: _Leaks, rng: random.Random, every: bool) -> list[bytes]:
    """Each canonical event type with the numbers in every field (ids kept apart)."""
    lines = []
    for n, (_, template) in enumerate(sorted(_CANONICAL.items())):
        base = orjson.dumps({**template, "id": f"{template['id']}-{n}"})
        for index, (_, _, body) in enumerate(_variants(leaks, rng, base, "json", every)):
            doc = body.replace(f'"{template["id"]}-{n}"'.encode(),
                               f'"{template["id"]}-{n}-{index}"'.encode())
            lines.append(doc)
    return lines


def check_my_numbers_replay(size: Sizes, seed: int, work: Path) -> Row:
    """Canonical events with My Numbers in every field, in every form, among a generated
    stream, replayed by ``pointengine replay`` on the embedded store, on Redis and on Redis
    held exclusively: none in the ledger, the rejects, the summary, the state, the output or
    Redis."""
    rng = random.Random(f"{seed}:my-numbers:replay")
    leaks = _Leaks()
    stream = work / "matrix-stream.jsonl"
    generate(stream, persons=60, events=600, seed=seed)
    plain = stream.read_bytes().splitlines()
    odd = _canonical_lines(leaks, rng, size.every_form_everywhere)
    mixed = list(plain)
    for line in odd:
        mixed.insert(rng.randrange(len(mixed) + 1), line)
    events = work / "matrix-events.jsonl"
    events.write_bytes(b"\n".join(mixed) + b"\n")
    details: list[str] = []
    scanned = 0
    with RedisServer() as server:
        for mode in ("embedded", "redis", "redis --exclusive"):
            out = work / f"matrix-out-{mode.replace(' ', '').replace('--', '-')}"
            command = [sys.executable, "-m", "pointengine.cli.main", "replay", str(events),
                       "--rules", str(RULES), "--out", str(out)]
            if mode != "embedded":
                server.client().flushall()
                command += ["--redis", server.url]
                if "exclusive" in mode:
                    command.append("--exclusive")
            done = subprocess.run(command, cwd=ROOT, capture_output=True, timeout=300,
                                  check=False)
            if done.returncode != 0:
                details.append(f"replay ({mode}) exited {done.returncode}: "
                               f"{_short(done.stderr[-400:], 400)}")
            for stream_name, text in (("stdout", done.stdout), ("stderr", done.stderr)):
                for n, line in enumerate(text.splitlines()):
                    leaks.search("logs", f"{mode} {stream_name} line {n + 1}", line)
                if _tracebacks(text.decode(errors="replace")):
                    details.append(f"replay ({mode}): a traceback in its {stream_name}")
            for path in sorted(out.rglob("*")):
                if not path.is_file():
                    continue
                surface = ("ledger" if path.name.startswith("ledger") else
                           "rejects" if path.name.startswith("rejects") else path.name)
                for n, line in enumerate(path.read_bytes().splitlines()):
                    leaks.search(surface, f"{mode} {path.name} line {n + 1}", line)
            if mode != "embedded":
                scanned += _scan_redis(server.client(), leaks)
    return _matrix_row("my numbers (replay)",
                       f"{len(odd):,} events with a number among {len(plain):,}, 3 stores",
                       leaks, details, f"the output of 3 replays, {scanned:,} Redis keys",
                       seed)


# -- the suite ---------------------------------------------------------------------------------

Check = Callable[[Sizes, int, Path], Row]
CHECKS: dict[str, Check] = {
    "delivery": check_delivery,
    "worker kills": lambda size, seed, work: check_kills(size, seed, work, "worker"),
    "redis kills": lambda size, seed, work: check_kills(size, seed, work, "redis"),
    "small budgets": check_budgets,
    "fuzzed payloads": check_payloads,
    "fuzzed rule files": check_rule_files,
    "my numbers (service)": check_my_numbers_service,
    "my numbers (replay)": check_my_numbers_replay,
    "my numbers (request line)": check_my_numbers_request_line,
}
"""Every check, by the name ``--only`` takes, in the order they run."""


def run_checks(scale: str = "full", seed: int = 2022, *, only: Sequence[str] = (),
               keep: Path | None = None,
               progress: Callable[[str], None] | None = None) -> list[Row]:
    """Run the checks (``only`` these, when given) at ``scale``; one row each. A check that
    raises is a failed row with its traceback. ``keep`` keeps each check's work folder (logs,
    ledgers, the stream) there."""
    size = SCALES[scale]
    rows = []
    for name, check in CHECKS.items():
        if only and name not in only:
            continue
        if progress is not None:
            progress(f"{name} ...")
        folder = Path(tempfile.mkdtemp(prefix="pointengine-faults-"))
        started = time.perf_counter()
        try:
            row = check(size, seed, folder)
        except Exception:  # the suite goes on; the row says what happened
            row = Row(name, "-", "-", "the check raised", False,
                      details=[traceback.format_exc()])
        row.seconds = time.perf_counter() - started
        row.name = name
        rows.append(row)
        if keep is not None:
            target = keep / name.replace(" ", "-").replace("(", "").replace(")", "")
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(folder, target)
        shutil.rmtree(folder, ignore_errors=True)
        if progress is not None:
            progress(f"{name}: {'PASS' if row.ok else 'FAIL'} ({row.seconds:.1f} s)")
    return rows


def table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table."""
    out = ["| check | size | invariant | observed | result | time |",
           "|---|---|---|---|---|---|"]
    for row in rows:
        cells = [row.check, row.size, row.invariant, row.observed,
                 "PASS" if row.ok else "FAIL", f"{row.seconds:.1f} s"]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite, print the table (and what explains each failure); 1 if a check failed."""
    parser = argparse.ArgumentParser(prog="python -m load.faults", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=sorted(SCALES), default="full",
                        help="small: what the test suite runs; full: the suite's own size")
    parser.add_argument("--seed", type=int, default=2022, help="every input is drawn from it")
    parser.add_argument("--only", action="append", choices=list(CHECKS), default=[],
                        help="run this check (repeatable)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep each check's work folder (logs, ledgers, streams) here")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows = run_checks(args.scale, args.seed, only=args.only, keep=args.keep,
                      progress=lambda line: print(line, file=sys.stderr, flush=True))
    print(table(rows))
    print(f"\n{args.scale} scale, seed {args.seed}: {sum(r.ok for r in rows)} of {len(rows)} "
          f"checks passed in {time.perf_counter() - started:.0f} s "
          f"({os.cpu_count()} cores)")
    for row in rows:
        if row.details:
            print(f"\n{row.check}:")
            for line in row.details:
                print(f"  {line}")
    return 0 if all(row.ok for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmarks of the service: HTTP ingestion, Redis against embedded replay, 2 workers against 1.

Run ``python -m load.bench_service`` (``--help`` for sizes). Every figure runs against its own
``redis-server`` on a free loopback port, in the same run:

1. **replay**: the same generated canonical stream (:func:`pointengine.synth.generate.generate`)
   evaluated by one engine on the embedded MemoryStore, on the RedisStore held exclusively (the
   replay's ``--exclusive``: in memory under a lease, written back each batch) and on the
   RedisStore shared as the workers share it; events/s and the ratios (goal: Redis at least
   0.5 of embedded);
2. **http**: signed batch posts of every mock provider's native traffic to ``pointengine
   serve`` (uvicorn in a subprocess), ``--clients`` concurrent clients; transactions/s
   answered 202 (durably in the stream);
3. **workers**: the stream of (2) evaluated by one ``pointengine worker`` process, then by two;
   events/s of each and the ratio. Workers start idle; the clock starts when the group is
   pointed at the stream's first entry and stops when every event is counted.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson

from load.service_scenario import PROVIDERS, Scenario, batch_posts, build
from pointengine.catalog.loading import Catalog, load_catalog
from pointengine.decide.engine import Engine
from pointengine.replay.run import replay
from pointengine.service.signing import sign
from pointengine.service.streams import GROUP, StreamKeys, shard_count
from pointengine.store.memory import MemoryStore
from pointengine.store.redis_server import RedisServer, _free_port
from pointengine.store.redis_store import Keys, RedisStore
from pointengine.store.writeback import WriteBackStore

ROOT = Path(__file__).resolve().parents[1]


def bench_replay(catalog: Catalog, server: RedisServer, events: int, persons: int,
                 max_batch: int, work: Path) -> dict[str, float]:
    """Events/s of one replay on each store: ``embedded``, ``exclusive`` (Redis under a
    lease) and ``redis`` (shared), with their points and ratios to the embedded store."""
    from pointengine.synth.generate import generate

    stream = work / f"events-{persons}-{events}.jsonl"
    generate(stream, persons=persons, events=events, seed=2022)
    figures: dict[str, float] = {}
    for name in ("embedded", "exclusive", "redis"):
        store: MemoryStore | RedisStore
        if name == "embedded":
            store = MemoryStore()
        else:
            client = server.client()
            client.flushall()
            store = RedisStore(client, max_batch=max_batch)
            if name == "exclusive":
                store = WriteBackStore(store)
        engine = Engine(catalog, store)
        report = replay(stream, engine)
        engine.close()
        figures[name] = report.events_per_second
        figures[f"{name}_points"] = float(sum(report.totals.values()))
        store.close()
    figures["exclusive_ratio"] = figures["exclusive"] / figures["embedded"]
    figures["ratio"] = figures["redis"] / figures["embedded"]
    return figures


def batches(scenario: Scenario, size: int) -> Iterator[tuple[str, bytes, int]]:
    """(provider, body, native bodies or lines) of every batch post, applications first."""
    for provider, body, natives in batch_posts(scenario, size):
        yield provider, body, len(natives)


@contextmanager
def service(redis_url: str, keys: dict[str, str]) -> Iterator[str]:
    """``pointengine serve`` in a subprocess; its base URL."""
    port = _free_port()
    env = dict(os.environ)
    env.update({f"POINTENGINE_SECRET_{p.upper().replace('-', '_')}": s for p, s in keys.items()})
    process = subprocess.Popen(
        [sys.executable, "-m", "pointengine.cli.main", "serve", "--port", str(port),
         "--redis-url", redis_url, "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError("the service did not start")
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)


def bench_http(redis_url: str, scenario: Scenario, size: int, clients: int) -> dict[str, float]:
    """Transactions/s of signed batch posts, ``clients`` at a time."""
    keys = {p: secrets.token_hex(16) for p in (*PROVIDERS, "mykey")}
    work = list(batches(scenario, size))
    lock = threading.Lock()
    done = {"transactions": 0, "refused": 0}

    def client(part: Sequence[tuple[str, bytes, int]], base: str) -> None:
        with httpx.Client(base_url=base, timeout=60) as http:
            for provider, body, n in part:
                path = f"/providers/{provider}/batch"
                headers = sign(provider, keys[provider].encode(), body, path=path)
                response = http.post(path, content=body, headers=headers)
                with lock:
                    if response.status_code == 202:
                        done["transactions"] += int(response.json()["accepted"])
                    else:
                        done["refused"] += n

    with service(redis_url, keys) as base:
        apps = [w for w in work if w[0] == "mykey"]
        client(apps, base)  # the persons first, so the workers meet applications first
        rest = [w for w in work if w[0] != "mykey"]
        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(rest[i::clients], base))
                   for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
    posted = done["transactions"] - len(scenario.applications)
    return {"transactions": float(posted), "seconds": seconds,
            "per_second": posted / seconds, "refused": float(done["refused"]),
            "requests": float(len(rest))}


def bench_workers(server: RedisServer, n: int, total_events: int, rules: Path,
                  count: int, saved: dict[str, list[Any]]) -> float:
    """Events/s of ``n`` worker processes draining the stream from its start.

    ``saved`` holds every stream's entries as they were accepted: workers trim what they
    acknowledged, so each run writes them back first (with their IDs). Refunds a former run
    parked are dropped: moved back while the group still points past the end, they would
    have the idle workers acknowledge, and trim, the entries written back."""
    client = server.client()
    keys = StreamKeys.under("pe:")
    shards = keys.all_shards(shard_count(client, keys))
    streams = [keys.shard(s) for s in shards]
    client.delete(*Keys.under("pe:"), keys.stats, keys.rejects, *streams,
                  *(keys.parked(s) for s in shards))
    for stream in streams:
        pipe = client.pipeline(transaction=False)
        for entry_id, fields in saved.get(stream, []):
            pipe.xadd(stream, fields, id=entry_id)
        pipe.execute()
        client.xgroup_create(stream, GROUP, id="$", mkstream=True)
    workers = [subprocess.Popen(
        [sys.executable, "-m", "pointengine.cli.main", "worker", "--redis-url", server.url,
         "--rules", str(rules), "--name", f"bench{i}", "--count", str(count),
         "--log-level", "warning"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(n)]
    try:
        deadline = time.monotonic() + 60
        while int(client.zcard(keys.workers)) < n:
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not start")
            time.sleep(0.05)
        started = time.perf_counter()
        for stream in streams:
            client.xgroup_setid(stream, GROUP, "0")
        while int(client.hget(keys.stats, "events") or 0) < total_events:
            time.sleep(0.01)
        return total_events / (time.perf_counter() - started)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGINT)
        for worker in workers:
            try:
                worker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                worker.kill()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the three benchmarks and print the figures."""
    parser = argparse.ArgumentParser(prog="python -m load.bench_service", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000, help="replay: events")
    parser.add_argument("--persons", type=int, default=5_000, help="replay: persons")
    parser.add_argument("--max-batch", type=int, default=5_000,
                        help="replay: intents per Lua call on Redis")
    parser.add_argument("--transactions", type=int, default=20_000,
                        help="http/workers: native transactions")
    parser.add_argument("--http-persons", type=int, default=2_000, help="http: persons")
    parser.add_argument("--batch", type=int, default=500, help="http: records per post")
    parser.add_argument("--clients", type=int, default=2, help="http: concurrent clients")
    parser.add_argument("--worker-count", type=int, default=2,
                        help="workers: stream entries per read")
    parser.add_argument("--skip", action="append", default=[],
                        choices=["replay", "http", "workers"], help="skip a benchmark")
    args = parser.parse_args(argv)
    rules = ROOT / "rules"
    catalog = load_catalog(rules)
    with RedisServer() as server, tempfile.TemporaryDirectory() as tmp:
        if "replay" not in args.skip:
            r = bench_replay(catalog, server, args.events, args.persons, args.max_batch,
                             Path(tmp))
            same = r["embedded_points"] == r["exclusive_points"] == r["redis_points"]
            print(f"replay {args.events:,} events: embedded {r['embedded']:,.0f} events/s, "
                  f"redis exclusive {r['exclusive']:,.0f} events/s, ratio "
                  f"{r['exclusive_ratio']:.2f} (goal >= 0.5), redis shared "
                  f"{r['redis']:,.0f} events/s, ratio {r['ratio']:.2f}; points equal: {same}")
        if "http" in args.skip:
            return 0
        server.client().flushall()
        scenario = build(args.http_persons, args.transactions, seed=5)
        h = bench_http(server.url, scenario, args.batch, args.clients)
        print(f"http: {h['transactions']:,.0f} transactions in {h['requests']:,.0f} batch posts "
              f"({args.batch} per post, {args.clients} clients): {h['per_second']:,.0f} "
              f"transactions/s accepted (202); {h['refused']:,.0f} refused")
        if "workers" in args.skip:
            return 0
        keys = StreamKeys.under("pe:")
        streams = keys.all_streams(shard_count(server.client(), keys))
        total = sum(int(server.client().xlen(s)) for s in streams)
        saved: dict[str, list[Any]] = {s: server.client().xrange(s) or [] for s in streams}
        events = sum(len(orjson.loads(fields[b"e"]))
                     for entries in saved.values() for _, fields in entries)
        assert total > 0
        one = bench_workers(server, 1, events, rules, args.worker_count, saved)
        two = bench_workers(server, 2, events, rules, args.worker_count, saved)
        print(f"workers on {events:,} events ({total:,} entries): 1 worker {one:,.0f} "
              f"events/s, 2 workers {two:,.0f} events/s, ratio {two / one:.2f} "
              f"({os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

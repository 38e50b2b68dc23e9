"""The real parts, wired together for the fault suite, the load scenarios and the tests.

Nothing here is a stand-in: events go into the Redis shard streams as the service writes them
(:func:`enqueue`), workers are :class:`~pointengine.service.worker.Worker` objects in threads
(:func:`run_workers`) or ``pointengine worker`` processes (:func:`worker_process`), the service
is the FastAPI app under Starlette's test client (:func:`service`), posts are signed as a
provider signs them (:func:`post`). The reference a run is compared with is one engine on the
embedded store, in the order the events were accepted (:func:`reference`).
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson
import redis

from load.service_scenario import PROVIDERS, Scenario, batch_posts
from pointengine.adapters.registry import adapter_for
from pointengine.catalog.loading import Catalog
from pointengine.decide.engine import Engine
from pointengine.model.events import AnyEvent, parse_event
from pointengine.model.ledger import LedgerEntry, ListSink
from pointengine.service.signing import sign
from pointengine.service.streams import (
    StreamKeys,
    encode_entry,
    lag_and_pending,
    route,
    shard_count,
)
from pointengine.service.worker import Worker
from pointengine.store.memory import MemoryStore
from pointengine.store.redis_server import RedisServer
from pointengine.store.redis_store import RedisStore

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

__all__ = ["KEYS", "ROOT", "RULES", "SENDERS", "Request", "drained", "enqueue", "event_key",
           "make_worker", "net_points", "paid_twice", "post", "reference", "requests_of",
           "run_workers", "sender_secrets", "service", "wait_for", "worker_process"]

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "rules"
KEYS = StreamKeys.under("pe:")
SENDERS = (*PROVIDERS, "mykey", "juki-net")
"""Every sender the service takes posts from: the payment providers and the platforms."""

Request = tuple[str, bytes, list[AnyEvent]]
"""One batch post: the provider, the body, and the canonical events its 202 stands for."""


def event_key(event: AnyEvent) -> str:
    """``<source>/<id>``: the key the store applies an event once by."""
    return f"{event.source}/{event.id}"


def enqueue(client: redis.Redis, events: Sequence[AnyEvent], *, per_entry: int = 25,
            shards: int = 16) -> None:
    """Write ``events`` to the shard streams as the service does, a request of ``per_entry``
    events at a time."""
    count = shard_count(client, KEYS, shards)
    for start in range(0, len(events), per_entry):
        chunk = events[start:start + per_entry]
        pipe = client.pipeline(transaction=True)
        for shard, group in route(chunk, count).items():
            fields: Any = encode_entry(group[0].source, group)
            pipe.xadd(KEYS.shard(shard), fields)
        pipe.execute()


def reference(catalog: Catalog, events: Sequence[AnyEvent], *,
              batch: int = 500) -> tuple[MemoryStore, ListSink]:
    """One engine, the embedded store, the events in the given order, ``batch`` at a time."""
    sink = ListSink()
    store = MemoryStore(sink)
    engine = Engine(catalog, store)
    for start in range(0, len(events), batch):
        engine.process(events[start:start + batch])
    engine.close()
    return store, sink


def make_worker(server: RedisServer, catalog: Catalog, name: str, *, count: int = 100,
                lease_ms: int = 1000, **kwargs: Any) -> Worker:
    """A worker with its own connections and engine."""
    engine = Engine(catalog, RedisStore(server.client()))
    return Worker(server.client(), engine, name=name, block_ms=50, count=count,
                  lease_ms=lease_ms, **kwargs)


def run_workers(server: RedisServer, catalog: Catalog, n: int, *, timeout: float = 240.0,
                **kwargs: Any) -> list[Worker]:
    """``n`` workers in threads until every shard is drained; raises AssertionError when one
    has not finished within ``timeout`` seconds."""
    workers = [make_worker(server, catalog, f"w{i}", **kwargs) for i in range(n)]
    for worker in workers:
        worker.ensure_group()  # all registered: the shards are shared from the start
    stop = threading.Event()
    threads = [threading.Thread(target=w.run, kwargs={"until_empty": True, "stop": stop})
               for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
        if thread.is_alive():
            stop.set()  # so that a failed run does not leave its caller waiting for threads
            for other in threads:
                other.join(timeout=10)
            raise AssertionError("a worker did not finish")
    for worker in workers:
        worker.engine.close()
    return workers


def worker_process(url: str, rules: Path, name: str, log: IO[bytes], *, lease_ms: int = 500,
                   count: int = 10, refund_wait: float = 2.0) -> subprocess.Popen[bytes]:
    """``pointengine worker`` in a child process, its log lines (JSON) written to ``log``."""
    return subprocess.Popen(
        [sys.executable, "-m", "pointengine.cli.main", "worker", "--redis-url", url,
         "--rules", str(rules), "--name", name, "--count", str(count), "--lease-ms",
         str(lease_ms), "--refund-wait", str(refund_wait), "--no-watch", "--log-level", "info"],
        cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log)


def drained(client: redis.Redis) -> bool:
    """True when every shard's entries were delivered and acknowledged and no refund waits
    to be tried again (what a worker's ``until_empty`` waits for, seen from outside)."""
    shards = KEYS.all_shards(shard_count(client, KEYS))
    if any(lag or pending for lag, pending in lag_and_pending(client, KEYS, shards).values()):
        return False
    pipe = client.pipeline(transaction=False)
    for shard in shards:
        pipe.zcard(KEYS.parked(shard))
    return not any(int(n) for n in pipe.execute())


def wait_for(condition: Callable[[], object], what: str, seconds: float = 60.0,
             poll: float = 0.02) -> None:
    """Poll ``condition`` until it holds; TimeoutError naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {seconds:g} s waiting: {what}")
        time.sleep(poll)


def sender_secrets() -> dict[str, bytes]:
    """A fresh secret for every sender."""
    return {p: secrets.token_hex(16).encode() for p in SENDERS}


@contextlib.contextmanager
def service(client: redis.Redis, keys: dict[str, bytes]) -> Iterator[TestClient]:
    """The ingestion app on ``client`` under Starlette's test client; an exception inside the
    app is answered 500, as a server would, so that callers count it."""
    from fastapi.testclient import TestClient

    from pointengine.service.app import ServiceConfig, create_app
    from pointengine.service.signing import RedisReplayGuard, Verifier

    verifier = Verifier(keys, RedisReplayGuard(client))
    with TestClient(create_app(ServiceConfig(client, verifier)),
                    raise_server_exceptions=False) as http:
        yield http


def post(http: TestClient, keys: dict[str, bytes], provider: str, body: bytes, *,
         batch: bool = False, lenient: bool = False, signer: str | None = None,
         now: float | None = None) -> tuple[int, dict[str, Any]]:
    """Sign ``body`` as ``signer`` (default ``provider``) and post it to the transactions or
    batch endpoint; the status and the JSON answer (``{}`` when it is not JSON)."""
    signer = signer or provider
    target = f"/providers/{provider}/{'batch' if batch else 'transactions'}"
    query = urlencode({"lenient": "true"}) if lenient else ""
    headers = sign(signer, keys[signer], body, path=target, query=query, now=now)
    # the query is sent as it was signed, not encoded again from parameters
    response = http.post(f"{target}?{query}" if query else target, content=body,
                         headers=headers)
    try:
        answer = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        answer = {}
    return response.status_code, answer if isinstance(answer, dict) else {"answer": answer}


def requests_of(scenario: Scenario, size: int) -> list[Request]:
    """The scenario as batch posts of ``size`` records: the applications (MyKey's canonical
    lines) first, then each provider's native traffic; each with the events the service makes
    of it (its own adapter's reading)."""
    out: list[Request] = []
    for provider, body, natives in batch_posts(scenario, size):
        if provider == "mykey":
            out.append((provider, body, [parse_event(line) for line in natives]))
            continue
        with adapter_for(provider) as adapter:
            events = (adapter.to_events(body) if provider == "towncoin"  # a file of lines
                      else [e for native in natives for e in adapter.to_events(native)])
        out.append((provider, body, events))
    return out


def net_points(entries: Iterable[LedgerEntry],
               leave_out: frozenset[str] = frozenset()) -> Counter[tuple[str, str]]:
    """Net points per (person, program) of ledger lines (zeros dropped), ``leave_out``'s
    programs aside."""
    out: Counter[tuple[str, str]] = Counter()
    for entry in entries:
        if entry.program not in leave_out:
            out[(entry.person, entry.program)] += entry.points
    return +out if all(v >= 0 for v in out.values()) else Counter(
        {k: v for k, v in out.items() if v})


def paid_twice(entries: Iterable[LedgerEntry]) -> tuple[int, int]:
    """(lines, yen) beyond the first of each (kind, event, program): an award or a reversal
    written twice for one event."""
    seen: set[tuple[str, str, str]] = set()
    lines = yen = 0
    for entry in entries:
        key = (entry.kind, entry.event, entry.program)
        if key in seen:
            lines += 1
            yen += abs(entry.points)
        seen.add(key)
    return lines, yen

"""The service commands of ``pointengine``: ``serve``, ``worker``, ``settle``, ``rejects`` and
``reinit``.

:func:`register` adds them to the typer app of :mod:`pointengine.cli.main`. FastAPI and uvicorn (the
``service`` extra) are imported only when ``serve`` runs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Annotated

import orjson
import redis
import typer
from rich.console import Console

from pointengine.catalog.loading import load_catalog
from pointengine.catalog.shipped import rules_folder
from pointengine.decide.engine import Engine
from pointengine.decide.reload import CatalogWatcher
from pointengine.errors import (
    IntegrityError,
    OperationalError,
    OutputError,
    PointEngineError,
    RuleFileError,
)
from pointengine.model.output import write_whole
from pointengine.replay.progress import DEFAULT_EVERY, ProgressEvery, progress
from pointengine.service.jsonlog import configure as configure_logging
from pointengine.service.jsonlog import uvicorn_log_config
from pointengine.service.settlement import (
    Periods,
    Settlement,
    payers,
    settle_file,
    settle_redis,
)
from pointengine.service.signing import load_secrets
from pointengine.service.streams import DEFAULT_SHARDS, StreamKeys, read_rejects
from pointengine.service.worker import WORKER_TIMEOUT, Worker, log_reload, report_log
from pointengine.store.generation import read_generation, reinit
from pointengine.store.redis_store import CONNECT_TIMEOUT, TIMEOUT, RedisStore, connect

__all__ = ["register", "reinit_command", "rejects_command", "serve", "settle_command",
           "worker_command"]

RedisUrl = Annotated[str, typer.Option("--redis-url", envvar="POINTENGINE_REDIS_URL",
                                       help="the Redis server")]
Prefix = Annotated[str, typer.Option("--prefix", envvar="POINTENGINE_PREFIX",
                                     help="key prefix of the store and the stream")]
DEFAULT_URL = "redis://127.0.0.1:6379/0"
ConnectTimeout = Annotated[float, typer.Option(
    "--redis-connect-timeout", help="seconds a connection to Redis may take to open")]


def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8080,
    redis_url: RedisUrl = DEFAULT_URL,
    prefix: Prefix = "pe:",
    secrets: Annotated[Path | None, typer.Option(
        help="YAML/JSON file of provider secrets (or POINTENGINE_SECRET_<PROVIDER>)")] = None,
    processes: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
    shards: Annotated[int, typer.Option(
        help="person shards (K), if Redis does not hold a number yet")] = DEFAULT_SHARDS,
    min_replicas: Annotated[int, typer.Option(
        help="answer 202 only once this many Redis replicas hold the entries (WAIT)")] = 0,
    replica_timeout_ms: Annotated[int, typer.Option(
        help="how long to wait for the replicas before answering 503")] = 1_000,
    redis_timeout: Annotated[float, typer.Option(
        help="seconds a Redis command may take: then a request or /health answers 503")]
    = TIMEOUT,
    redis_connect_timeout: ConnectTimeout = CONNECT_TIMEOUT,
    retry_after: Annotated[int | None, typer.Option(
        help="the Retry-After of a 503, in seconds (default 5)")] = None,
    log_level: Annotated[str, typer.Option(help="log level")] = "info",
    access_log: Annotated[bool, typer.Option(
        help="also log uvicorn's access line for each request (the service logs every answer "
        "to a provider itself)")] = False,
) -> None:
    """Run the HTTP ingestion service (providers post signed transactions).

    Every log line, uvicorn's included, is a JSON object on stderr.
    """
    import uvicorn

    # checked before the settings below go into this process's environment, so that a refused
    # start leaves the environment as it found it
    try:  # refuse bad secrets here, in one line, rather than in each uvicorn process
        load_secrets(secrets)
    except (PointEngineError, OSError) as exc:
        typer.echo(f"serve: {exc}", err=True)
        raise typer.Exit(2) from None
    os.environ["POINTENGINE_REDIS_URL"] = redis_url
    os.environ["POINTENGINE_REDIS_TIMEOUT"] = str(redis_timeout)
    os.environ["POINTENGINE_REDIS_CONNECT_TIMEOUT"] = str(redis_connect_timeout)
    if retry_after is not None:
        os.environ["POINTENGINE_RETRY_AFTER"] = str(retry_after)
    os.environ["POINTENGINE_PREFIX"] = prefix
    os.environ["POINTENGINE_SHARDS"] = str(shards)
    os.environ["POINTENGINE_MIN_REPLICAS"] = str(min_replicas)
    os.environ["POINTENGINE_REPLICA_TIMEOUT_MS"] = str(replica_timeout_ms)
    os.environ["POINTENGINE_LOG_LEVEL"] = log_level.upper()
    if secrets is not None:
        os.environ["POINTENGINE_SECRETS_FILE"] = str(secrets.resolve())
    metrics_dir: str | None = None
    if processes > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # each process counts in files here, so that /metrics adds up all processes
        metrics_dir = tempfile.mkdtemp(prefix="pointengine-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run("pointengine.service.app:app_from_env", factory=True, host=host, port=port,
                    workers=processes, log_level=log_level.lower(), access_log=access_log,
                    log_config=uvicorn_log_config(log_level))
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def worker_command(
    redis_url: RedisUrl = DEFAULT_URL,
    prefix: Prefix = "pe:",
    rules: Annotated[Path | None, typer.Option(
        "--rules", help="the rules folder",
        show_default="rules/ if the working directory has one, else the shipped rules")] = None,
    name: Annotated[str | None, typer.Option(help="consumer name (default host-pid)")] = None,
    count: Annotated[int, typer.Option(help="stream entries per batch")] = 100,
    lease_ms: Annotated[int, typer.Option(
        help="shard lease: a dead worker's shards are taken over after this long")] = 10_000,
    claim_idle_ms: Annotated[int | None, typer.Option(
        hidden=True, help="former name of --lease-ms")] = None,
    shards: Annotated[int, typer.Option(
        help="person shards (K), if Redis does not hold a number yet")] = DEFAULT_SHARDS,
    refund_wait: Annotated[float, typer.Option(
        help="seconds a refund of a transaction not seen yet keeps being retried")] = 600.0,
    until_empty: Annotated[bool, typer.Option(
        help="exit once the stream is drained (and no refund waits for a retry)")] = False,
    watch: Annotated[bool, typer.Option(
        help="reload changed rule files between batches, without a restart")] = True,
    redis_timeout: Annotated[float, typer.Option(
        help="seconds a Redis command may take: then the batch fails and is tried again")]
    = WORKER_TIMEOUT,
    redis_connect_timeout: ConnectTimeout = CONNECT_TIMEOUT,
    log_level: Annotated[str, typer.Option(help="log level")] = "info",
    report_every: Annotated[float, typer.Option(
        min=0.0, metavar="SECONDS",
        help="seconds between two reports in the log (counts and events/s); 0: only the last")]
    = 60.0,
) -> None:
    """Evaluate the ingestion stream's shards as one worker of the group (per-person order).

    Logs are JSON lines on stderr, and so is the worker's report: every --report-every seconds
    and when it stops (written at any --log-level). SIGTERM and Ctrl-C stop it after the batch
    in hand: it acknowledges it, releases its shard leases (so that other workers take them at
    once, not after ``--lease-ms``) and logs its last report. A second Ctrl-C interrupts at
    once.
    """
    configure_logging(log_level)
    report_log.setLevel(logging.INFO)
    rules = rules_folder(rules)
    if not rules.is_dir():
        typer.echo(f"worker: rules folder not found: {rules}", err=True)
        raise typer.Exit(2)
    try:
        catalog = load_catalog(rules)
    except RuleFileError as exc:
        for problem in exc.problems:
            typer.echo(f"worker: {problem}", err=True)
        raise typer.Exit(2) from None
    def client_of_redis() -> redis.Redis:
        return connect(redis_url, timeout=redis_timeout, connect_timeout=redis_connect_timeout)

    client = client_of_redis()
    engine = Engine(catalog, RedisStore(client_of_redis(), prefix=prefix))
    watcher = CatalogWatcher(rules, engine, on_result=log_reload) if watch else None
    worker = Worker(client, engine, prefix=prefix, name=name, count=count,
                    lease_ms=lease_ms, claim_idle_ms=claim_idle_ms, shards=shards,
                    retry_window_ms=int(refund_wait * 1000), watcher=watcher)
    # which rules decide the money, said once: run elsewhere than a rules folder, a worker
    # uses the rules shipped with the package, and every worker of a store should use the same
    report_log.info("worker rules", extra={"fields": {
        "worker": worker.name, "rules": str(rules.resolve()),
        "programs": len(catalog.programs)}})
    stop = threading.Event()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def finish(signum: int, frame: object) -> None:
        stop.set()
        for sig, handler in previous.items():  # a second signal acts as it did before
            signal.signal(sig, handler)

    for sig in previous:
        signal.signal(sig, finish)
    failed: str | None = None
    try:
        worker.run(stop=stop, until_empty=until_empty, report_every=report_every)
    except KeyboardInterrupt:
        pass
    except (redis.RedisError, OperationalError) as exc:  # at start: Redis unreachable
        failed = str(exc)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        engine.close()
        with contextlib.suppress(OperationalError):
            engine.store.close()
        client.close()
    if failed is not None:
        report_log.error("Redis is unavailable", extra={"fields": {
            "worker": worker.name, "detail": failed}})
        raise typer.Exit(1)
    worker.log_report(final=True)


class Period(enum.StrEnum):
    """What ``settle --period`` cuts the settlement into."""

    total = "total"
    month = "month"


def settle_command(
    ledger: Annotated[Path | None, typer.Option(
        help="a ledger file (FileSink, e.g. out/ledger.jsonl) instead of Redis")] = None,
    state: Annotated[Path | None, typer.Option(
        help="with --ledger: the saved embedded store to reconcile with")] = None,
    redis_url: RedisUrl = DEFAULT_URL,
    prefix: Prefix = "pe:",
    out: Annotated[Path | None, typer.Option(help="write the CSV here (default stdout)")]
    = None,
    period: Annotated[Period, typer.Option(
        help="total: one figure per provider and program; month: one per JST calendar month "
        "as well")] = Period.total,
    first: Annotated[dt.datetime | None, typer.Option(
        "--from", formats=["%Y-%m-%d"], metavar="YYYY-MM-DD",
        help="with --to: settle the JST days from this one (included)")] = None,
    last: Annotated[dt.datetime | None, typer.Option(
        "--to", formats=["%Y-%m-%d"], metavar="YYYY-MM-DD",
        help="with --from: settle the JST days up to this one (included)")] = None,
    rules: Annotated[Path | None, typer.Option(
        "--rules", help="the rules folder, for each program's payer (its jurisdiction)",
        show_default="rules/ if the working directory has one, else the shipped rules")]
    = None,
    progress_every: ProgressEvery = DEFAULT_EVERY,
) -> None:
    """Points to pay per provider and program, as CSV, reconciled with the ledger to the yen.

    --period month and --from/--to cut it by JST calendar month or into one range of JST days,
    each ledger line counting in the period of its event's time (a refund in the month of the
    refund); the whole ledger is still checked and reconciled.
    """
    if (first is None) != (last is None):
        raise typer.BadParameter("--from and --to go together (both JST days, included)")
    try:
        periods = None if period is Period.total and first is None else Periods(
            monthly=period is Period.month, first=first.date() if first else None,
            last=last.date() if last else None)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    err = Console(stderr=True, soft_wrap=True)
    try:
        with progress("settle", None, err, unit="ledger lines", every=progress_every,
                      bar=False) as update:
            if ledger is not None:
                result = settle_file(ledger, state, periods=periods, progress=update)
            else:
                with RedisStore(redis.Redis.from_url(redis_url), prefix=prefix) as store:
                    assert isinstance(store, RedisStore)
                    result = settle_redis(store, periods=periods, progress=update)
    except IntegrityError as exc:
        typer.echo(f"does not reconcile: {exc}", err=True)
        raise typer.Exit(2) from None
    except (PointEngineError, OSError) as exc:
        typer.echo(f"settle failed: {exc}", err=True)
        raise typer.Exit(1) from None
    result.payers = _payers(rules_folder(rules), {program for _, program in result.lines})
    try:
        _write(result, out)
    except OutputError as exc:
        typer.echo(f"settle failed: {exc}", err=True)
        raise typer.Exit(1) from None


def _payers(rules: Path, programs: set[str]) -> dict[str, str]:
    """Each program's payer from the catalog in ``rules``; what cannot be known is said on
    stderr and left blank, since the yen to pay do not depend on it."""
    try:
        found = payers(load_catalog(rules)) if rules.is_dir() else {}
    except RuleFileError as exc:
        typer.echo(f"settle: payer left blank: {len(exc.problems)} problem(s) in {rules} "
                   "(pointengine validate says which)", err=True)
        return {}
    if not rules.is_dir():
        typer.echo(f"settle: payer left blank: rules folder not found: {rules}", err=True)
        return {}
    unknown = sorted(programs - set(found))
    if unknown:
        typer.echo(f"settle: payer left blank for programs not in {rules}: "
                   f"{', '.join(unknown)}", err=True)
    return found


def rejects_command(
    redis_url: RedisUrl = DEFAULT_URL,
    prefix: Prefix = "pe:",
    count: Annotated[int, typer.Option(help="how many, the most recent")] = 100,
) -> None:
    """Events the workers refused after a 202, oldest first, one JSON object a line."""
    client = redis.Redis.from_url(redis_url)
    try:
        rejects = read_rejects(client, StreamKeys.under(prefix), max(1, count))
    except redis.RedisError as exc:
        typer.echo(f"rejects: Redis is unavailable: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        client.close()
    for reject in rejects:
        sys.stdout.write(orjson.dumps(reject.doc()).decode() + "\n")
    typer.echo(f"{len(rejects)} rejected event(s)", err=True)


def reinit_command(
    redis_url: RedisUrl = DEFAULT_URL,
    prefix: Prefix = "pe:",
    yes: Annotated[bool, typer.Option(
        "--yes", help="do it; without it, only show the store's generation")] = False,
) -> None:
    """After Redis lost the store's state: go on from the state it holds now.

    Once the service or a worker found the state lost (a flush, a restart without
    persistence), every POST and /health answer 503 state_lost and workers apply nothing,
    since caps and budgets would count again from zero. When that is what you want (or you
    restored the state from a backup), this starts a new generation of the store, which the
    service and every worker take up within seconds: they accept and apply again, from what
    Redis holds. It deletes nothing. Without --yes it only shows the generation and why the
    state was found lost.
    """
    client = connect(redis_url)
    try:
        marker, lost = read_generation(client, prefix)
        if not yes:
            typer.echo(f"generation: {marker or 'none'}")
            typer.echo(f"found lost: {lost}" if lost else "found lost: no (not recorded)")
            typer.echo("nothing changed; with --yes, a new generation starts on the state "
                       "Redis holds now, and the service and workers go on from it", err=True)
            raise typer.Exit(1)
        generation = reinit(client, prefix)
    except redis.RedisError as exc:
        typer.echo(f"reinit: Redis is unavailable: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        client.close()
    typer.echo(f"generation {generation} started (the previous one: {marker or 'none'}); the "
               "service accepts and the workers apply again", err=True)


def _write(result: Settlement, out: Path | None) -> None:
    text = result.to_csv()
    if out is None:
        sys.stdout.write(text)
    else:
        write_whole(out, text.encode("utf-8"))
    check = "reconciled with the store's totals" if result.reconciled_with_totals else \
        "ledger checked (no totals to reconcile with)"
    spans = result.spans()
    within = (f"; {result.period_total:,} yen net from {spans[0][0]} to {spans[-1][1]} "
              f"({len(spans)} period(s))" if spans else "")
    typer.echo(f"{result.ledger_lines:,} ledger lines, {result.total:,} yen net; {check}"
               f"{within}", err=True)


def register(app: typer.Typer) -> None:
    """Add ``serve``, ``worker``, ``settle``, ``rejects`` and ``reinit`` to ``app``."""
    app.command("serve")(serve)
    app.command("worker")(worker_command)
    app.command("settle")(settle_command)
    app.command("rejects")(rejects_command)
    app.command("reinit")(reinit_command)

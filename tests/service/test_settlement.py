"""Settlement: per provider and program, reconciled with the ledger to the yen."""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from typer.testing import CliRunner

from load.service_scenario import build
from pointengine.catalog.loading import load_catalog
from pointengine.cli.main import app
from pointengine.decide.engine import Engine
from pointengine.errors import IntegrityError
from pointengine.model.ledger import FileSink, LedgerEntry, read_ledger
from pointengine.replay import checkpoint
from pointengine.service.settlement import COLUMNS, settle, settle_file, settle_redis
from pointengine.store.memory import MemoryStore
from pointengine.store.redis_server import RedisServer
from pointengine.store.redis_store import RedisStore
from tests.redis_fixtures import redis_client, redis_server

__all__ = ["redis_client", "redis_server"]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def events() -> list[object]:
    """200 persons, 1,500 transactions with refunds."""
    scenario = build(200, 1500, seed=11)
    return [*scenario.applications, *scenario.transactions]


def run(store: MemoryStore | RedisStore, events: list[object]) -> None:
    """Evaluate ``events`` on ``store``."""
    engine = Engine(load_catalog(ROOT / "rules"), store)
    engine.process(events)  # type: ignore[arg-type]
    engine.close()


def rows(text: str) -> list[dict[str, str]]:
    """The CSV as dicts."""
    return list(csv.DictReader(io.StringIO(text)))


def test_a_file_ledger_settles_and_reconciles_with_the_saved_store(
        tmp_path: Path, events: list[object]) -> None:
    sink = FileSink(tmp_path / "ledger.jsonl")
    store = MemoryStore(sink)
    run(store, events)
    checkpoint.save(tmp_path / "state.pickle", store, sink)
    sink.close()
    result = settle_file(tmp_path / "ledger.jsonl", tmp_path / "state.pickle")
    assert result.reconciled_with_totals
    assert result.total == sum(store.totals().values()) > 0
    assert any(line.reversed > 0 for line in result.lines.values())  # refunds took some back
    table = rows(result.to_csv())
    assert tuple(table[0]) == COLUMNS
    body = [r for r in table if r["program"] != "*"]
    assert sum(int(r["net_yen"]) for r in body) == result.total
    for r in table:
        assert int(r["awarded_yen"]) - int(r["reversed_yen"]) == int(r["net_yen"])
    grand = table[-1]
    assert grand["provider"] == grand["program"] == "*"
    assert int(grand["net_yen"]) == result.total
    assert int(grand["ledger_lines"]) == len(list(read_ledger(tmp_path / "ledger.jsonl")))
    assert {r["provider"] for r in body} == {"quickpay", "transitcard", "carrierpay",
                                             "towncoin"}


def test_redis_and_embedded_settle_to_the_same_yen(
        redis_server: RedisServer, redis_client: redis.Redis, events: list[object]) -> None:
    embedded = MemoryStore()
    run(embedded, events)
    store = RedisStore(redis_server.client())
    run(store, events)
    result = settle_redis(store)
    assert result.reconciled_with_totals
    assert {(p, g): line.net for (p, g), line in result.lines.items()} == {
        (provider, program): net for (program, provider), net in embedded.totals().items()
        if net}


class _BusyStore(RedisStore):
    """A RedisStore whose ledger is read while a worker applies another batch, just after
    settlement read what it reads first."""

    def __init__(self, client: redis.Redis, meanwhile: list[object]) -> None:
        super().__init__(client)
        self.meanwhile = meanwhile

    def ledger(self, **kwargs: Any) -> Iterator[LedgerEntry]:
        if self.meanwhile:  # lazily, as the ledger is read: when the first line is asked for
            run(RedisStore(self.client), self.meanwhile)
            self.meanwhile = []
        yield from super().ledger(**kwargs)


def test_redis_settles_a_consistent_moment_while_workers_apply(
        redis_server: RedisServer, redis_client: redis.Redis, events: list[object]) -> None:
    half = len(events) // 2
    run(RedisStore(redis_server.client()), events[:half])
    before = RedisStore(redis_server.client()).totals()
    store = _BusyStore(redis_server.client(), events[half:])
    result = settle_redis(store)
    assert result.reconciled_with_totals
    assert {(g, p): line.net for (p, g), line in result.lines.items() if line.net} == \
        {k: v for k, v in before.items() if v}
    assert settle_redis(store).total == sum(store.totals().values()) > result.total


def test_a_ledger_that_does_not_reconcile_is_refused() -> None:
    award = LedgerEntry(1, "award", "q/1", "MK1", "prog", 1, 500, "quickpay", "2022-03-01")
    assert settle([award], {("prog", "quickpay"): 500}).total == 500
    with pytest.raises(IntegrityError, match="does not reconcile"):
        settle([award], {("prog", "quickpay"): 501})
    with pytest.raises(IntegrityError, match="does not reconcile"):
        settle([award], {("prog", "quickpay"): 500, ("other", "quickpay"): 1})
    with pytest.raises(IntegrityError, match="missing or repeated"):
        settle([award, dataclasses.replace(award, seq=3)])
    with pytest.raises(IntegrityError, match="missing or repeated"):
        settle([award, award])
    with pytest.raises(IntegrityError, match="a reversal of 5"):
        settle([dataclasses.replace(award, kind="reversal", points=5)])


def test_the_settle_command(redis_server: RedisServer, redis_client: redis.Redis,
                            events: list[object], tmp_path: Path) -> None:
    run(RedisStore(redis_server.client()), events)
    out = tmp_path / "settlement.csv"
    result = CliRunner().invoke(app, ["settle", "--redis-url", redis_server.url,
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "reconciled" in result.output
    assert rows(out.read_text())[-1]["provider"] == "*"
    redis_client.hincrby("pe:totals", '["national-phase2-card","quickpay"]', 1)
    result = CliRunner().invoke(app, ["settle", "--redis-url", redis_server.url])
    assert result.exit_code == 2
    assert "does not reconcile" in result.output

"""Settlement: per provider and program, reconciled with the ledger to the yen."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
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
from pointengine.service.settlement import (
    COLUMNS,
    PERIOD_COLUMNS,
    Periods,
    payers,
    settle,
    settle_file,
    settle_redis,
)
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


def _line(seq: int, points: int, at: str, program: str = "national-phase2-card",
          provider: str = "paypay") -> LedgerEntry:
    return LedgerEntry(seq, "award" if points > 0 else "reversal", f"t/{seq}", "MK-A", program,
                       1, points, provider, at, None if points > 0 else "t/1")


def test_a_monthly_settlement_nets_each_line_in_its_own_jst_month() -> None:
    ledger = [
        _line(1, 2_500, "2022-07-15T12:00:00+09:00"),
        _line(2, 3_000, "2022-07-15T12:00:00+09:00", "miyoshi-premium"),
        _line(3, 1_000, "2022-07-31T23:59:59+09:00"),
        _line(4, 2_000, "2022-07-31T15:30:00Z"),  # 2022-08-01 00:30 in JST
        _line(5, 700, "2022-08-20T10:00:00+09:00", provider="waon"),
        # the refund of July's purchase, in September: it nets in September, July stays
        _line(6, -1_000, "2022-09-05T10:00:00+09:00"),
        _line(7, -1_200, "2022-09-05T10:00:00+09:00", "miyoshi-premium"),
    ]
    result = settle(ledger, periods=Periods(monthly=True))
    result.payers = {"national-phase2-card": "national", "miyoshi-premium": "342092"}
    assert result.to_csv().splitlines() == [
        ",".join(PERIOD_COLUMNS),
        "2022-07-01,2022-07-31,paypay,miyoshi-premium,3000,0,3000,1,342092",
        "2022-07-01,2022-07-31,paypay,national-phase2-card,3500,0,3500,2,national",
        "2022-07-01,2022-07-31,paypay,*,6500,0,6500,3,*",
        "2022-07-01,2022-07-31,*,*,6500,0,6500,3,*",
        "2022-08-01,2022-08-31,paypay,national-phase2-card,2000,0,2000,1,national",
        "2022-08-01,2022-08-31,waon,national-phase2-card,700,0,700,1,national",
        "2022-08-01,2022-08-31,paypay,*,2000,0,2000,1,*",
        "2022-08-01,2022-08-31,waon,*,700,0,700,1,*",
        "2022-08-01,2022-08-31,*,*,2700,0,2700,2,*",
        "2022-09-01,2022-09-30,paypay,miyoshi-premium,0,1200,-1200,1,342092",
        "2022-09-01,2022-09-30,paypay,national-phase2-card,0,1000,-1000,1,national",
        "2022-09-01,2022-09-30,paypay,*,0,2200,-2200,2,*",
        "2022-09-01,2022-09-30,*,*,0,2200,-2200,2,*",
        "2022-07-01,2022-09-30,paypay,*,8500,2200,6300,6,*",
        "2022-07-01,2022-09-30,waon,*,700,0,700,1,*",
        "2022-07-01,2022-09-30,*,*,9200,2200,7000,7,*",
    ]
    assert result.total == result.period_total == 7_000


def test_a_range_of_days_settles_the_lines_within_it_and_checks_the_whole_ledger() -> None:
    ledger = [_line(1, 2_500, "2022-06-30T23:59:59+09:00"),
              _line(2, 2_000, "2022-06-30T15:00:00Z"),  # 2022-07-01 00:00 in JST
              _line(3, 400, "2022-08-10T09:00:00+09:00"),
              _line(4, -300, "2022-08-11T00:00:00+09:00"),
              _line(5, 100, "2022-08-12T00:00:00+09:00")]
    one = settle(ledger, {("national-phase2-card", "paypay"): 4_700},
                 periods=Periods(first=dt.date(2022, 7, 1), last=dt.date(2022, 8, 11)))
    assert one.reconciled_with_totals and one.total == 4_700
    assert rows(one.to_csv())[-1] == {
        "period_from": "2022-07-01", "period_to": "2022-08-11", "provider": "*",
        "program": "*", "awarded_yen": "2400", "reversed_yen": "300", "net_yen": "2100",
        "ledger_lines": "3", "payer": "*"}
    months = settle(ledger, periods=Periods(monthly=True, first=dt.date(2022, 7, 1),
                                            last=dt.date(2022, 8, 11)))
    assert [(r["period_from"], r["period_to"], r["net_yen"]) for r in rows(months.to_csv())
            if r["provider"] == "*"] == [("2022-07-01", "2022-07-31", "2000"),
                                         ("2022-08-01", "2022-08-11", "100"),
                                         ("2022-07-01", "2022-08-11", "2100")]
    with pytest.raises(IntegrityError, match="missing or repeated"):  # outside the range too
        settle([*ledger, _line(7, 1, "2023-01-01T00:00:00+09:00")],
               periods=Periods(monthly=True, first=dt.date(2022, 7, 1)))
    with pytest.raises(IntegrityError, match="no UTC offset"):
        settle([_line(1, 1, "2022-07-01T10:00:00")], periods=Periods(monthly=True))
    with pytest.raises(ValueError, match="ends"):
        Periods(first=dt.date(2022, 8, 1), last=dt.date(2022, 7, 1))


MONTHLY = [  # a Miyoshi resident's purchases at a Miyoshi store, and a refund in September
    {"type": "mynapoint_application", "source": "t", "id": "a1", "person": "MK-A",
     "at": "2022-01-10T12:00:00+09:00", "phase": 2, "provider": "paypay",
     "card_applied_on": "2021-12-01", "residence": "342092"},
    {"type": "purchase", "source": "t", "id": "p1", "person": "MK-A",
     "at": "2022-07-15T12:00:00+09:00", "provider": "paypay", "amount": 10_000, "store": "S1",
     "store_municipality": "342092"},
    {"type": "purchase", "source": "t", "id": "p2", "person": "MK-A",
     "at": "2022-07-31T15:30:00Z", "provider": "paypay", "amount": 8_000, "store": "S1",
     "store_municipality": "342092"},
    {"type": "refund", "source": "t", "id": "r1", "person": "MK-A",
     "at": "2022-09-05T10:00:00+09:00", "provider": "paypay", "transaction": "p1",
     "amount": 4_000},
]


def test_the_settle_command_by_month_pays_exact_yen_from_a_file_and_from_redis(
        redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path) -> None:
    stream = tmp_path / "events.jsonl"
    stream.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in MONTHLY))
    runner = CliRunner()
    out = tmp_path / "out"
    rules = ["--rules", str(ROOT / "rules")]
    for store in ([], ["--redis-url", redis_server.url]):
        replayed = runner.invoke(app, ["replay", str(stream), *rules, "--out", str(out),
                                       *store])
        assert replayed.exit_code == 0, replayed.output
    settled = {}
    for source in (["--ledger", str(out / "ledger.jsonl"), "--state",
                    str(out / "state.pickle")], ["--redis-url", redis_server.url]):
        result = runner.invoke(app, ["settle", *source, "--period", "month", *rules])
        assert result.exit_code == 0, result.output
        assert "reconciled with the store's totals; 7,700 yen net from 2022-07-01 to " \
            "2022-09-30 (3 period(s))" in result.stderr
        settled[source[0]] = result.stdout
    assert settled["--ledger"] == settled["--redis-url"]
    table = rows(settled["--ledger"])
    # 25% national and 30% Miyoshi of 10,000 yen in July; of 8,000 yen paid at 00:30 JST on
    # 1 August (15:30 UTC on 31 July), within what is left under the caps (5,000 and 6,000);
    # the refund of 4,000 yen of July's purchase takes back 40% of its points in September
    assert [(r["period_from"], r["program"], r["awarded_yen"], r["reversed_yen"], r["net_yen"],
             r["payer"]) for r in table if r["provider"] == "paypay" and r["program"] != "*"
            ] == [("2022-07-01", "miyoshi-premium", "3000", "0", "3000", "342092"),
                  ("2022-07-01", "national-phase2-card", "2500", "0", "2500", "national"),
                  ("2022-08-01", "miyoshi-premium", "2400", "0", "2400", "342092"),
                  ("2022-08-01", "national-phase2-card", "2000", "0", "2000", "national"),
                  ("2022-09-01", "miyoshi-premium", "0", "1200", "-1200", "342092"),
                  ("2022-09-01", "national-phase2-card", "0", "1000", "-1000", "national")]
    assert [(r["period_from"], r["period_to"], r["net_yen"]) for r in table
            if r["provider"] == "*"] == [("2022-07-01", "2022-07-31", "5500"),
                                         ("2022-08-01", "2022-08-31", "4400"),
                                         ("2022-09-01", "2022-09-30", "-2200"),
                                         ("2022-07-01", "2022-09-30", "7700")]
    ranged = runner.invoke(app, ["settle", "--ledger", str(out / "ledger.jsonl"), "--from",
                                 "2022-08-01", "--to", "2022-09-30", *rules])
    assert ranged.exit_code == 0, ranged.output
    assert rows(ranged.stdout)[-1]["net_yen"] == "2200"
    total = runner.invoke(app, ["settle", "--ledger", str(out / "ledger.jsonl"), *rules])
    assert [(r["program"], r["net_yen"], r["payer"]) for r in rows(total.stdout)] == [
        ("miyoshi-premium", "4200", "342092"), ("national-phase2-card", "3500", "national"),
        ("*", "7700", "*"), ("*", "7700", "*")]


def test_the_settle_command_refuses_half_a_range(tmp_path: Path) -> None:
    for args in (["--from", "2022-07-01"], ["--to", "2022-07-01"],
                 ["--from", "2022-08-01", "--to", "2022-07-31"], ["--from", "2022-13-01",
                                                                  "--to", "2022-12-31"]):
        result = CliRunner().invoke(app, ["settle", "--ledger", str(tmp_path / "l.jsonl"),
                                          *args])
        assert result.exit_code == 2, result.output


def test_payers_are_the_programs_jurisdictions() -> None:
    found = payers(load_catalog(ROOT / "rules"))
    assert found["national-phase2-card"] == "national"
    assert found["miyoshi-premium"] == "342092"
    assert found["shiga-charge-premium"] == "250007"  # a prefecture pays its own

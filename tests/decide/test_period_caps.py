"""A cap per person per calendar month (JST), added in the rule model and the claim plan only.

The compiled lane does not apply caps per period: a program with one takes the Python path
for its events (unknown means refuse, never guess), and both ways pay the same yen.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from pointengine.catalog.loading import Catalog, load_catalog
from pointengine.errors import RuleFileError
from pointengine.synth.generate import generate
from tests.lane.test_lane import _apply, _buy, _line, _points, assert_same
from tests.redis_fixtures import redis_client, redis_server  # noqa: F401
from tests.replay.test_redis_replay import assert_same_on_redis
from tests.world import RULES, World

MONTHLY = """\
id: chiyoda-monthly
name: 千代田区 区内店舗で20%、月2,000ポイントまで
jurisdiction: "131016"
on: [purchase]
restriction: {stores: in_region}
conditions:
  period: {from: 2022-01-01, to: 2022-12-31}
award: {kind: premium, rate: 20%, cap: 5000}
period_caps:
  - {per: month, cap: 2000}
"""


@pytest.fixture(scope="module")
def monthly(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    root = tmp_path_factory.mktemp("monthly")
    (root / "providers.yaml").write_bytes((RULES / "providers.yaml").read_bytes())
    (root / "national").mkdir()
    for path in (RULES / "national").glob("*.yaml"):
        (root / "national" / path.name).write_bytes(path.read_bytes())
    (root / "131016-chiyoda").mkdir()
    (root / "131016-chiyoda" / "monthly.yaml").write_text(MONTHLY)
    return load_catalog(root)


def test_a_month_pays_at_most_its_cap_and_the_next_month_starts_again(monthly: Catalog) -> None:
    world = World(monthly)
    world.apply()
    assert world.awarded(world.buy(6_000, at="2022-02-01"), "chiyoda-monthly") == 1_200
    assert world.awarded(world.buy(6_000, at="2022-02-28"), "chiyoda-monthly") == 800
    assert world.awarded(world.buy(1_000, at="2022-02-28"), "chiyoda-monthly") == 0
    # 2022-03-01 00:30 JST is March, though it is still February in UTC
    march = world.buy(20_000, at="2022-03-01T00:30:00+09:00")
    assert world.awarded(march, "chiyoda-monthly") == 2_000
    limited = [o.limited_by for o in march.applied.outcomes if o.program == "chiyoda-monthly"]
    assert limited == ["person cap per month"]
    # the program's own 5,000 per person still holds across months
    assert world.awarded(world.buy(20_000, at="2022-04-10"), "chiyoda-monthly") == 1_000
    assert world.store.counter("pp|chiyoda-monthly|MK-A") == 5_000
    assert world.store.counter("pm|chiyoda-monthly|MK-A|2022-02") == 2_000
    world.engine.close()


def test_a_refund_frees_the_month_of_its_purchase(monthly: Catalog) -> None:
    world = World(monthly)
    world.apply()
    world.buy(10_000, at="2022-02-10", source="paypay", id="t1")
    refund = world.event("refund", "MK-A", "2022-03-02", source="paypay", id="r1",
                         provider="paypay", transaction="t1", amount=5_000)
    assert world.run(refund)[0].applied.reversed["chiyoda-monthly"] == 1_000
    assert world.store.counter("pm|chiyoda-monthly|MK-A|2022-02") == 1_000
    assert world.awarded(world.buy(10_000, at="2022-02-20"), "chiyoda-monthly") == 1_000
    world.engine.close()


def test_the_lane_leaves_a_monthly_cap_to_the_python_path(
        monthly: Catalog, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    lines = [_apply(), _buy(1, 6_000, day="2022-02-01"), _buy(2, 6_000, day="2022-02-28"),
             _buy(3, 20_000, day="2022-03-01"), _buy(4, 20_000, day="2022-04-10"),
             _line(type="refund", source="paypay", id="r1", person="MK-A",
                   at="2022-04-11T12:00:00+09:00", provider="paypay", transaction="t3",
                   amount=20_000)]
    events.write_bytes(b"\n".join(lines) + b"\n")
    fast = assert_same(monthly, events, tmp_path)
    # the national premium pays 25% up to 5,000; the monthly program 20%, 2,000 a month
    assert _points(fast) == [
        ("paypay/t1", 1_500), ("paypay/t1", 1_200),
        ("paypay/t2", 1_500), ("paypay/t2", 800),
        ("paypay/t3", 2_000), ("paypay/t3", 2_000),
        ("paypay/t4", 1_000),
        ("paypay/r1", -2_000), ("paypay/r1", -2_000)]
    # the purchases in the program's region took the Python path; the application and the
    # refund (which gives back what the awards' recorded caps hold) took the lane
    assert fast.report.lane_lines == 2


def test_a_monthly_cap_on_redis_is_the_embedded_result(
        monthly: Catalog, redis_client: redis.Redis, tmp_path: Path) -> None:  # noqa: F811
    events = tmp_path / "events.jsonl"
    # no repeated lines: the lane, which knows on Redis only the event keys it saw itself,
    # would leave the repeats of the Python path's purchases to the Python path, and count
    # them there rather than in the lane, which the comparison below does not allow
    generate(events, persons=200, events=3_000, seed=23, focus=["131016"], focus_share=0.5,
             adversarial=frozenset({"out_of_order"}))
    fast = assert_same_on_redis(monthly, events, redis_client, tmp_path)
    assert any(key.startswith("pm|chiyoda-monthly|") for key in fast["counters"])


def test_a_period_given_twice_is_a_located_error(tmp_path: Path) -> None:
    (tmp_path / "providers.yaml").write_bytes((RULES / "providers.yaml").read_bytes())
    (tmp_path / "131016-chiyoda").mkdir()
    twice = MONTHLY + "  - {per: month, cap: 3000}\n"
    (tmp_path / "131016-chiyoda" / "monthly.yaml").write_text(twice)
    with pytest.raises(RuleFileError) as raised:
        load_catalog(tmp_path)
    assert any("give each period (per) once" in p.message for p in raised.value.problems)

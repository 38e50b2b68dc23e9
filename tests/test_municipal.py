"""Every shipped municipal program: a table of events and the exact points each earns."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pointengine.catalog.loading import load_catalog
from pointengine.cli.explain import describe
from pointengine.decide.engine import Decision, Engine
from pointengine.model.events import AnyEvent
from pointengine.model.refusals import Refusal
from pointengine.store.contract import Outcome
from pointengine.store.memory import MemoryStore
from tests.world import RULES, World

P1 = {"phase": 1, "at": "2020-10-01", "card": "2020-08-01"}
P1_DAY = "2020-11-01"

# (program, person's residence, chosen provider, event kind, event fields, expected points)
PREMIUMS: list[tuple[str, str, str, str, dict[str, Any], int]] = [
    # 厚真町 B: +25% at stores in the town, cap 5,000, PayPay.
    ("atsuma-premium", "131016", "paypay", "purchase", {"amount": 4_001, "where": "015814"}, 1_000),
    ("atsuma-premium", "131016", "paypay", "purchase", {"amount": 4_000, "where": "015857"}, 0),
    ("atsuma-premium", "131016", "au-pay", "purchase", {"amount": 4_000, "where": "015814"}, 0),
    # 常陸太田市 B: +20% at target stores, cap 4,000.
    ("hitachiota-premium", "131016", "paypay", "purchase",
     {"amount": 1_999, "where": "082121", "store": "HO-0003"}, 399),
    ("hitachiota-premium", "131016", "paypay", "purchase",
     {"amount": 1_999, "where": "082121", "store": "HO-9999"}, 0),
    # 宇都宮市 B: flat 1,000 at a target store.
    ("utsunomiya-first-purchase", "131016", "majica", "purchase",
     {"amount": 300, "where": "092011", "store": "UT-0001"}, 1_000),
    ("utsunomiya-first-purchase", "131016", "paypay", "purchase",
     {"amount": 300, "where": "092011", "store": "UT-0001"}, 0),
    # 魚津市 B: +15%, cap 3,000.
    ("uozu-premium", "131016", "au-pay", "purchase", {"amount": 1_001, "where": "162043"}, 150),
    # いなべ市 C: +25% of residents' charges, cap 5,000, WAON.
    ("inabe-charge-premium", "242144", "waon", "charge", {"amount": 3_000}, 750),
    ("inabe-charge-premium", "131016", "waon", "charge", {"amount": 3_000}, 0),
    # 滋賀県 B: +5% at stores anywhere in the prefecture, cap 1,000.
    ("shiga-purchase-premium", "131016", "paypay", "purchase",
     {"amount": 10_019, "where": "252018"}, 500),
    ("shiga-purchase-premium", "131016", "paypay", "purchase",
     {"amount": 10_019, "where": "262013"}, 0),
    # 滋賀県 D: +5% of residents' charges at stores in the prefecture, cap 1,000.
    ("shiga-charge-premium", "252018", "waon", "charge", {"amount": 5_000, "where": "252018"}, 250),
    ("shiga-charge-premium", "131016", "waon", "charge", {"amount": 5_000, "where": "252018"}, 0),
    ("shiga-charge-premium", "252018", "waon", "charge", {"amount": 5_000, "where": "131016"}, 0),
    # 岸和田市 B and 三木市 B: +25%, cap 5,000.
    ("kishiwada-premium", "131016", "rakuten-edy", "purchase",
     {"amount": 30_000, "where": "272027"}, 5_000),
    ("miki-premium", "131016", "paypay", "purchase", {"amount": 2_222, "where": "282154"}, 555),
    # 徳島県 B: +30%, cap 3,000; D: residents' charges in the prefecture.
    ("tokushima-purchase-premium", "131016", "d-barai", "purchase",
     {"amount": 3_333, "where": "362018"}, 999),
    ("tokushima-charge-premium", "362018", "yumeca", "charge",
     {"amount": 20_000, "where": "362018"}, 3_000),
    ("tokushima-charge-premium", "131016", "yumeca", "charge",
     {"amount": 20_000, "where": "362018"}, 0),
    # 川南町 B: +25% at target stores, TORON.
    ("kawaminami-premium", "131016", "toron", "purchase",
     {"amount": 4_000, "where": "454052", "store": "KW-0002"}, 1_000),
]


@pytest.mark.parametrize(("program", "residence", "provider", "kind", "fields", "expected"),
                         PREMIUMS)
def test_phase1_add_on(world: World, program: str, residence: str, provider: str, kind: str,
                       fields: dict[str, Any], expected: int) -> None:
    world.apply(provider=provider, residence=residence, **P1)
    if kind == "purchase":
        decision = world.buy(fields["amount"], at=P1_DAY, provider=provider,
                             where=fields["where"], store=fields.get("store", "ST1"))
    else:
        decision = world.charge(fields["amount"], at=P1_DAY, provider=provider,
                                where=fields.get("where"))
    assert world.awarded(decision, program) == expected


def test_national_and_municipal_stack_under_their_own_caps(world: World) -> None:
    world.apply(provider="paypay", **P1)
    decision = world.buy(30_000, at=P1_DAY, where="015814")
    assert world.awarded(decision, "national-phase1-premium") == 5_000
    assert world.awarded(decision, "atsuma-premium") == 5_000


def test_kisarazu_grant_on_application_with_aqua_coin(world: World) -> None:
    decision = world.apply(provider="aqua-coin", **P1)
    assert world.awarded(decision, "kisarazu-aqua-coin-grant") == 1_000
    assert world.awarded(world.apply(provider="aqua-coin", person="MK-B", phase=2),
                         "kisarazu-aqua-coin-grant") == 0


def test_nishiizu_grant_for_residents_only(world: World) -> None:
    resident = world.apply(provider="sunset-coin", residence="223069", **P1)
    outsider = world.apply(person="MK-B", provider="sunset-coin", residence="131016", **P1)
    assert world.awarded(resident, "nishiizu-sunset-coin-grant") == 5_000
    assert world.awarded(outsider, "nishiizu-sunset-coin-grant") == 0


def test_utsunomiya_flat_grant_is_paid_once(world: World) -> None:
    world.apply(provider="au-pay", **P1)
    first = world.buy(100, at=P1_DAY, provider="au-pay", where="092011", store="UT-0002")
    second = world.buy(100, at=P1_DAY, provider="au-pay", where="092011", store="UT-0003")
    assert world.awarded(first, "utsunomiya-first-purchase") == 1_000
    assert world.awarded(second, "utsunomiya-first-purchase") == 0


def test_miyoshi_residents_at_city_stores(world: World) -> None:
    world.apply(residence="342092")
    assert world.awarded(world.buy(10_001, where="342092"), "miyoshi-premium") == 3_000
    assert world.awarded(world.buy(20_000, where="342092"), "miyoshi-premium") == 3_000
    assert world.awarded(world.buy(20_000, where="342092"), "miyoshi-premium") == 0
    world.apply(person="MK-B", residence="131016")
    assert world.awarded(world.buy(10_000, person="MK-B", where="342092"),
                         "miyoshi-premium") == 0


def test_miyakonojo_grant_for_resident_card_holders(world: World) -> None:
    decision = world.apply(provider="miyakonojo-coin", residence="452025")
    assert world.awarded(decision, "miyakonojo-local-currency-grant") == 7_000


def test_miyazaki_pays_per_child_born_in_the_period(world: World) -> None:
    decision = world.apply(residence="452017",
                           children_birth_dates=["2020-04-27", "2020-04-28", "2021-04-01",
                                                 "2021-04-02"])
    assert world.awarded(decision, "miyazaki-child-grant") == 60_000


def test_miyazaki_pays_each_child_of_a_household_once(world: World) -> None:
    def parent(person: str, children: list[str], household: str = "H-1") -> int:
        decision = world.apply(person=person, residence="452017", household=household,
                               children_birth_dates=children)
        return world.awarded(decision, "miyazaki-child-grant")

    assert parent("MK-MOM", ["2020-06-01"]) == 30_000
    assert parent("MK-DAD", ["2020-06-01"]) == 0  # the same child
    assert parent("MK-DAD", ["2020-06-01", "2021-01-10"]) == 30_000  # a second child
    assert parent("MK-AUNT", ["2020-06-01"], household="H-2") == 30_000  # another household


MIYAZAKI = "miyazaki-child-grant"


def miyazaki_parent(world: World, person: str, children: list[str],
                    household: str | None = "H-1") -> Decision:
    """A phase-2 application of a 宮崎市 resident listing ``children``' birth dates."""
    extra = {"household": household} if household else {}
    return world.apply(person=person, residence="452017", children_birth_dates=children,
                       **extra)


def test_miyazaki_pays_both_parents_of_a_household_for_different_children(
        world: World) -> None:
    mother = miyazaki_parent(world, "MK-MOM", ["2020-06-01"])
    father = miyazaki_parent(world, "MK-DAD", ["2021-02-02"])
    assert world.awarded(mother, MIYAZAKI) == 30_000
    assert world.awarded(father, MIYAZAKI) == 30_000
    assert [o.limited_by for o in father.applied.outcomes if o.program == MIYAZAKI] == [None]
    assert world.store.counter(f"pp|{MIYAZAKI}|household:H-1|2020-06-01") == 30_000
    assert world.store.counter(f"pp|{MIYAZAKI}|household:H-1|2021-02-02") == 30_000


def test_miyazaki_pays_a_child_both_parents_list_once(world: World) -> None:
    assert world.awarded(miyazaki_parent(world, "MK-MOM", ["2020-06-01"]), MIYAZAKI) == 30_000
    father = miyazaki_parent(world, "MK-DAD", ["2020-06-01"])
    assert father.applied.outcomes == [
        Outcome(MIYAZAKI, 1, 30_000, 0, "paid for the household's children")]
    assert world.points("MK-MOM", MIYAZAKI) + world.points("MK-DAD", MIYAZAKI) == 30_000


def test_miyazaki_pays_twins_each_once_per_household(world: World) -> None:
    twins = ["2020-09-09", "2020-09-09"]
    assert world.awarded(miyazaki_parent(world, "MK-MOM", twins), MIYAZAKI) == 60_000
    assert world.awarded(miyazaki_parent(world, "MK-DAD", ["2020-09-09"]), MIYAZAKI) == 0
    assert world.awarded(miyazaki_parent(world, "MK-DAD", twins), MIYAZAKI) == 0
    # triplets after all: the third child born that day is paid, to whoever lists it
    triplets = miyazaki_parent(world, "MK-DAD", ["2020-09-09"] * 3)
    assert triplets.applied.outcomes == [Outcome(MIYAZAKI, 1, 90_000, 30_000,
                                                 "paid for the household's children")]
    assert world.points("MK-MOM", MIYAZAKI) == 60_000
    assert world.points("MK-DAD", MIYAZAKI) == 30_000


def test_miyazaki_pays_the_second_parent_for_a_third_child(world: World) -> None:
    first = miyazaki_parent(world, "MK-MOM", ["2020-06-01", "2021-02-02"])
    assert world.awarded(first, MIYAZAKI) == 60_000
    third = miyazaki_parent(world, "MK-DAD", ["2021-03-03", "2020-06-01", "2021-02-02"])
    # one claim per birth date, in date order, each capped for the household and that date
    assert third.applied.outcomes == [
        Outcome(MIYAZAKI, 1, 30_000, 0, "paid for the household's children"),
        Outcome(MIYAZAKI, 1, 30_000, 0, "paid for the household's children"),
        Outcome(MIYAZAKI, 1, 30_000, 30_000, None)]
    assert [(e.person, e.points) for e in world.sink.entries if e.program == MIYAZAKI] == [
        ("MK-MOM", 30_000), ("MK-MOM", 30_000), ("MK-DAD", 30_000)]
    assert world.store.totals()[(MIYAZAKI, "paypay")] == 90_000


def test_miyazaki_pays_each_parent_when_no_household_is_named(world: World) -> None:
    assert world.awarded(miyazaki_parent(world, "MK-MOM", ["2020-06-01"], None),
                         MIYAZAKI) == 30_000
    assert world.awarded(miyazaki_parent(world, "MK-DAD", ["2020-06-01"], None),
                         MIYAZAKI) == 30_000
    again = miyazaki_parent(world, "MK-DAD", ["2020-06-01", "2021-02-02"], None)
    assert again.applied.outcomes == [Outcome(MIYAZAKI, 1, 60_000, 30_000, "person cap")]
    assert world.points("MK-DAD", MIYAZAKI) == 60_000
    assert world.store.counter(f"pp|{MIYAZAKI}|MK-DAD") == 60_000


def test_miyazaki_keeps_the_household_an_earlier_application_named(world: World) -> None:
    assert world.awarded(miyazaki_parent(world, "MK-MOM", ["2020-06-01"]), MIYAZAKI) == 30_000
    world.apply(person="MK-DAD", residence="452017", household="H-1")  # no children yet
    assert world.awarded(miyazaki_parent(world, "MK-DAD", ["2020-06-01"], None), MIYAZAKI) == 0


def test_a_per_child_group_total_counts_every_birth_dates_claim(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    grant = rules / "452017-miyazaki" / "child-grant.yaml"
    grant.write_text(grant.read_text(encoding="utf-8").replace(
        "budget: {yen: 120000000}",
        "budget: {yen: 120000000}\nperson_total: {group: miyazaki-family, cap: 50000}"),
        encoding="utf-8")
    world = World(load_catalog(rules))
    decision = miyazaki_parent(world, "MK-MOM", ["2021-02-02", "2020-06-01", "2020-06-01"])
    assert decision.applied.outcomes == [
        Outcome(MIYAZAKI, 1, 60_000, 50_000, "miyazaki-family total per person"),
        Outcome(MIYAZAKI, 1, 30_000, 0, "miyazaki-family total per person")]
    assert world.store.counter("pg|miyazaki-family|MK-MOM") == 50_000
    # the household was paid 50,000 of the twins' 60,000 and nothing for 2021-02-02
    father = miyazaki_parent(world, "MK-DAD", ["2020-06-01", "2020-06-01", "2021-02-02"])
    assert [o.awarded for o in father.applied.outcomes] == [10_000, 30_000]
    assert world.store.counter("pg|miyazaki-family|MK-DAD") == 40_000
    world.engine.close()


def test_explain_adds_up_a_programs_claims_for_one_event(world: World) -> None:
    miyazaki_parent(world, "MK-MOM", ["2020-06-01"])
    father = miyazaki_parent(world, "MK-DAD", ["2020-06-01", "2021-02-02"])
    assert f"  {MIYAZAKI}@v1: awarded 30,000 of 60,000; limited by paid for the household's " \
           "children" in describe(father)
    assert f"  {MIYAZAKI}@v1: awarded 30,000" in describe(
        miyazaki_parent(world, "MK-DAD", ["2021-03-03"]))


def test_kofu_points_per_activity_for_residents_aged_19(world: World) -> None:
    world.apply(residence="192015", birth_date="2003-06-01")
    world.apply(person="MK-B", residence="192015", birth_date="2003-06-02")

    def attend(person: str, activity: str, day: str = "2022-06-01") -> int:
        decision = world.run(world.event("participation", person, day, municipality="192015",
                                         activity=activity))[0]
        return world.awarded(decision, "kofu-health-activity")

    assert attend("MK-A", "health-checkup") == 1_000
    assert attend("MK-A", "health-walk") == 100
    assert attend("MK-B", "health-checkup") == 0  # 18 until 2022-06-02
    assert attend("MK-B", "health-checkup", "2022-06-02") == 1_000
    assert attend("MK-A", "unknown-event") == 0


def test_explain_tells_a_visitor_why_a_residents_only_activity_paid_nothing(
        world: World) -> None:
    world.apply(residence="131016", birth_date="1980-01-01")  # lives in Tokyo
    decision = world.run(world.event("participation", "MK-A", "2022-06-01",
                                     municipality="192015", activity="health-checkup"))[0]
    assert world.failed(decision, "kofu-health-activity") == "resident"
    assert world.awarded(decision, "kofu-health-activity") == 0


def lottery_entrants(world: World, points: Sequence[int]) -> list[AnyEvent]:
    """Kumamoto residents, the n-th with ``points[n]`` health points (applications are run;
    the participations are returned)."""
    out = []
    for n, health in enumerate(points):
        world.apply(person=f"MK-{n}", residence="431001")
        out.append(world.event("participation", f"MK-{n}", "2022-05-01", municipality="431001",
                               activity="walk", health_points=health))
    return out


def kumamoto_draw(world: World, day: str = "2023-04-03") -> AnyEvent:
    """A draw of Kumamoto's lottery."""
    return world.event("lottery_draw", "MK-OFFICIAL", day, program="kumamoto-health-lottery",
                       source="kumamoto")


def lottery_winners(world: World) -> list[str]:
    """The persons the lottery paid, in order."""
    return sorted(e.person for e in world.sink.entries if e.program == "kumamoto-health-lottery")


def test_kumamoto_lottery_is_reproducible(world: World) -> None:
    for participation in lottery_entrants(world, [100, 100, 100, 100, 50]):
        world.run(participation)
    draw = world.run(kumamoto_draw(world))[0]
    assert lottery_winners(world) == ["MK-0", "MK-1", "MK-2", "MK-3"]
    assert all(o.awarded == 5_000 for o in draw.applied.outcomes)


def test_a_draw_counts_the_points_of_its_own_batch_and_is_held_once(world: World) -> None:
    decisions = world.run(*lottery_entrants(world, [100, 120]), kumamoto_draw(world),
                          kumamoto_draw(world, "2023-04-04"))
    assert lottery_winners(world) == ["MK-0", "MK-1"]
    assert decisions[-1].applied.reason == ("the lottery of kumamoto-health-lottery was drawn "
                                            "already")
    assert decisions[-1].applied.code is Refusal.LOTTERY_ALREADY_DRAWN


def test_a_draw_before_the_period_ends_is_refused(world: World) -> None:
    world.run(*lottery_entrants(world, [100]))
    early = world.run(kumamoto_draw(world, "2023-03-31"))[0]
    assert early.applied.reason == ("the lottery of kumamoto-health-lottery is drawn after its "
                                    "period, which ends on 2023-03-31")
    assert early.applied.code is Refusal.LOTTERY_NOT_DUE
    assert lottery_winners(world) == []
    assert world.run(kumamoto_draw(world, "2023-04-01"))[0].applied.status == "applied"
    assert lottery_winners(world) == ["MK-0"]


def test_provider_allocation_refuses_persons_past_it(tmp_path: Path) -> None:
    # 厚真町 allocates persons to PayPay first come, first served; shrink it to 2 to fill it.
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    atsuma = next((rules / "015814-atsuma").glob("*.yaml"))
    atsuma.write_text(atsuma.read_text(encoding="utf-8").replace(
        "{provider: paypay, persons: 2000}", "{provider: paypay, persons: 2}"), encoding="utf-8")
    world = World(load_catalog(rules))
    for person in ("MK-1", "MK-2", "MK-3"):
        world.apply(person=person, **P1)
    first, second, late = (world.buy(400, person=p, at=P1_DAY, where="015814")
                           for p in ("MK-1", "MK-2", "MK-3"))
    assert [world.awarded(d, "atsuma-premium") for d in (first, second, late)] == [100, 100, 0]
    refused = [o for o in late.applied.outcomes if o.program == "atsuma-premium"]
    assert refused[0].limited_by == "paypay's allocation of persons"
    assert world.awarded(world.buy(400, person="MK-1", at=P1_DAY, where="015814"),
                         "atsuma-premium") == 100
    world.engine.close()


def test_the_router_asks_a_residents_program_only_for_its_residents(world: World) -> None:
    engine = Engine(world.engine.catalog, MemoryStore())  # deciding, not explaining
    miyoshi = engine.ruleset(engine.catalog.programs["miyoshi-premium"].current)

    def asked() -> int:
        return miyoshi.hits + miyoshi.misses

    resident = world.event("mynapoint_application", "MK-A", "2022-01-10", phase=2,
                           provider="paypay", card_applied_on="2021-12-01", residence="342092")
    visitor = world.event("mynapoint_application", "MK-B", "2022-01-10", phase=2,
                          provider="paypay", card_applied_on="2021-12-01", residence="131016")
    engine.process([resident, visitor])
    engine.process([world.event("purchase", "MK-A", "2022-02-01", provider="paypay",
                                amount=10_000, store="S", store_municipality="131016")])
    assert asked() == 1  # a resident shopping elsewhere: asked (and refused: in_region)
    engine.process([world.event("purchase", "MK-B", "2022-02-01", provider="paypay",
                                amount=10_000, store="S", store_municipality="342092")])
    assert asked() == 1  # a visitor: never asked
    engine.close()


def test_explaining_asks_every_program_of_the_places(world: World) -> None:
    world.apply(person="MK-B", residence="131016")
    visitor = world.buy(10_000, person="MK-B", where="342092")
    assert world.failed(visitor, "miyoshi-premium") == "resident"

"""National Mynapoint, exact yen for every rule of rules/national/."""

from __future__ import annotations

from tests.world import World

CARD = "national-phase2-card"
HEALTH = "national-phase2-health-insurance"
ACCOUNT = "national-phase2-public-funds-account"
PHASE1 = "national-phase1-premium"


def test_premium_is_25_percent_floored(world: World) -> None:
    world.apply()
    assert world.awarded(world.buy(999), CARD) == 249


def test_transaction_crossing_the_cap_earns_only_the_remainder(world: World) -> None:
    world.apply()
    first, second = world.buy(19_000), world.buy(2_000)
    assert world.awarded(first, CARD) == 4_750
    assert world.awarded(second, CARD) == 250
    assert second.applied.outcomes[0].limited_by == "person cap"
    assert world.awarded(world.buy(10_000), CARD) == 0
    assert world.points("MK-A", CARD) == 5_000


def test_purchase_on_a_charge_basis_provider_earns_nothing(world: World) -> None:
    world.apply(provider="waon")
    decision = world.buy(4_000, provider="waon")
    assert world.awarded(decision, CARD) == 0
    assert world.failed(decision, CARD) == "basis"
    assert world.awarded(world.charge(4_000, provider="waon"), CARD) == 1_000


def test_money_charged_and_then_spent_earns_once(world: World) -> None:
    world.apply(provider="paypay")  # a purchase-basis provider
    assert world.awarded(world.charge(2_000, provider="paypay"), CARD) == 0
    assert world.awarded(world.buy(2_000, provider="paypay"), CARD) == 500


def test_only_the_chosen_providers_transactions_count(world: World) -> None:
    world.apply(provider="paypay")
    decision = world.buy(4_000, provider="d-barai")
    assert world.awarded(decision, CARD) == 0
    assert world.failed(decision, CARD) == "chosen_provider"


def test_health_insurance_registration_twice_pays_7500_once(world: World) -> None:
    world.apply(at="2022-07-01")
    first = world.run(world.event("health_insurance_registration", "MK-A", "2022-07-02"))[0]
    second = world.run(world.event("health_insurance_registration", "MK-A", "2022-07-03"))[0]
    assert world.awarded(first, HEALTH) == 7_500
    assert world.awarded(second, HEALTH) == 0
    assert world.points("MK-A", HEALTH) == 7_500


def test_registration_before_the_window_is_paid_on_a_later_application(world: World) -> None:
    world.run(world.event("public_funds_account_registration", "MK-A", "2022-03-28"))
    world.apply(at="2022-02-01")
    repeat = world.apply(at="2022-07-05")
    assert world.awarded(repeat, ACCOUNT) == 7_500


def test_all_three_parts_reach_20000_and_not_a_yen_more(world: World) -> None:
    world.apply(at="2022-07-01")
    world.buy(40_000, at="2022-07-01")
    world.run(world.event("health_insurance_registration", "MK-A", "2022-07-02"),
              world.event("public_funds_account_registration", "MK-A", "2022-07-03"))
    assert world.points("MK-A") == 20_000
    assert world.points("MK-A", CARD) == 5_000
    world.buy(4_000, at="2022-07-04")
    assert world.points("MK-A") == 20_000


def test_events_outside_the_window_earn_nothing(world: World) -> None:
    world.apply(at="2022-01-01")
    assert world.awarded(world.buy(4_000, at="2021-12-31"), CARD) == 0
    assert world.awarded(world.buy(4_000, at="2023-03-01"), CARD) == 0
    assert world.awarded(world.buy(4_000, at="2023-02-28"), CARD) == 1_000


def test_the_window_is_judged_in_jst_not_utc(world: World) -> None:
    world.apply(at="2022-01-01")
    # 2023-02-28T15:30Z is 2023-03-01 00:30 JST: outside the window.
    late = world.run(world.event("purchase", "MK-A", "2023-02-28T15:30:00+00:00",
                                 provider="paypay", amount=4_000, store="S",
                                 store_municipality="131016"))[0]
    assert world.awarded(late, CARD) == 0


def test_application_outside_the_window_earns_nothing(world: World) -> None:
    world.apply(at="2023-03-01")
    assert world.awarded(world.buy(4_000, at="2023-03-02"), CARD) == 0


def test_card_deadline_moves_with_the_rule_version(world: World) -> None:
    world.apply(card="2022-11-15", at="2022-09-01")
    before = world.buy(4_000, at="2022-09-20")
    after = world.buy(4_000, at="2022-10-05")
    assert world.awarded(before, CARD) == 0
    assert world.failed(before, CARD) == "card_deadline"
    assert world.awarded(after, CARD) == 1_000
    assert [e.version for e in world.sink.entries if e.program == CARD] == [2]


def test_phase1_applicants_are_excluded_from_part_1_only(world: World) -> None:
    world.apply(phase=1, at="2020-10-01", card="2020-08-01")
    assert world.awarded(world.buy(4_000, at="2020-10-02"), PHASE1) == 1_000
    world.apply(phase=2, at="2022-07-01")
    assert world.awarded(world.buy(4_000, at="2022-07-02"), CARD) == 0
    registered = world.run(world.event("health_insurance_registration", "MK-A", "2022-07-03"))
    assert world.awarded(registered[0], HEALTH) == 7_500


def test_declared_phase1_application_excludes_too(world: World) -> None:
    world.apply(applied_in_phase1=True)
    assert world.awarded(world.buy(4_000), CARD) == 0


def test_refund_after_the_cap_frees_exactly_the_refunded_share(world: World) -> None:
    world.apply()
    world.buy(19_000, id="t1")
    world.buy(2_000, id="t2")
    refund = world.run(world.event("refund", "MK-A", "2022-02-02", provider="paypay",
                                   transaction="t1", amount=1_000))[0]
    assert refund.applied.reversed == {CARD: 250}
    assert world.points("MK-A", CARD) == 4_750
    assert world.awarded(world.buy(2_000), CARD) == 250


def test_partial_refunds_take_back_the_cumulative_floor(world: World) -> None:
    world.apply()
    world.buy(999, id="t1")
    first = world.run(world.event("refund", "MK-A", "2022-02-02", provider="paypay",
                                  transaction="t1", amount=500))[0]
    second = world.run(world.event("refund", "MK-A", "2022-02-03", provider="paypay",
                                   transaction="t1", amount=499))[0]
    assert first.applied.reversed == {CARD: 124}
    assert second.applied.reversed == {CARD: 125}
    assert world.points("MK-A", CARD) == 0


def test_refund_of_unknown_transaction_or_too_much_changes_nothing(world: World) -> None:
    world.apply()
    world.buy(1_000, id="t1")
    unknown = world.run(world.event("refund", "MK-A", "2022-02-02", provider="paypay",
                                    transaction="nope", amount=100))[0]
    too_much = world.run(world.event("refund", "MK-A", "2022-02-02", provider="paypay",
                                     transaction="t1", amount=1_001))[0]
    assert unknown.applied.status == "rejected"
    assert unknown.applied.reason == "unknown transaction test/nope for MK-A"
    assert too_much.applied.status == "rejected"
    assert world.points("MK-A") == 250


def test_refund_names_the_person_and_provider_who_paid(world: World) -> None:
    world.apply()
    world.apply(person="MK-B")
    world.buy(1_000, id="t1")
    for person, provider in (("MK-B", "paypay"), ("MK-A", "au-pay")):
        other = world.run(world.event("refund", person, "2022-02-02", provider=provider,
                                      transaction="t1", amount=1_000))[0]
        assert other.applied.reason == f"unknown transaction test/t1 for {person}"
    assert (world.points("MK-A"), world.points("MK-B")) == (250, 0)
    own = world.run(world.event("refund", "MK-A", "2022-02-02", provider="paypay",
                                transaction="t1", amount=1_000))[0]
    assert own.applied.reversed == {CARD: 250}


def test_an_event_applied_twice_changes_nothing(world: World) -> None:
    world.apply()
    purchase = world.event("purchase", "MK-A", "2022-02-01", provider="paypay", amount=4_000,
                           store="S", store_municipality="131016")
    first, again = world.run(purchase, purchase)
    assert world.awarded(first, CARD) == 1_000
    assert again.applied.status == "duplicate"
    assert world.run(purchase)[0].applied.status == "duplicate"
    assert world.points("MK-A") == 1_000


def test_a_second_provider_in_the_same_phase_is_refused(world: World) -> None:
    world.apply(provider="paypay")
    refused = world.apply(provider="waon", at="2022-01-11")
    assert refused.applied.status == "rejected"
    assert "one provider per phase" in (refused.applied.reason or "")


def test_unknown_provider_is_refused(world: World) -> None:
    world.apply()
    decision = world.buy(1_000, provider="nopay")
    assert decision.applied.status == "rejected"
    assert decision.applied.reason == "unknown provider 'nopay'"


def test_purchase_before_the_application_earns_nothing(world: World) -> None:
    world.apply(at="2022-03-01")
    assert world.awarded(world.buy(4_000, at="2022-02-01"), CARD) == 0


def test_ledger_lines_name_event_person_program_version_and_provider(world: World) -> None:
    world.apply()
    world.buy(4_000, id="p1")
    entry = world.sink.entries[-1]
    assert (entry.kind, entry.event, entry.person, entry.program, entry.version, entry.points,
            entry.provider, entry.at) == ("award", "test/p1", "MK-A", CARD, 1, 1_000, "paypay",
                                          "2022-02-01T12:00:00+09:00")

"""The engine's batches: an event refused is not applied, so its key can be tried again."""

from __future__ import annotations

from tests.world import World

CARD = "national-phase2-card"


def test_a_refund_refused_as_unknown_is_applied_when_sent_again_in_the_same_batch(
        world: World) -> None:
    world.apply()
    early = world.event("refund", "MK-A", "2022-02-02", provider="paypay", transaction="b1",
                        amount=2_000, id="r1")
    purchase = world.event("purchase", "MK-A", "2022-02-01", provider="paypay", amount=4_000,
                           store="ST1", store_municipality="131016", id="b1")
    again = world.event("refund", "MK-A", "2022-02-02", provider="paypay", transaction="b1",
                        amount=2_000, id="r1")
    first, bought, second = world.run(early, purchase, again)
    assert first.applied.status == "rejected"
    assert bought.applied.status == "applied"
    assert second.applied.status == "applied"
    assert second.applied.reversed == {CARD: 500}
    assert world.points("MK-A", CARD) == 500


def test_an_application_refused_for_its_provider_is_refused_again_not_a_duplicate(
        world: World) -> None:
    world.apply(provider="paypay")
    other = world.event("mynapoint_application", "MK-A", "2022-01-11", phase=2,
                        provider="waon", card_applied_on="2021-12-01", residence="131016",
                        id="a2")
    first, second = world.run(other, other)
    assert first.applied.status == second.applied.status == "rejected"
    assert second.applied.code == "provider_already_chosen"


def test_a_duplicate_in_one_batch_is_still_a_duplicate(world: World) -> None:
    world.apply()
    purchase = world.event("purchase", "MK-A", "2022-02-01", provider="paypay", amount=4_000,
                           store="ST1", store_municipality="131016", id="b1")
    first, second = world.run(purchase, purchase)
    assert (first.applied.status, second.applied.status) == ("applied", "duplicate")
    assert world.points("MK-A", CARD) == 1_000

"""Refusal codes: every code has its message, made in one place from the facts of the case."""

from __future__ import annotations

import pytest

from pointengine.errors import IntegrityError
from pointengine.model.refusals import Refusal, refusal_message
from pointengine.store.contract import Applied


@pytest.mark.parametrize("code", list(Refusal))
def test_every_code_has_a_message(code: Refusal) -> None:
    facts = {"provider": "nopay", "phase": 2, "chosen": "paypay", "transaction": "qp/t1",
             "person": "MK-1", "amount": 500, "left": 400, "whole": 1000, "program": "p",
             "ends": "2023-03-31"}
    assert refusal_message(code, **facts)


def test_a_refused_event_carries_its_code_and_its_message() -> None:
    refused = Applied.refused("qp/r1", Refusal.REFUND_EXCEEDS_PAYMENT, amount=401, left=400,
                              whole=1000)
    assert refused.status == "rejected"
    assert refused.refusal() == (
        Refusal.REFUND_EXCEEDS_PAYMENT,
        "refund of 401 yen exceeds what is left of the transaction (400 of 1000 yen)")


def test_a_duplicate_has_its_own_status() -> None:
    assert Applied.refused("qp/t1", Refusal.DUPLICATE).status == "duplicate"


def test_an_applied_event_has_no_refusal() -> None:
    with pytest.raises(IntegrityError):
        Applied("qp/t1", "applied").refusal()

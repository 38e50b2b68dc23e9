"""The condition language's reference semantics."""

from __future__ import annotations

import pytest

from pointengine.decide.conditions import (
    AllOf,
    AnyOf,
    Compare,
    FieldRef,
    evaluate,
    negate,
    one_of,
)
from pointengine.errors import IntegrityError

FACT = {"type": "purchase", "provider": "paypay", "chosen2": "paypay", "day": 738_580,
        "age": 17}


@pytest.mark.parametrize(("condition", "holds"), [
    (Compare("age", ">=", 18), False), (Compare("age", ">=", 17), True),
    (Compare("age", "<", 18), True), (Compare("type", "==", "purchase"), True),
    (Compare("type", "!=", "purchase"), False),
    (Compare("provider", "==", FieldRef("chosen2")), True),
    (AllOf(()), True), (AnyOf(()), False),
    (AllOf((Compare("age", ">", 16), Compare("day", "<=", 738_580))), True),
    (AnyOf((Compare("age", ">", 17), Compare("type", "==", "charge"))), False),
    (one_of("provider", ["au-pay", "paypay", "paypay"]), True),
])
def test_evaluate(condition: Compare | AllOf | AnyOf, holds: bool) -> None:
    assert evaluate(condition, FACT) is holds
    assert evaluate(negate(condition), FACT) is not holds


def test_one_of_drops_repeats() -> None:
    assert one_of("provider", ["a", "b", "a"]) == AnyOf((Compare("provider", "==", "a"),
                                                         Compare("provider", "==", "b")))


@pytest.mark.parametrize("condition", [
    Compare("age", "==", "17"), Compare("nobody", "==", 1),
    Compare("type", "==", FieldRef("age")),
])
def test_a_programming_error_is_no_answer(condition: Compare) -> None:
    with pytest.raises(IntegrityError):
        evaluate(condition, FACT)


def test_conditions_refuse_what_a_fact_cannot_hold() -> None:
    with pytest.raises(IntegrityError):
        Compare("age", "==", True)
    with pytest.raises(IntegrityError):
        Compare("age", "~", 1)  # type: ignore[arg-type]
    with pytest.raises(IntegrityError):
        evaluate(Compare("age", "==", 1), {"age": None})  # type: ignore[dict-item]

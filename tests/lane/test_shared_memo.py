"""Rulesets of one shape share their memo and still answer exactly for their own constants."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pointengine.decide.conditions import (
    AllOf,
    AnyOf,
    Check,
    Compare,
    Condition,
    FieldRef,
    evaluate,
)
from pointengine.decide.matching import CompiledRuleset

OPS = ("==", "!=", "<", "<=", ">", ">=")
FIELDS = ("day", "age")


def _first_failure(checks: list[Check], fact: dict[str, int]) -> Check | None:
    return next((c for c in checks if not evaluate(c.condition, fact)), None)


def _shift(c: Condition, by: int) -> Condition:
    """The same condition with every constant moved by ``by`` (the order is kept)."""
    if isinstance(c, Compare):
        assert isinstance(c.value, int)
        return Compare(c.field, c.op, c.value + by)
    parts = tuple(_shift(p, by) for p in c.parts)
    return AllOf(parts) if isinstance(c, AllOf) else AnyOf(parts)


compare = st.builds(Compare, st.sampled_from(FIELDS), st.sampled_from(OPS),
                    st.integers(min_value=0, max_value=4))
conditions = st.recursive(compare, lambda inner: st.one_of(
    st.lists(inner, min_size=1, max_size=3).map(lambda p: AllOf(tuple(p))),
    st.lists(inner, min_size=1, max_size=3).map(lambda p: AnyOf(tuple(p)))), max_leaves=5)
facts = st.fixed_dictionaries({f: st.integers(min_value=-2, max_value=16) for f in FIELDS})


@settings(max_examples=60, deadline=None)
@given(st.lists(conditions, min_size=1, max_size=3), st.lists(facts, min_size=1, max_size=12))
def test_same_shape_other_constants_same_answers_as_the_reference(
        template: list[Condition], sample: list[dict[str, int]]) -> None:
    first = [Check(f"c{i}", c, "") for i, c in enumerate(template)]
    second = [Check(f"c{i}", _shift(c, 10), "") for i, c in enumerate(template)]
    a, b = CompiledRuleset("a", first), CompiledRuleset("b", second)
    try:
        assert a.shape == b.shape
        for fact in sample:
            assert a.first_failure(fact) == _first_failure(first, fact)
            assert b.first_failure(fact) == _first_failure(second, fact)
    finally:
        a.close()
        b.close()


def test_one_template_for_many_places_warms_one_memo() -> None:
    # fields of this test's own: what a check's outcomes are is shared with any live ruleset
    rulesets = [CompiledRuleset(f"p{code}", [
        Check("event", Compare("kind", "==", "purchase"), "a purchase"),
        Check("resident", Compare("home", "==", code), "a resident")])
        for code in ("011002", "131016", "342092")]
    try:
        assert rulesets[0]._memo is rulesets[1]._memo is rulesets[2]._memo
        home = {"kind": "purchase", "home": "131016"}
        answers = [r.first_failure(home) for r in rulesets]
        assert [a.name if a else None for a in answers] == ["resident", None, "resident"]
        # home is only compared by ==: its classes are "the code" and "another code"
        assert [r.misses for r in rulesets] == [1, 1, 0]
        elsewhere = {"kind": "purchase", "home": "472018"}
        assert all(r.first_failure(elsewhere).name == "resident" for r in rulesets)  # type: ignore[union-attr]
        assert [(r.misses, r.hits) for r in rulesets] == [(1, 1), (1, 1), (0, 2)]  # all shared
    finally:
        for ruleset in rulesets:
            ruleset.close()
    assert rulesets[0]._memo == {}


def test_fields_compared_for_equality_key_on_whether_they_are_equal() -> None:
    checks = [Check("enrolled", Compare("chosen", "!=", ""), "enrolled"),
              Check("same", Compare("provider", "==", FieldRef("chosen")), "with the chosen")]
    ruleset = CompiledRuleset("eq", checks)
    try:
        providers = ("paypay", "waon", "d-barai", "au-pay")
        for p in providers:
            for q in providers:
                want = None if p == q else checks[1]
                assert ruleset.first_failure({"chosen": p, "provider": q}) == want
        assert ruleset.first_failure({"chosen": "", "provider": ""}) == checks[0]
        assert ruleset.misses == 3  # equal, different, not enrolled
    finally:
        ruleset.close()


def test_rulesets_with_one_period_share_the_days_classes_until_the_last_closes() -> None:
    from pointengine.decide.matching import _CLASS_CACHES

    def period(name: str) -> CompiledRuleset:
        return CompiledRuleset(name, [Check("period", AllOf((
            Compare("day", ">=", 20990101), Compare("day", "<=", 20991231))), "in the period")])

    first, second = period("a"), period("b")
    assert first._seen[0] is second._seen[0]
    first.first_failure({"day": 20990505})
    assert second._seen[0] == {20990505: 2}  # between the two constants: classed once
    first.close()
    assert (20990101, 20991231) in _CLASS_CACHES
    second.close()
    assert (20990101, 20991231) not in _CLASS_CACHES

"""Compiled rulesets answer exactly what the reference semantics of conditions answer."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pointengine.decide.conditions import (
    OPS,
    AllOf,
    AnyOf,
    Check,
    Compare,
    Condition,
    FieldRef,
    evaluate,
    negate,
    one_of,
)
from pointengine.decide.matching import CompiledRuleset

INT_FIELDS = ("day", "age")
STR_FIELDS = ("type", "provider", "chosen")

ints = st.integers(min_value=-3, max_value=3)
strs = st.sampled_from(["", "a", "b", "c"])


def compare() -> st.SearchStrategy[Condition]:
    int_const = st.builds(Compare, st.sampled_from(INT_FIELDS), st.sampled_from(OPS), ints)
    str_const = st.builds(Compare, st.sampled_from(STR_FIELDS), st.sampled_from(OPS), strs)
    str_ref = st.builds(Compare, st.sampled_from(STR_FIELDS), st.sampled_from(("==", "!=")),
                        st.sampled_from(STR_FIELDS).map(FieldRef))
    return st.one_of(int_const, str_const, str_ref)


conditions = st.recursive(
    compare(),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda parts: AllOf(tuple(parts))),
        st.lists(inner, max_size=3).map(lambda parts: AnyOf(tuple(parts))),
    ),
    max_leaves=6,
)

facts = st.fixed_dictionaries(
    {**{f: ints for f in INT_FIELDS}, **{f: strs for f in STR_FIELDS}}
)


def reference(checks: list[Check], fact: dict[str, str | int]) -> Check | None:
    return next((c for c in checks if not evaluate(c.condition, fact)), None)


@settings(max_examples=60, deadline=None)
@given(st.lists(conditions, min_size=1, max_size=4), st.lists(facts, min_size=1, max_size=8))
def test_first_failure_matches_the_reference(conds: list[Condition],
                                             sample: list[dict[str, str | int]]) -> None:
    checks = [Check(f"c{i}", c, f"condition {i}") for i, c in enumerate(conds)]
    ruleset = CompiledRuleset("prop", checks)
    try:
        for fact in sample + sample:  # the second pass is answered from the memo
            assert ruleset.first_failure(fact) == reference(checks, fact)
    finally:
        ruleset.close()


@given(conditions, facts)
def test_negate_is_the_exact_opposite(cond: Condition, fact: dict[str, str | int]) -> None:
    assert evaluate(negate(cond), fact) is not evaluate(cond, fact)


def test_facts_of_one_class_share_a_memo_entry() -> None:
    checks = [Check("period", AllOf((Compare("day", ">=", 20220101),
                                     Compare("day", "<=", 20230228))), "in the window"),
              Check("store", one_of("store", ["S1", "S2"]), "a target store")]
    ruleset = CompiledRuleset("memo", checks)
    try:
        for day in range(20220102, 20220131):
            for store in ("X1", "X2", "X3"):
                assert ruleset.first_failure({"day": day, "store": store}) == checks[1]
        assert ruleset.first_failure({"day": 20210101, "store": "S1"}) == checks[0]
        assert ruleset.first_failure({"day": 20220301, "store": "S2"}) is None
        assert ruleset.misses == 3
    finally:
        ruleset.close()


def test_a_ruleset_without_checks_passes_everything() -> None:
    assert CompiledRuleset("empty", []).first_failure({"type": "purchase"}) is None

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
    # fields of this test's own: what a check's outcomes are is shared with any live ruleset
    checks = [Check("period", AllOf((Compare("on", ">=", 20220101),
                                     Compare("on", "<=", 20230228))), "in the window"),
              Check("store", one_of("shop", ["S1", "S2"]), "a target store")]
    ruleset = CompiledRuleset("memo", checks)
    try:
        for day in range(20220102, 20220131):
            for store in ("X1", "X2", "X3"):
                assert ruleset.first_failure({"on": day, "shop": store}) == checks[1]
        assert ruleset.first_failure({"on": 20210101, "shop": "S1"}) == checks[0]
        assert ruleset.first_failure({"on": 20220301, "shop": "S2"}) is None
        assert ruleset.misses == 3
    finally:
        ruleset.close()


def test_a_ruleset_without_checks_passes_everything() -> None:
    assert CompiledRuleset("empty", []).first_failure({"type": "purchase"}) is None


def test_a_check_known_to_fail_answers_new_keys_without_durable_rules() -> None:
    # fields of this test's own: what a check's outcomes are is shared with any live ruleset
    period = Check("period", AllOf((Compare("when", ">=", 20220101),
                                    Compare("when", "<=", 20230228))), "in the window")
    store = Check("store", one_of("where", ["S1", "S2"]), "a target store")
    resident = Check("resident", Compare("lives", "==", "131016"), "a resident")
    first = CompiledRuleset("first", [period, store])
    second = CompiledRuleset("second", [period, resident])  # another shape, the same period
    try:
        assert first.shape != second.shape
        assert first.first_failure({"when": 20240101, "where": "S1"}) == period
        assert first.misses == 1
        # after the period: the period fails whatever the store or the residence
        assert first.first_failure({"when": 20240315, "where": "X9"}) == period
        assert second.first_failure({"when": 20240101, "lives": "472018"}) == period
        assert (first.misses, second.misses) == (1, 0)
        # in the period, the store's check is not known yet: asked, once per class
        assert first.first_failure({"when": 20220505, "where": "X9"}) == store
        assert first.first_failure({"when": 20220606, "where": "S2"}) is None
        assert first.first_failure({"when": 20220707, "where": "X7"}) == store
        assert first.misses == 3
        assert second.first_failure({"when": 20220505, "lives": "131016"}) is None
        assert second.first_failure({"when": 20210505, "lives": "131016"}) == period
        assert second.misses == 2  # the period before its start was not known yet
    finally:
        first.close()
        second.close()


POOL = (
    Check("p0", AllOf((Compare("day", ">=", -1), Compare("day", "<=", 2))), ""),
    Check("p1", one_of("type", ["a", "b"]), ""),
    Check("p2", Compare("chosen", "!=", ""), ""),
    Check("p3", AnyOf((Compare("type", "==", "c"), Compare("provider", "==", FieldRef("chosen")))),
          ""),
    Check("p4", Compare("day", "<", FieldRef("age")), ""),
    Check("p5", AnyOf((Compare("age", ">=", 1), Compare("provider", "==", "b"))), ""),
    Check("p6", Compare("chosen", "==", "a"), ""),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.permutations(range(len(POOL))).map(lambda order: order[:4]),
                min_size=2, max_size=4),
       st.lists(st.tuples(st.integers(min_value=0, max_value=3), facts), min_size=1,
                max_size=30))
def test_rulesets_sharing_checks_answer_as_the_reference(
        orders: list[list[int]], asked: list[tuple[int, dict[str, str | int]]]) -> None:
    """Checks' outcomes learnt by one ruleset answer for others (their shapes differ, their
    fields are classed differently): every answer is still the reference's."""
    rulesets = [CompiledRuleset(f"r{i}", [POOL[k] for k in order])
                for i, order in enumerate(orders)]
    try:
        for which, fact in asked + asked:
            ruleset = rulesets[which % len(rulesets)]
            assert ruleset.first_failure(fact) == reference(list(ruleset.checks), fact)
    finally:
        for ruleset in rulesets:
            ruleset.close()

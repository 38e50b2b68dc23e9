"""The rule language: how a program's versions are assembled from its changes."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from pointengine.catalog.programs import merge_versions

BASE: dict[str, Any] = {
    "id": "atsuma-premium", "conditions": {"period": {"from": "2022-01-01", "to": "2022-12-31"}},
    "on": ["purchase"], "award": {"kind": "premium", "rate": "25%", "cap": 5000},
}


def test_a_change_merges_mappings_and_replaces_lists() -> None:
    change = {"version": 2, "conditions": {"min_age": 18}, "on": ["charge"],
              "award": {"cap": 3000}}
    _, v2 = merge_versions({**BASE, "versions": [change]})
    assert v2["conditions"] == {"period": BASE["conditions"]["period"], "min_age": 18}
    assert v2["on"] == ["charge"]
    assert v2["award"] == {"kind": "premium", "rate": "25%", "cap": 3000}


def test_an_award_of_another_kind_replaces_the_award() -> None:
    grant = {"kind": "grant", "amount": 500}
    _, v2, v3 = merge_versions({**BASE, "versions": [
        {"version": 2, "award": grant}, {"version": 3, "award": {"amount": 800}}]})
    assert v2["award"] == grant
    assert v3["award"] == {"kind": "grant", "amount": 800}  # the same kind: merged
    _, same = merge_versions({**BASE, "versions": [{"award": {"kind": "premium", "cap": 1}}]})
    assert same["award"] == {"kind": "premium", "rate": "25%", "cap": 1}


@given(st.from_regex(r"\s?[0-9]{1,3}(\.[0-9]{0,3})?\s?%?\s?", fullmatch=True))
def test_the_schema_of_a_rate_takes_what_the_rule_file_model_takes(text: str) -> None:
    """Editors check a rate with the schema's pattern; validate with the model: they agree."""
    import re

    from pointengine.catalog.programs import _PERCENT_IN_RANGE, _basis_points

    try:
        _basis_points(text)
        taken = True
    except ValueError:
        taken = False
    assert (re.match(_PERCENT_IN_RANGE, text) is not None) == taken

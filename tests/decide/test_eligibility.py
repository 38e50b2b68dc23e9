"""A program version's ordered checks: what is checked, in what order, against which codes."""

from __future__ import annotations

from pointengine.catalog.loading import Catalog
from pointengine.decide.conditions import evaluate
from pointengine.decide.eligibility import checks_for
from pointengine.model.events import day_number


def _names(catalog: Catalog, program: str) -> list[str]:
    return [c.name for c in checks_for(catalog.programs[program].versions[0])]


def test_the_national_card_premium_checks_in_the_order_explain_reports(catalog: Catalog) -> None:
    assert _names(catalog, "national-phase2-card") == [
        "event", "period", "enrolled", "application_period", "chosen_provider", "basis",
        "card_deadline", "phase1_excluded"]


def test_a_type_d_program_checks_residence_and_store_place(catalog: Catalog) -> None:
    assert _names(catalog, "miyoshi-premium")[-2:] == ["resident", "in_region"]
    checks = {c.name: c for c in checks_for(catalog.programs["miyoshi-premium"].versions[0])}
    fact: dict[str, str | int] = {"residence": "342092", "store_place": "242101"}
    assert evaluate(checks["resident"].condition, fact)
    assert not evaluate(checks["in_region"].condition, fact)
    assert checks["in_region"].explain == "the store is in 広島県三次市"


def test_the_period_is_inclusive_in_jst_days(catalog: Catalog) -> None:
    [period] = [c for c in checks_for(catalog.programs["miyoshi-premium"].versions[0])
                if c.name == "period"]
    version = catalog.programs["miyoshi-premium"].versions[0]
    assert version.conditions.period is not None
    first, last = version.conditions.period.from_, version.conditions.period.to
    assert evaluate(period.condition, {"day": day_number(first)})
    assert evaluate(period.condition, {"day": day_number(last)})
    assert not evaluate(period.condition, {"day": day_number(last) + 1})
    assert not evaluate(period.condition, {"day": day_number(first) - 1})

"""What an eligible event asks for, and every cap it counts in, with exact yen."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from pointengine.catalog.programs import ProgramVersion
from pointengine.decide.awards import (
    GROUP,
    MONTH,
    PERSON,
    PROGRAM,
    CapTemplate,
    claim_for,
    claim_template,
    claims_for,
    person_cap,
    requested_points,
)
from pointengine.model.events import event_from_dict
from pointengine.model.persons import Person
from pointengine.store.contract import Admission, Cap

AT = dt.datetime(2022, 2, 28, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=9)))


def program(**fields: Any) -> ProgramVersion:
    base: dict[str, Any] = {"id": "pp", "name": "pp", "jurisdiction": "national",
                            "on": ["purchase", "charge"],
                            "award": {"kind": "premium", "rate": "25%", "cap": 5000}}
    return ProgramVersion.model_validate({**base, **fields})


def purchase(amount: int) -> Any:
    return event_from_dict({"type": "purchase", "source": "qp", "id": f"t{amount}",
                            "person": "MK-1", "at": AT.isoformat(), "provider": "paypay",
                            "amount": amount, "store": "S1", "store_municipality": "131016"})


@pytest.mark.parametrize(("rate", "amount", "points"), [
    ("25%", 3_333, 833), ("25%", 3, 0), ("12.5%", 999, 124), ("30%", 19_999, 5_999),
    ("100%", 7, 7),
])
def test_a_premium_is_floored_per_transaction(rate: str, amount: int, points: int) -> None:
    version = program(award={"kind": "premium", "rate": rate, "cap": 10**6})
    assert requested_points(version, purchase(amount), Person("MK-1")) == points


def test_other_awards_ask_their_amounts() -> None:
    grant = program(on=["mynapoint_application"], award={"kind": "grant", "amount": 7_500})
    application = event_from_dict({
        "type": "mynapoint_application", "source": "mykey", "id": "a1", "person": "MK-1",
        "at": AT.isoformat(), "phase": 2, "provider": "paypay",
        "card_applied_on": "2021-12-01", "residence": "452017",
        "children_birth_dates": ["2020-05-01", "2020-05-01", "2021-04-02", "2019-01-01"]})
    assert requested_points(grant, application, Person("MK-1")) == 7_500
    assert requested_points(grant, purchase(10_000), Person("MK-1")) == 7_500
    per_child = program(on=["mynapoint_application"], award={
        "kind": "per_child", "amount": 30_000, "born": {"from": "2020-04-28", "to": "2021-04-01"}})
    assert requested_points(per_child, application, Person("MK-1")) == 60_000  # the twins
    assert person_cap(grant, 7_500) == 7_500
    assert person_cap(per_child, 60_000) == 60_000
    assert person_cap(program(), 0) == 5_000


def test_the_caps_of_a_claim_in_the_order_the_store_clips_them() -> None:
    version = program(person_total={"group": "national-phase2", "cap": 20_000},
                      period_caps=[{"per": "month", "cap": 2_000}],
                      budget={"yen": 1_000_000, "persons": 100},
                      providers=[{"provider": "paypay", "persons": 10}, {"provider": "au-pay"}])
    template = claim_template(version, "paypay")
    assert template.caps == (
        CapTemplate(PERSON, "pp|pp|", None, 5_000, "person cap"),
        CapTemplate(PERSON, "pm|pp|", MONTH, 2_000, "person cap per month"),
        CapTemplate(GROUP, "pg|national-phase2|", None, 20_000, "national-phase2 total per person"),
        CapTemplate(PROGRAM, "bu|pp", None, 1_000_000, "program budget"))
    assert template.admissions == (
        Admission("ad|pp", 100, "program budget in persons"),
        Admission("al|pp|paypay", 10, "paypay's allocation of persons"))
    assert claim_template(version, "au-pay").admissions == template.admissions[:1]
    claim = claim_for(version, "MK-1", "paypay", 1_500, AT)
    assert claim.caps == (
        Cap("pp|pp|MK-1", 5_000, "person cap"),
        Cap("pm|pp|MK-1|2022-02", 2_000, "person cap per month"),
        Cap("pg|national-phase2|MK-1", 20_000, "national-phase2 total per person"),
        Cap("bu|pp", 1_000_000, "program budget"))
    assert claim.member_key == "in|pp|MK-1"
    # the month is the event's in JST: 2022-03-01 00:30 JST is 2022-02-28 in UTC
    march = claim_for(version, "MK-1", "paypay", 1, dt.datetime(2022, 2, 28, 15, 30,
                                                               tzinfo=dt.UTC))
    assert march.caps[1].key == "pm|pp|MK-1|2022-03"


def test_a_per_child_grant_caps_each_household_birth_date() -> None:
    version = program(on=["mynapoint_application"], award={
        "kind": "per_child", "amount": 30_000, "born": {"from": "2020-04-28", "to": "2021-04-01"}})
    application = event_from_dict({
        "type": "mynapoint_application", "source": "mykey", "id": "a1", "person": "MK-1",
        "at": AT.isoformat(), "phase": 2, "provider": "paypay",
        "card_applied_on": "2021-12-01", "residence": "452017", "household": "H1",
        "children_birth_dates": ["2020-06-01", "2020-05-01", "2020-05-01"]})
    parent = Person("MK-1", household="H1")
    claims = claims_for(version, application, parent, "paypay", 90_000)
    assert [(c.points, c.caps[0]) for c in claims] == [
        (60_000, Cap("pp|pp|household:H1|2020-05-01", 60_000, "paid for the household's children")),
        (30_000, Cap("pp|pp|household:H1|2020-06-01", 30_000, "paid for the household's children"))]
    alone = claims_for(version, application, Person("MK-1"), "paypay", 90_000)
    assert [(c.points, c.caps[0].key, c.caps[0].limit) for c in alone] == [
        (90_000, "pp|pp|MK-1", 90_000)]

"""The fact an event is matched on: the event seen with its person at the event's time."""

from __future__ import annotations

import datetime as dt

from pointengine.decide.facts import build_fact
from pointengine.model.events import event_from_dict
from pointengine.model.persons import Enrolment, Person

JST = dt.timezone(dt.timedelta(hours=9))
BASES = {"waon": "charge", "paypay": "purchase"}


def charge(**fields: object) -> dict[str, object]:
    return {"type": "charge", "source": "waon", "id": "c1", "person": "MK-A",
            "at": "2022-01-31T23:30:00+09:00", "provider": "waon", "amount": 5000, **fields}


def test_a_charge_keeps_its_store_without_the_stores_municipality() -> None:
    fact = build_fact(event_from_dict(charge(store="FM-1")), None, BASES)
    assert (fact["store"], fact["store_place"], fact["store_pref"]) == ("FM-1", "", "")
    fact = build_fact(event_from_dict(charge(store="FM-1", store_municipality="242144")),
                      None, BASES)
    assert (fact["store"], fact["store_place"], fact["store_pref"]) == ("FM-1", "242144", "240001")


def test_the_person_is_seen_as_at_the_events_time() -> None:
    applied = dt.datetime(2022, 1, 10, 9, tzinfo=JST)
    person = Person("MK-A", enrolments={2: Enrolment("waon", applied, dt.date(2021, 12, 1))},
                    birth_date=dt.date(2000, 2, 1))
    person.move(applied, "131016")
    person.move(dt.datetime(2022, 2, 1, tzinfo=JST), "242144")
    fact = build_fact(event_from_dict(charge(at="2022-01-31T15:00:00+00:00")), person, BASES)
    # 2022-02-01 00:00 in JST: the day, the age and the residence of that moment
    assert (fact["day"], fact["age"], fact["residence"], fact["residence_pref"]) == (
        20220201, 22, "242144", "240001")
    assert (fact["chosen2"], fact["basis2"], fact["applied2_on"], fact["card_applied_on"]) == (
        "waon", "charge", 20220110, 20211201)
    before = build_fact(event_from_dict(charge(at="2022-01-10T08:59:59+09:00")), person, BASES)
    assert (before["chosen2"], before["applied2_on"], before["age"]) == ("", 0, 21)

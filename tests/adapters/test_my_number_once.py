"""A native record is searched for a My Number once; its canonical event is not searched again.

That is safe only while every value of the canonical event comes from the record's fields as
it is (or stripped), is a number or a time read from one, or is a constant: then a My Number
in the event was in a field, where the search found it. These tests hold every adapter to it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping

import pytest

from pointengine.adapters.base import NativeAdapter
from pointengine.adapters.quickpay import QuickPayAdapter
from pointengine.adapters.registry import ADAPTERS, adapter_for
from pointengine.adapters.traffic import generate
from pointengine.errors import MyNumberRejected
from pointengine.model.events import event_from_dict
from tests.adapters.test_quickpay import PAYMENT

CONSTANTS = {"purchase", "charge", "refund"}


def _texts(fields: Mapping[str, object]) -> set[str]:
    return {str(v).strip() for v in fields.values() if v is not None}


def _from_fields(value: object, texts: set[str]) -> bool:
    if isinstance(value, dt.datetime):
        return True  # its ISO form has no run of more than six digits
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value) in texts or f"-{value}" in texts
    return isinstance(value, str) and (value in texts or value in CONSTANTS)


@pytest.mark.parametrize("provider", sorted(ADAPTERS))
def test_every_canonical_value_is_read_from_a_field_or_a_constant(
    provider: str,
    persons: tuple[str, ...],
    stores: tuple[tuple[str, str], ...],
    window: tuple[dt.datetime, dt.datetime],
) -> None:
    native = generate(provider, persons, stores, 300, 7, *window)
    adapter = adapter_for(provider)
    assert isinstance(adapter, NativeAdapter)
    checked = 0
    for body in [native] if isinstance(native, bytes) else native:
        for record in adapter.records(body):
            texts = _texts(record.fields)
            for name, value in adapter.canonical(record.fields).items():
                assert _from_fields(value, texts), (provider, name, value)
            checked += 1
    assert checked == 300


def test_a_my_number_as_the_mykey_id_is_still_refused_by_the_model(my_number: str) -> None:
    # The record search finds it first; the model, which to_event validates with (without
    # searching the event again), refuses a MyKey ID that is a My Number too.
    record = PAYMENT | {"userMyKeyId": my_number}
    data = QuickPayAdapter().canonical(record) | {"source": "quickpay", "provider": "quickpay"}
    with pytest.raises(MyNumberRejected):
        event_from_dict(data, searched=True)
    with pytest.raises(MyNumberRejected) as caught:
        QuickPayAdapter().to_events(json.dumps(record).encode())
    assert my_number not in str(caught.value)

"""The adapter contract, the registry and the traffic generator across every mock provider."""

from __future__ import annotations

import datetime as dt
import statistics
from pathlib import Path

import pytest
import yaml

from pointengine.adapters.base import CallableAdapter, ProviderAdapter, RecordAdapter
from pointengine.adapters.registry import ADAPTERS, adapter_for
from pointengine.adapters.traffic import GENERATORS, generate
from pointengine.errors import MalformedEvent
from pointengine.model.events import AnyEvent, Charge, Purchase, Refund, event_from_dict

PROVIDERS_YAML = Path(__file__).resolve().parents[2] / "rules" / "providers.yaml"
EXPECTED = {
    "quickpay": ("qr_code", "purchase"),
    "transitcard": ("prepaid_emoney", "charge"),
    "carrierpay": ("carrier", "purchase"),
    "towncoin": ("local_currency", "charge"),
}


def events_of(provider: str, payload: bytes | list[bytes]) -> list[AnyEvent]:
    adapter = adapter_for(provider)
    bodies = payload if isinstance(payload, list) else [payload]
    return [event for body in bodies for event in adapter.to_events(body)]


def test_registry_has_one_adapter_per_mock_provider() -> None:
    assert set(ADAPTERS) == set(EXPECTED) == set(GENERATORS)
    for provider_id, cls in ADAPTERS.items():
        adapter = adapter_for(provider_id)
        assert type(adapter) is cls and adapter.provider_id == provider_id
        assert isinstance(adapter, RecordAdapter) and adapter.content_type


def test_unknown_provider_is_a_key_error_naming_the_known_ones() -> None:
    with pytest.raises(KeyError, match="quickpay"):
        adapter_for("paypay")
    with pytest.raises(KeyError, match="towncoin"):
        generate("paypay", ["MK1"], [("S1", "131016")], 1, 0, dt.datetime.now(dt.UTC),
                 dt.datetime.now(dt.UTC) + dt.timedelta(days=1))


def test_every_mock_provider_is_listed_with_its_kind_and_basis() -> None:
    listed = yaml.safe_load(PROVIDERS_YAML.read_text("utf-8"))["providers"]
    by_id = {p["id"]: (p["kind"], p["basis"]) for p in listed}
    assert {k: by_id.get(k) for k in EXPECTED} == EXPECTED


def test_context_manager_closes_the_adapter() -> None:
    closed: list[bool] = []

    class Probe(CallableAdapter):
        def close(self) -> None:
            closed.append(True)

    with Probe("probe", lambda payload: []) as adapter:
        assert isinstance(adapter, ProviderAdapter)
    assert closed == [True]


def test_callable_adapter_hands_payloads_to_its_handler() -> None:
    event = event_from_dict({
        "type": "charge", "source": "mock", "id": "m1", "person": "MKA7Q2X9",
        "at": "2022-03-01T09:00:00+09:00", "provider": "mock", "amount": 1000,
    })

    def handler(payload: bytes) -> list[AnyEvent]:
        if payload != b"ok":
            raise MalformedEvent("mock: bad payload")
        return [event]

    adapter = CallableAdapter("mock", handler)
    assert adapter.provider_id == "mock" and adapter.to_events(b"ok") == [event]
    with pytest.raises(MalformedEvent):
        adapter.to_events(b"no")


@pytest.mark.parametrize(
    ("persons", "stores", "n", "start_offset"),
    [([], [("S1", "131016")], 1, 0), (["MK1"], [], 1, 0), (["MK1"], [("S1", "131016")], -1, 0),
     (["MK1"], [("S1", "131016")], 1, 2)],
)
def test_generate_refuses_bad_arguments(
    persons: list[str], stores: list[tuple[str, str]], n: int, start_offset: int,
    window: tuple[dt.datetime, dt.datetime],
) -> None:
    start, end = window
    with pytest.raises(ValueError):
        generate("quickpay", persons, stores, n, 0, start + dt.timedelta(days=start_offset), end)
    with pytest.raises(ValueError, match="aware"):
        generate("quickpay", ["MK1"], [("S1", "131016")], 1, 0, start.replace(tzinfo=None), end)


@pytest.mark.parametrize("provider", sorted(EXPECTED))
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_generated_traffic_is_realistic_and_converts(
    provider: str, seed: int, persons: tuple[str, ...], stores: tuple[tuple[str, str], ...],
    window: tuple[dt.datetime, dt.datetime],
) -> None:
    start, end = window
    payload = generate(provider, persons, stores, 2000, seed, start, end)
    assert payload == generate(provider, persons, stores, 2000, seed, start, end)
    events = events_of(provider, payload)
    assert len(events) == 2000 and len({e.id for e in events}) == 2000
    assert all(isinstance(e, Charge | Purchase | Refund) and e.provider == provider
               for e in events)
    assert all(start <= e.at < end and e.source == provider for e in events)
    assert [e.at for e in events] == sorted(e.at for e in events)
    assert {e.person for e in events} == set(persons)
    refunds = [e for e in events if isinstance(e, Refund)]
    assert 0.005 <= len(refunds) / len(events) <= 0.03
    originals = {e.id: e for e in events if isinstance(e, Charge | Purchase)}
    assert all(r.transaction in originals for r in refunds)
    assert len({r.transaction for r in refunds}) == len(refunds)
    purchases = [e.amount for e in events if isinstance(e, Purchase)]
    charges = [e.amount for e in events if isinstance(e, Charge)]
    if purchases:
        assert 300 <= statistics.median(purchases) <= 5_000
        assert max(purchases) >= 10_000  # an occasional large purchase
    if charges:
        assert set(charges) == {1_000, 3_000, 5_000, 10_000, 20_000}

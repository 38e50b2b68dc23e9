"""Which adapter speaks for which payment provider.

``ADAPTERS`` maps a provider id (as listed in ``rules/providers.yaml``) to its adapter class;
:func:`adapter_for` returns a fresh instance.
"""

from __future__ import annotations

from pointengine.adapters.base import ProviderAdapter
from pointengine.adapters.carrierpay import CarrierPayAdapter
from pointengine.adapters.quickpay import QuickPayAdapter
from pointengine.adapters.towncoin import TownCoinAdapter
from pointengine.adapters.transitcard import TransitCardAdapter

ADAPTERS: dict[str, type[ProviderAdapter]] = {
    cls.provider_id: cls
    for cls in (QuickPayAdapter, TransitCardAdapter, CarrierPayAdapter, TownCoinAdapter)
}


def adapter_for(provider_id: str) -> ProviderAdapter:
    """A new adapter for ``provider_id``; KeyError naming the known ids when there is none."""
    try:
        cls = ADAPTERS[provider_id]
    except KeyError:
        known = ", ".join(sorted(ADAPTERS))
        raise KeyError(f"no adapter for provider {provider_id!r} (known: {known})") from None
    return cls()

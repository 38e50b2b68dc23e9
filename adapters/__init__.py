"""Payment-provider adapters: each provider's native payloads in, canonical events out.

One module per (mock) provider: :mod:`adapters.quickpay` (QR-code app, JSON webhooks),
:mod:`adapters.transitcard` (prepaid card, JSON deliveries), :mod:`adapters.carrierpay`
(carrier payments, XML), :mod:`adapters.towncoin` (local currency, daily CSV files). Each can
also generate realistic native traffic for a seed (:func:`generate`). Adapters import the
engine's events; the engine never imports adapters.
"""

from adapters.base import (
    CallableAdapter,
    NativeAdapter,
    NativeRecord,
    ProviderAdapter,
    RecordAdapter,
    Rejects,
)
from adapters.registry import ADAPTERS, adapter_for
from adapters.traffic import GENERATORS, generate

__all__ = [
    "ADAPTERS",
    "GENERATORS",
    "CallableAdapter",
    "NativeAdapter",
    "NativeRecord",
    "ProviderAdapter",
    "RecordAdapter",
    "Rejects",
    "adapter_for",
    "generate",
]

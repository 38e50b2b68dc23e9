"""Payment-provider adapters: each provider's native payloads in, canonical events out.

One module per (mock) provider: :mod:`~pointengine.adapters.quickpay` (QR-code app, JSON
webhooks), :mod:`~pointengine.adapters.transitcard` (prepaid card, JSON deliveries),
:mod:`~pointengine.adapters.carrierpay` (carrier payments, XML),
:mod:`~pointengine.adapters.towncoin` (local currency, daily CSV files). Each can also generate
realistic native traffic for a seed (:func:`generate`). Adapters import the engine's events; the
engine never imports adapters.

The folder is the repository's top-level ``adapters/``; it is imported, and installed, as
``pointengine.adapters`` only (``pointengine/adapters`` links to it).
"""

from pointengine.adapters.base import (
    CallableAdapter,
    NativeAdapter,
    NativeRecord,
    ProviderAdapter,
    RecordAdapter,
    Rejects,
)
from pointengine.adapters.registry import ADAPTERS, adapter_for
from pointengine.adapters.traffic import GENERATORS, generate

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

"""A fast path for the commonest lines of a replay: charges, purchases and refunds.

Full pydantic validation of a canonical event costs about 20 µs here, more than everything else
a replay does with a charge. :class:`FastParser` reads such a line with the compiled scanner
(:func:`pointengine.model.scan.scan_transaction`, the same reader as the compiled lane's), which
checks it against exactly the rules of :mod:`pointengine.model.events` (field set, each key
once, strict types, identifiers, MyKey ID, the same RFC 3339 timestamp reading, integer yen in
range); this module adds the one check the scanner leaves to its caller (a store's municipality
code is a municipality's) and builds the model without validating it again. Anything the
scanner does not take returns None, and the caller validates the line with
:func:`pointengine.model.events.parse_event`, which also produces the exact error. So the fast
path accepts a subset of what pydantic accepts, and builds the same models for it;
``tests/model/test_fastparse.py`` compares both on generated, malformed and hypothesis lines.

Lines that carry a My Number are not the fast path's business: the caller scans a whole batch
with :func:`pointengine.model.privacy.carries_my_number` once and sends the lines of a suspicious
batch that carry one to ``parse_event``.
"""

from __future__ import annotations

from typing import Any

from pointengine.model.events import AnyEvent, Charge, Event, Purchase, Refund
from pointengine.model.municipalities import registry
from pointengine.model.scan import scan_transaction

_TRANSACTION = ("source", "id", "person", "at", "type", "provider", "amount", "store",
                "store_municipality")
_REFUND = ("source", "id", "person", "at", "type", "provider", "transaction", "amount")
_MODELS: dict[str, type[Event]] = {"purchase": Purchase, "charge": Charge, "refund": Refund}
_EXPECTED: dict[type[Event], tuple[str, ...]] = {
    Purchase: _TRANSACTION, Charge: _TRANSACTION, Refund: _REFUND}
_set = object.__setattr__


def _models_unchanged() -> bool:
    """The fast path knows these models' fields; it switches itself off if they change."""
    return all(tuple(model.model_fields) == fields for model, fields in _EXPECTED.items())


class FastParser:
    """Parses charge, purchase and refund lines without pydantic validation (see module)."""

    def __init__(self) -> None:
        self.enabled = _models_unchanged()
        codes = registry()
        # a prefecture's code is no store's place: such a line goes to full validation
        self._places = frozenset(c for c in codes.codes() if codes.get(c).kind != "prefecture")
        self.fast = 0

    def parse(self, raw: bytes) -> AnyEvent | None:
        """The event of ``raw``, or None when the line must go through ``parse_event``."""
        if not self.enabled:
            return None
        given = scan_transaction(raw)
        if given is None:
            return None
        where = given.get("store_municipality")
        if where is not None and where not in self._places:
            return None
        model = _MODELS[given["type"]]
        values = {name: given.get(name) for name in _EXPECTED[model]}
        self.fast += 1
        return _build(model, values, given)


def _build(model: type[Event], values: dict[str, Any], given: dict[str, Any]) -> AnyEvent:
    """The model with ``values`` (already valid, in field order), without validating again."""
    event = model.__new__(model)
    _set(event, "__dict__", values)
    _set(event, "__pydantic_fields_set__", set(given))
    _set(event, "__pydantic_extra__", None)
    _set(event, "__pydantic_private__", None)
    return event  # type: ignore[return-value]

"""A fast path for the commonest lines of a replay: charges, purchases and refunds.

Full pydantic validation of a canonical event costs about 20 µs here, more than everything else
a replay does with a charge. :class:`FastParser` decodes such a line with orjson and checks it
with plain Python against exactly the rules of :mod:`pointengine.model.events` (field set, strict
types, identifiers, MyKey ID, the same RFC 3339 timestamp check, integer yen in range, known
municipality codes, no key given twice), then builds the model without validating it again.
Anything it is not sure about (another event type, any failed check) returns None, and the
caller validates the line with :func:`pointengine.model.events.parse_event`, which also produces the
exact error. So the fast path accepts a subset of what pydantic accepts, and builds the same
models for it; ``tests/model/test_fastparse.py`` compares both on generated and malformed streams.

Lines that carry a My Number are not the fast path's business: the caller scans a whole batch
with :func:`pointengine.model.privacy.carries_my_number` once and sends the lines of a suspicious
batch that carry one to ``parse_event``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from pointengine.model.events import ID, AnyEvent, Charge, Event, Purchase, Refund, timestamp
from pointengine.model.municipalities import registry
from pointengine.model.privacy import is_my_number

_MAX_YEN = 100_000_000
_CACHE_LIMIT = 2_000_000

_TRANSACTION = ("source", "id", "person", "at", "type", "provider", "amount", "store",
                "store_municipality")
_REFUND = ("source", "id", "person", "at", "type", "provider", "transaction", "amount")
_EXPECTED: dict[type[Event], tuple[str, ...]] = {
    Purchase: _TRANSACTION, Charge: _TRANSACTION, Refund: _REFUND}
# issuperset checks every key of a line in one C call, several times faster than a loop.
_TRANSACTION_KEYS = frozenset(_TRANSACTION)
_REFUND_KEYS = frozenset(_REFUND)
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
        self._idents: set[str] = set()
        self._persons: set[str] = set()
        self.fast = 0

    def parse(self, raw: bytes) -> AnyEvent | None:
        """The event of ``raw``, or None when the line must go through ``parse_event``."""
        if not self.enabled:
            return None
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        if type(data) is not dict:
            return None
        kind = data.get("type")
        if kind in ("purchase", "charge"):
            event = self._transaction(data, kind, raw.count(b'"'))
        elif kind == "refund":
            event = self._refund(data, raw.count(b'"'))
        else:
            return None
        if event is not None:
            self.fast += 1
        return event

    def _transaction(self, data: dict[str, Any], kind: str, quotes: int) -> AnyEvent | None:
        if not _TRANSACTION_KEYS.issuperset(data):
            return None
        store = data.get("store")
        where = data.get("store_municipality")
        if kind == "purchase":
            if not (self._ident(store) and self._code(where)):
                return None
        elif (store is not None and not self._ident(store)) or (
                where is not None and not self._code(where)):
            return None
        at = self._moment(data)
        if at is None or not self._ident(data.get("provider")):
            return None
        amount = data.get("amount")
        if type(amount) is not int or not 0 < amount <= _MAX_YEN:
            return None
        # Two quotes per key and per string value (six always, store and where when given):
        # any more, and a key was given twice (see pointengine.model.jsonkeys).
        if quotes != 2 * (len(data) + 6 + (store is not None) + (where is not None)):
            return None
        values = {"source": data["source"], "id": data["id"], "person": data["person"],
                  "at": at, "type": kind, "provider": data["provider"], "amount": amount,
                  "store": store, "store_municipality": where}
        return _build(Purchase if kind == "purchase" else Charge, values, data)

    def _refund(self, data: dict[str, Any], quotes: int) -> AnyEvent | None:
        if not _REFUND_KEYS.issuperset(data):
            return None
        at = self._moment(data)
        if at is None or not self._ident(data.get("provider")):
            return None
        transaction = data.get("transaction")
        if type(transaction) is not str or not ID.fullmatch(transaction):
            return None
        amount = data.get("amount")
        if type(amount) is not int or not 0 < amount <= _MAX_YEN:
            return None
        if quotes != 2 * (len(data) + 7):  # every value but the amount is a string
            return None
        values = {"source": data["source"], "id": data["id"], "person": data["person"],
                  "at": at, "type": "refund", "provider": data["provider"],
                  "transaction": transaction, "amount": amount}
        return _build(Refund, values, data)

    def _moment(self, data: dict[str, Any]) -> dt.datetime | None:
        """The instant in JST when ``source``, ``id``, ``person`` and ``at`` are valid."""
        source, ident, person, at = (data.get("source"), data.get("id"), data.get("person"),
                                     data.get("at"))
        if not self._ident(source) or type(ident) is not str or not ID.fullmatch(ident):
            return None
        if type(person) is not str:  # before the cache: a list or an object is unhashable
            return None
        if person not in self._persons:
            if is_my_number(person) or not ID.fullmatch(person):
                return None
            if len(self._persons) < _CACHE_LIMIT:
                self._persons.add(person)
        if type(at) is not str:
            return None
        try:
            return timestamp(at)
        except ValueError:
            return None

    def _ident(self, value: object) -> bool:
        if type(value) is not str:  # before the cache: a list or an object is unhashable
            return False
        if value in self._idents:
            return True
        if not ID.fullmatch(value):
            return False
        if len(self._idents) < _CACHE_LIMIT:
            self._idents.add(value)
        return True

    def _code(self, value: object) -> bool:
        return type(value) is str and value in self._places


def _build(model: type[Event], values: dict[str, Any], given: dict[str, Any]) -> AnyEvent:
    """The model with ``values`` (already valid, in field order), without validating again."""
    event = model.__new__(model)
    _set(event, "__dict__", values)
    _set(event, "__pydantic_fields_set__", set(given))
    _set(event, "__pydantic_extra__", None)
    _set(event, "__pydantic_private__", None)
    return event  # type: ignore[return-value]

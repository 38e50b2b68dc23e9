"""The payment-provider adapter contract: native payload bytes in, canonical events out.

Shaped like an httpx transport: :class:`ProviderAdapter` is a minimal base with one required
method, :meth:`~ProviderAdapter.to_events`, plus :meth:`~ProviderAdapter.close` and the
context-manager methods. :class:`RecordAdapter` implements it for payloads made of independent
records, and adds the lenient conversion that keeps the good records of a batch and reports the
bad ones by position; :class:`NativeAdapter` is the record adapter of a payment provider (every
adapter in this package), which maps native field names to canonical ones.
:class:`CallableAdapter` is the in-memory one, built on a handler callable, for tests of code
that takes an adapter.

Errors are pointengine's own (:mod:`pointengine.errors`), translated here at the boundary:

* a payload that cannot be split into records at all (not JSON, not XML, no CSV header)
  raises :class:`~pointengine.errors.MalformedEvent`, in lenient mode too;
* a record raises the most specific :class:`~pointengine.errors.InputError`, its message naming
  the provider, the record (or file line) and the native field: ``MalformedEvent``,
  ``MyNumberRejected`` or ``UnknownMunicipality``.

A record that carries a My Number anywhere is rejected with ``MyNumberRejected`` before it is
read: in any field, known or not, at any depth, in a field's name, in an XML attribute, as a
run of 12 digits inside a longer value, after JSON escapes and XML character references are
decoded and in full-width (or any other Unicode) digits (:func:`my_number_path`). What wraps
the records (a delivery's other fields, a notification's attributes, a file's header) is
searched by the adapter with :func:`refuse_my_number`, which refuses the whole payload.
Messages never repeat a My Number: they name where it was, and every 12-digit run in them is
masked.

A key given twice in one JSON object is refused, never read as its last value
(:func:`json_body`, :func:`json_records`; found by :mod:`pointengine.model.jsonkeys`): which value
the provider meant is unknowable. Such a record is searched for a My Number with every value it
holds, the one the decoder left out included.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import ClassVar, NoReturn, Self

import orjson

from pointengine.adapters._fields import FieldProblem
from pointengine.errors import InputError, MalformedEvent, MyNumberRejected
from pointengine.model.bounds import refuse_deep_json
from pointengine.model.events import AnyEvent, event_from_dict
from pointengine.model.jsonkeys import repeated_key
from pointengine.model.privacy import carries_my_number, redact

Rejects = list[tuple[int, str]]
"""``(position, reason)`` pairs: the record number, or the line number in a batch file."""

_CANONICAL_PART = re.compile(r"^(?:[a-z_]+\.)?([a-z_]+): (.*)$", re.DOTALL)


class ProviderAdapter(ABC):
    """Turns one provider's native payloads (webhook bodies, batch files) into canonical events.

    Subclasses set :attr:`provider_id` (the canonical ``source`` and ``provider`` of every event
    they produce, an id listed in ``rules/providers.yaml``) and :attr:`content_type` (the media
    type of the native payload, for the HTTP service), and implement :meth:`to_events`.
    """

    provider_id: str
    content_type: str

    @abstractmethod
    def to_events(self, payload: bytes) -> list[AnyEvent]:
        """Every canonical event in ``payload``; the first bad record raises, nothing is returned.

        Raises the most specific :class:`~pointengine.errors.InputError`.
        """

    def close(self) -> None:  # noqa: B027 (an optional hook, not abstract)
        """Release what the adapter holds; the adapters in this package hold nothing."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class NativeRecord:
    """One native record, split into fields but not yet checked.

    ``position`` is the 1-based record number in the payload, or the line number in a file;
    ``fields`` maps native field names (XML adapters use paths such as ``Amount/Total``) to raw
    values; ``problem`` is set instead when the record could not even be split into fields.
    ``rest`` is what else the record holds that ``fields`` leaves out (an XML element's other
    texts and attributes, the text of a line that could not be split): it is never converted,
    only searched for a My Number, like ``fields``.
    """

    position: int
    fields: Mapping[str, object] = field(default_factory=dict)
    problem: str | None = None
    rest: object = None


class RecordAdapter(ProviderAdapter):
    """An adapter whose payload is a sequence of independent records.

    Subclasses implement :meth:`records` (split the payload) and :meth:`to_event` (one record
    to a canonical event, or the most specific InputError); this class turns the records of a
    payload into events, strictly or leniently.
    """

    record_noun: ClassVar[str] = "record"
    id_field: ClassVar[str] = "id"

    @abstractmethod
    def records(self, payload: bytes) -> Iterator[NativeRecord]:
        """The payload's records in order; raise MalformedEvent if it has no records structure."""

    @abstractmethod
    def to_event(self, record: NativeRecord) -> AnyEvent:
        """The canonical event of one record, or the most specific InputError."""

    def to_events(self, payload: bytes) -> list[AnyEvent]:
        """Every canonical event in ``payload``; the first bad record raises."""
        return [self.to_event(record) for record in self.records(payload)]

    def to_events_lenient(self, payload: bytes) -> tuple[list[AnyEvent], Rejects]:
        """The good events, and ``(position, reason)`` for each record that was rejected.

        One bad record (a file line) does not drop the others. A payload without any record
        structure (undecodable, no header) still raises MalformedEvent.
        """
        good: list[AnyEvent] = []
        rejects: Rejects = []
        for record in self.records(payload):
            try:
                good.append(self.to_event(record))
            except InputError as exc:
                rejects.append((record.position, str(exc)))
        return good, rejects

    def _where(self, record: NativeRecord) -> str:
        where = f"{self.provider_id} {self.record_noun} {record.position}"
        native_id = record.fields.get(self.id_field)
        # Masking ASCII digit runs would not hide a My Number written in full-width digits.
        if isinstance(native_id, str) and 0 < len(native_id) <= 64 and not _carries(native_id):
            where += f" ({self.id_field} {native_id})"
        return where


class NativeAdapter(RecordAdapter):
    """A payment provider's adapter: native records with native field names.

    Subclasses implement :meth:`canonical` (one native record to a canonical event dict,
    raising :class:`~pointengine.adapters._fields.FieldProblem` with the native field name), and set
    :attr:`native_fields` (canonical field name to native name, so errors found by the
    canonical validation name the native field) and :attr:`id_field`.
    """

    native_fields: ClassVar[Mapping[str, str]]

    @abstractmethod
    def canonical(self, fields: Mapping[str, object]) -> dict[str, object]:
        """One record's canonical event dict (``source`` and ``provider`` may be left out).

        Built from ``fields`` alone, each value a field's value as it is (or stripped), read as
        an integer or a datetime, or a constant: never two values joined. The record was
        searched for a My Number before, so the event is not searched again.
        """

    def to_event(self, record: NativeRecord) -> AnyEvent:
        """The canonical event of one native record, or the most specific InputError."""
        # Where the record is, which searches its id for a My Number once more, is only
        # worked out for a message: most records have none.
        found = my_number_path(record.fields)
        if found is None and record.rest is not None:
            found = my_number_path(record.rest)
        if found is not None:
            raise MyNumberRejected(_safe(f"{self._where(record)}: {found or 'the record'} "
                                         "carries a My Number; the record was rejected, "
                                         "not stored"))
        if record.problem is not None:
            raise MalformedEvent(_safe(f"{self._where(record)}: {record.problem}"))
        try:
            data = self.canonical(record.fields)
        except FieldProblem as exc:
            raise MalformedEvent(
                _safe(f"{self._where(record)}: {exc.field}: {exc.message}")) from None
        data.setdefault("source", self.provider_id)
        data.setdefault("provider", self.provider_id)
        # Not searched for a My Number again: every value of the event is a field's value,
        # read as it is, or a number or a time (no run of 12 digits), and every field was
        # searched above. A MyKey ID that is a My Number is still refused by the model itself.
        try:
            return event_from_dict(data, searched=True)
        except InputError as exc:
            raise type(exc)(_safe(f"{self._where(record)}: {self._native(str(exc))}")) from None

    def _native(self, detail: str) -> str:
        """Rename canonical fields in an event_from_dict message to the native field names."""
        parts = []
        for part in detail.split("; "):
            match = _CANONICAL_PART.match(part)
            if match and match.group(1) in self.native_fields:
                part = f"{self.native_fields[match.group(1)]}: {match.group(2)}"
            parts.append(part)
        return "; ".join(parts)


class CallableAdapter(ProviderAdapter):
    """An in-memory adapter that hands each payload to ``handler``; for tests and mocks."""

    content_type = "application/octet-stream"

    def __init__(self, provider_id: str, handler: Callable[[bytes], list[AnyEvent]]) -> None:
        self.provider_id = provider_id
        self._handler = handler

    def to_events(self, payload: bytes) -> list[AnyEvent]:
        """Whatever ``handler`` returns (or raises) for ``payload``."""
        return self._handler(payload)


def json_body(payload: bytes, what: str) -> object:
    """``payload`` decoded as JSON, or :class:`MalformedEvent` naming ``what`` it should be.

    A payload that gives a key twice in one of its objects (at any depth) is refused whole,
    naming the key: :class:`MyNumberRejected` when any of its values carries a My Number,
    the one the decoder left out included, else ``MalformedEvent``.
    """
    value = _decoded(payload, what)
    key = repeated_key(payload)
    if key is not None:
        _refuse_repeat(what, payload, key)
    _refuse_rewritten_number(what, payload, value)
    return value


@dataclass(frozen=True, slots=True)
class JsonRecord:
    """One element of a JSON payload's record array, as :func:`json_records` found it.

    ``value`` is the element decoded; ``repeated`` the first key it gives twice in one of its
    objects (None nearly always), and then ``text`` is the element's JSON with every member
    kept, to be searched for a My Number instead of ``value``, which lost the first value.
    """

    value: object
    repeated: str | None = None
    text: str | None = None

    @property
    def problem(self) -> str | None:
        """Why the record cannot be read, when it gives a key twice."""
        return None if self.repeated is None else _twice(self.repeated)


def json_records(
    payload: bytes, what: str, name: str
) -> tuple[object, list[JsonRecord] | None]:
    """``payload`` decoded, and each record of its ``name`` member, an array of independent
    records; None for the records when the payload is not an object with such a member.

    Raises :class:`MalformedEvent` naming ``what`` when it is not JSON, and when a key is given
    twice outside the records (``name`` itself, say), as :func:`json_body` does. A record that
    gives a key twice is only that record's problem (:attr:`JsonRecord.repeated`): the others
    are read as usual.
    """
    body = _decoded(payload, what)
    key = repeated_key(payload)
    if not isinstance(body, dict) or not isinstance(body.get(name), list):
        if key is not None:
            _refuse_repeat(what, payload, key)
        _refuse_rewritten_number(what, payload, body)
        return body, None
    records: list[object] = body[name]
    if key is None:  # nearly always: one quick count
        _refuse_rewritten_number(what, payload, body)
        return body, [JsonRecord(record) for record in records]
    # Numbers are kept as written: the text of a record is searched for a My Number.
    members = json.loads(payload, object_pairs_hook=_Members, parse_int=_Token,
                         parse_float=_Token)
    outside = _Members((key, [] if key == name else value) for key, value in members)
    key = repeated_key(_json_text(outside).encode())
    if key is not None:
        _refuse_repeat(what, payload, key)
    found = []
    for record, raw in zip(records, _last(members, name), strict=True):
        text = _json_text(raw)
        key = repeated_key(text.encode())
        found.append(JsonRecord(record) if key is None else JsonRecord(record, key, text))
    return body, found


def my_number_path(value: object) -> str | None:
    """Where in ``value`` a My Number is, or None: ``""`` for ``value`` itself, else a path
    such as ``meta.n``, ``items[2]`` or ``a field name in meta`` (never the number).

    ``value`` is what a native record holds: mappings, lists and tuples at any depth, strings,
    numbers and bytes. A string carries a My Number when a standalone run of 12 digits in it
    is one once full-width and other compatibility forms are folded (NFKC) and every Unicode
    decimal digit is read as its ASCII digit; a field name is searched like a value; bytes are
    searched as they are.
    """
    # Nearly every record carries none, and one search of its JSON (in C) settles that. The
    # JSON of a string is the string itself unless it holds a control character or a
    # backslash: "\u0001", or "\\t" in a value that is itself JSON, could then hide a digit or
    # a separator, so such a record is walked.
    try:
        blob = orjson.dumps(value)
    except TypeError:
        blob = b"\\"
    if b"\\" not in blob and not carries_my_number(blob):
        return None
    for path, item in _walk(value):
        if isinstance(item, str) and _carries(item):
            return path
        if isinstance(item, bytes) and carries_my_number(item):
            return path
    return None


def _walk(value: object) -> Iterator[tuple[str, str | bytes]]:
    """Every string and bytes in ``value`` with its path, in order; numbers as strings, and
    each mapping key as a string at ``a field name in <path>``."""
    pending: list[tuple[str, object]] = [("", value)]
    while pending:  # a loop, not recursion: orjson nests JSON deeper than Python recurses
        path, item = pending.pop()
        if isinstance(item, str | bytes):
            yield path, item
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int | float):
            yield path, str(item)
        elif isinstance(item, Mapping):
            names = f"a field name in {path}" if path else "a field name"
            for key, child in reversed(list(item.items())):
                name = str(key)
                pending.append((f"{path}.{_short(name)}" if path else _short(name), child))
                pending.append((names, name))
        elif isinstance(item, list | tuple):
            pending.extend((f"{path}[{i}]", child) for i, child in reversed(list(enumerate(item))))


def refuse_my_number(what: str, value: object) -> None:
    """Raise :class:`MyNumberRejected` when ``value`` carries a My Number anywhere.

    For what wraps a payload's records (``what`` names it, as in ``"quickpay webhook"``): a
    My Number there refuses the whole payload. The message names the path, never the number.
    """
    found = my_number_path(value)
    if found is not None:
        raise MyNumberRejected(
            _safe(f"{what}: {found or 'the body'} carries a My Number; nothing was stored"))


def _carries(text: str) -> bool:
    # pointengine.model.privacy reads digits in every form (escaped, full-width, other scripts).
    return carries_my_number(text.encode("utf-8", "surrogatepass"))


def _short(name: str) -> str:
    return name if len(name) <= 40 else name[:37] + "..."


def _safe(message: str) -> str:
    """``message`` with every 12-digit run masked, so no error repeats a My Number."""
    return redact(message.encode()).decode()


class _Members(list[tuple[str, object]]):
    """One JSON object's members in order, a key given twice kept twice."""


def _decoded(payload: bytes, what: str) -> object:
    refuse_deep_json(payload, what)  # before any parser, each of which copes differently
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise MalformedEvent(f"{what}: not JSON ({exc})") from exc


def _refuse_rewritten_number(what: str, payload: bytes, value: object) -> None:
    """Refuse ``payload`` whole when it carries a My Number that its decoded ``value`` (with
    no key given twice) does not show: decoding rewrote a number, as it reads
    123456789018.9999999999999999 as 123456789019.0, and the records' search would miss it."""
    if carries_my_number(payload) and my_number_path(value) is None:
        raise MyNumberRejected(f"{what}: the body carries a My Number; nothing was stored")


def _refuse_repeat(what: str, payload: bytes, key: str) -> NoReturn:
    # The decoded value lost the first value of the key: the payload itself is searched.
    refuse_my_number(what, payload)
    raise MalformedEvent(_safe(f"{what}: {_twice(key)}; nothing was stored"))


def _twice(key: str) -> str:
    return f"the key {_short(key)!r} is given more than once; which value is meant cannot be known"


def _last(members: _Members, name: str) -> list[object]:
    """The value of member ``name`` (given once: a repeat outside the records was refused)."""
    value = next(value for key, value in reversed(members) if key == name)
    assert isinstance(value, list)
    return value


def _json_text(value: object) -> str:
    """JSON of what :func:`json.loads` made with :class:`_Members` and numbers as
    :class:`_Token`, every member kept; a loop, not recursion, as for :func:`_walk`."""
    out: list[str] = []
    pending: list[object] = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, _Token):
            out.append(item.text)
        elif isinstance(item, _Members):
            parts: list[object] = [_Token("{")]
            for i, (key, child) in enumerate(item):
                parts += [_Token(("," if i else "") + json.dumps(key) + ":"), child]
            pending.extend(reversed([*parts, _Token("}")]))
        elif isinstance(item, list):
            parts = [_Token("[")]
            for i, child in enumerate(item):
                parts += [_Token("," if i else ""), child]
            pending.extend(reversed([*parts, _Token("]")]))
        else:
            out.append(json.dumps(item))
    return "".join(out)


@dataclass(frozen=True, slots=True)
class _Token:
    """JSON text written as it is: punctuation, or a number as the payload wrote it."""

    text: str

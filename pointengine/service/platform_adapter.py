"""An adapter for platform sources that already speak canonical events (MyKey, Juki-net).

Mynapoint applications, registrations and moves do not come from payment providers: the MyKey
platform (source ``mykey``) and the resident registry (``juki-net``) send canonical events as
JSON lines (``application/x-ndjson``). :class:`CanonicalAdapter` validates each line with
:func:`~pointengine.model.events.parse_event`; the service then checks that every event's ``source``
is the signer, as for any provider, and that its type is one the source sends
(:data:`~pointengine.service.signing.PLATFORM_EVENT_TYPES`).
"""

from __future__ import annotations

from collections.abc import Iterator

from pointengine.adapters.base import NativeRecord, RecordAdapter
from pointengine.errors import InputError, MalformedEvent
from pointengine.model.events import AnyEvent, parse_event
from pointengine.service.signing import PLATFORM_EVENT_TYPES

__all__ = ["PLATFORM_SOURCES", "CanonicalAdapter"]

PLATFORM_SOURCES = tuple(PLATFORM_EVENT_TYPES)


class CanonicalAdapter(RecordAdapter):
    """Canonical JSON lines from a platform source; each line one event."""

    content_type = "application/x-ndjson"
    record_noun = "line"

    def __init__(self, source: str) -> None:
        self.provider_id = source

    def records(self, payload: bytes) -> Iterator[NativeRecord]:
        """Each non-empty line, positioned by its line number (the raw line in ``line``)."""
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedEvent(f"{self.provider_id}: not UTF-8 ({exc.reason})") from None
        for number, line in enumerate(payload.split(b"\n"), start=1):
            if line.strip():
                yield NativeRecord(number, {"line": line})

    def to_event(self, record: NativeRecord) -> AnyEvent:
        """The event of one line; the most specific InputError, naming the line, otherwise."""
        line = record.fields["line"]
        assert isinstance(line, bytes)
        try:
            return parse_event(line)
        except InputError as exc:
            raise type(exc)(f"{self.provider_id} line {record.position}: {exc}") from None

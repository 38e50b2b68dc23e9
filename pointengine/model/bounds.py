"""How much of an input is read at all: its size and how deeply it nests.

A parser's time and memory grow with its input, and for nesting faster than its size: the
standard library's JSON parser recurses (``RecursionError``), orjson writes no more than 255
levels back (``TypeError``), and an XML element's path grows with its depth, so a 141 kB
document nested 20,000 deep cost 2 GiB. So every input is measured before any parser sees it,
in one linear pass without recursion, and refused with its reason when it is over a bound. The
bounds are far above anything a provider or the platform sends: a canonical event is one flat
object of a few hundred bytes, a provider's record nests four or five levels.

- :data:`MAX_NESTING` levels of arrays and objects in JSON, of elements in XML;
- :data:`MAX_EVENT_BYTES` for one canonical event, its line break not counted (a line of an
  events file, or a body of the platform's canonical endpoint); longer lines of a file are
  refused without being held whole.

A request body's size is bounded by the service (``ServiceConfig.max_body``), before it is read.
"""

from __future__ import annotations

from pointengine.errors import NestedTooDeeply, TooLarge
from pointengine.model.scan import nested_deeper_than

__all__ = ["MAX_EVENT_BYTES", "MAX_NESTING", "refuse_deep_json", "refuse_large_event"]

MAX_NESTING = 64
MAX_EVENT_BYTES = 64 * 1024


def refuse_deep_json(raw: bytes, what: str) -> None:
    """Raise :class:`NestedTooDeeply` when the JSON text ``raw`` nests more than
    :data:`MAX_NESTING` levels deep; ``what`` names it in the message."""
    if nested_deeper_than(raw, MAX_NESTING):
        raise NestedTooDeeply(f"{what}: arrays and objects nested more than {MAX_NESTING} "
                              "levels deep; nothing was stored")


def refuse_large_event(raw: bytes) -> None:
    """Raise :class:`TooLarge` when one canonical event's text (without a line break after
    it) is over :data:`MAX_EVENT_BYTES`."""
    if len(raw) > MAX_EVENT_BYTES and len(raw.rstrip(b"\r\n")) > MAX_EVENT_BYTES:
        raise TooLarge(f"event: over {MAX_EVENT_BYTES} bytes; an event is one flat object of "
                       "a few hundred bytes")

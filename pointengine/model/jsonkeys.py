"""Keys given twice in one JSON object, which every fast JSON parser hides.

orjson, like pydantic's parser, keeps the last value of a key that appears twice, so
``{"amount":5000,"amount":5}`` would silently be a 5-yen purchase. Which value the sender meant
is unknowable, so such a line is refused. Finding repeats exactly needs the slow standard
library parser, so it is asked only when a count says a key may repeat: decoding keeps every
string of a line except those of a repeated key (the first key and its value), and a string
costs its two quote bytes, so without ``\\u`` escapes (through which a quote can hide) a line
whose quote count matches its decoded content's has no repeated key. The replay's fast path
(:mod:`pointengine.model.fastparse`) makes the same count from the fields it knows.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

# Lines without any backslash (found with memchr) certainly have no \u escape.
_BACKSLASH = ord("\\")


def repeated_key(raw: bytes) -> str | None:
    """The first key that appears twice in one object of ``raw``, or None (also for non-JSON)."""
    try:
        decoded = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None  # not JSON: validation says where it breaks
    if _BACKSLASH not in raw and raw.count(b'"') == orjson.dumps(decoded).count(b'"'):
        return None
    repeated: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for key, _ in items:
            if key in seen:
                repeated.append(key)
            seen.add(key)
        return dict(items)

    json.loads(raw, object_pairs_hook=pairs)
    return repeated[0] if repeated else None

"""Compact tables for what a store must remember of every event, so memory grows slowly.

A replay of 10,000,000 events must remember every event key (idempotency) and every
transaction (a later refund is checked against what was paid). As Python strings in a set and
objects in a dict that is a few hundred bytes per event; here it is 8 bytes per key in a set and
16 per transaction, in flat arrays with open addressing (linear probing, at most 5/8 full).

A key is kept as a 64-bit fingerprint (BLAKE2b, the same in every process, so a pickled table
stays valid). Two different keys share a fingerprint with probability about n² / 2⁶⁵: for 10
million keys, about 3 in a million per run. That is the price of the compact form; a store that
cannot accept it keeps full keys (the Redis store does).
"""

from __future__ import annotations

from array import array
from functools import lru_cache
from hashlib import blake2b

_EMPTY = 0
_START = 1 << 10


@lru_cache(maxsize=1 << 13)  # a batch's keys are asked about, then applied
def fingerprint(key: str) -> int:
    """A 64-bit fingerprint of ``key`` (never 0, which marks an empty slot)."""
    value = int.from_bytes(blake2b(key.encode(), digest_size=8).digest(), "little", signed=True)
    return value or 1


class KeyTable:
    """A set of keys, or a map of keys to integers, in two flat ``array('q')``.

    ``values=False`` keeps keys only (a set: 8 bytes a slot).
    """

    def __init__(self, *, values: bool = True) -> None:
        self._keys = array("q", [0]) * _START
        self._values: array[int] | None = array("q", [0]) * _START if values else None
        self._mask = _START - 1
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def _slot(self, fp: int) -> int:
        keys, mask = self._keys, self._mask
        i = (fp ^ (fp >> 31)) & mask
        while True:
            k = keys[i]
            if k in (fp, _EMPTY):
                return i
            i = (i + 1) & mask

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        fp = fingerprint(key)
        return self._keys[self._slot(fp)] == fp

    def has(self, fp: int) -> bool:
        """True when the key of fingerprint ``fp`` is in the table."""
        return self._keys[self._slot(fp)] == fp

    def get(self, key: str) -> int | None:
        """The value of ``key``, or None when it is absent."""
        fp = fingerprint(key)
        i = self._slot(fp)
        if self._keys[i] != fp:
            return None
        return self._values[i] if self._values is not None else 0

    def add(self, key: str, value: int = 0, *, fp: int | None = None) -> None:
        """Add ``key`` (or set its value); ``fp`` is its fingerprint when already known."""
        if fp is None:
            fp = fingerprint(key)
        i = self._slot(fp)
        if self._keys[i] != fp:
            self._keys[i] = fp
            self._count += 1
        if self._values is not None:
            self._values[i] = value
        if self._count * 8 > (self._mask + 1) * 5:
            self._grow()

    def _grow(self) -> None:
        old_keys, old_values = self._keys, self._values
        size = 2 * (self._mask + 1)
        self._keys = keys = array("q", [0]) * size
        self._values = values = array("q", [0]) * size if old_values is not None else None
        self._mask = size - 1
        for j, fp in enumerate(old_keys):
            if fp != _EMPTY:
                i = self._slot(fp)
                keys[i] = fp
                if values is not None and old_values is not None:
                    values[i] = old_values[j]

"""Compact tables for what a store must remember of every event (compiled; see compact.pyx)."""

def fingerprint(key: str) -> int:
    """A 64-bit fingerprint of ``key`` (never 0, which marks an empty slot)."""

class KeyTable:
    """A set of keys, or a map of keys to integers, in two flat C arrays."""

    def __init__(self, *, values: bool = True) -> None: ...
    def __len__(self) -> int: ...
    def __contains__(self, key: object) -> bool: ...
    def has(self, fp: int) -> bool:
        """True when the key of fingerprint ``fp`` is in the table."""
    def get(self, key: str) -> int | None:
        """The value of ``key``, or None when it is absent."""
    def add(self, key: str, value: int = 0, *, fp: int | None = None) -> None:
        """Add ``key`` (or set its value); ``fp`` is its fingerprint when already known."""

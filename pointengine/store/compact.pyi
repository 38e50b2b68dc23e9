"""Compact tables for what a store must remember of every event (compiled; see compact.pyx)."""

from collections.abc import Iterable, Iterator

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

class Counters:
    """Named counters: a mapping of str to int whose values sit in one C array."""

    def __init__(self, initial: dict[str, int] | None = None) -> None: ...
    def get(self, key: str, default: int = 0) -> int:
        """The value of ``key``, or ``default`` when it is absent."""
    def __getitem__(self, key: str) -> int: ...
    def __setitem__(self, key: str, value: int) -> None: ...
    def __contains__(self, key: object) -> bool: ...
    def keys(self) -> list[str]:
        """The keys that are set."""
    def items(self) -> list[tuple[str, int]]:
        """``(key, value)`` of each key that is set."""
    def names_of(self, slots: Iterable[int]) -> list[str]:
        """The keys of ``slots`` (slots the fast lane wrote), in their order."""
    def flat_items(self, keys: Iterable[str]) -> list[str | int]:
        """``[key, value, key, value...]`` of ``keys``, which are set."""
    def __iter__(self) -> Iterator[str]: ...
    def __len__(self) -> int: ...

"""The replay's fast lane (compiled; see lane.pyx)."""

from pointengine.engine import Engine
from pointengine.memory_store import MemoryStore

class Lane:
    """Applies charge, purchase and refund lines to a :class:`MemoryStore` for an engine."""

    lines: int
    taken_applied: int
    duplicates: int
    rejected: int
    rejects: list[tuple[int, str, str]]
    names: list[str]
    def __init__(self, engine: Engine, store: MemoryStore) -> None: ...
    def run(self, raws: list[bytes], start: int, flagged: set[int] | None = None) -> int:
        """Apply ``raws[start:]`` in order until a line the lane does not take; return its
        index (``len(raws)`` when it took them all)."""
    def close(self) -> None:
        """Let go of the rulesets' memos that no other lane uses."""

"""The replay's fast lane (compiled; see lane.pyx)."""

from typing import Any, NamedTuple

from pointengine.decide.engine import Engine
from pointengine.model.persons import Person
from pointengine.store.memory import MemoryStore

class Batch(NamedTuple):
    """A compact batch for the Redis store's script (its contract: redis_store.py)."""

    intents: bytes
    plans: bytes
    lines: list[int]
    claims: list[int]
    persons: list[tuple[int, str, bytes, Person]]
    refusals: list[tuple[int, str, str]]

class Lane:
    """Decides the commonest lines and applies them to a :class:`MemoryStore`, or writes
    them as batches for the Redis store's script (``intents``)."""

    lines: int
    taken_applied: int
    duplicates: int
    rejected: int
    rejects: list[tuple[int, str, str]]
    persons: dict[str, Person]
    seen: set[str]
    def __init__(self, engine: Engine, store: MemoryStore | None, *,
                 intents: bool = False) -> None: ...
    def run(self, raws: list[bytes], start: int, flagged: set[int] | None = None) -> int:
        """Decide ``raws[start:]`` in order until a line the lane does not take; return its
        index (``len(raws)`` when it took them all)."""
    def persons_of(self, raws: list[bytes], flagged: set[int] | None = None) -> list[str]:
        """The persons of the lines the lane may take, each once (intents mode)."""
    def take_batch(self) -> Batch:
        """The intents written since the last call (intents mode)."""
    def prepare(self) -> None:
        """Make the lane's view of every program now rather than on its first event."""
    def close(self) -> None:
        """Let go of the rulesets' memos that no other lane uses."""

def tally(reply: list[Any], claims: list[int]
          ) -> tuple[list[int], list[tuple[int, int, int, int]]]:
    """Each intent's status from the Redis store's answer, and the refused ones."""
def fresh(ids: list[str], values: list[bytes | None], read: dict[str, tuple[bytes, Person]],
          parse: Any) -> dict[str, Person]:
    """The persons of ``ids`` from their stored JSON, parsed again only when it changed."""

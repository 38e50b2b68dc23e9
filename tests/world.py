"""A test world: an engine on a fresh embedded store, with builders for canonical events."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from pointengine.catalog.loading import Catalog
from pointengine.decide.engine import Decision, Engine
from pointengine.model.events import AnyEvent, event_from_dict
from pointengine.model.ledger import ListSink
from pointengine.store.memory import MemoryStore

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"

# One application and one purchase of a person, as event lines' fields.
APPLY = {"type": "mynapoint_application", "source": "t", "id": "a1", "person": "MK-A",
         "at": "2022-01-10T12:00:00+09:00", "phase": 2, "provider": "paypay",
         "card_applied_on": "2021-12-01", "residence": "131016"}
BUY = {"type": "purchase", "source": "t", "id": "b1", "person": "MK-A",
       "at": "2022-02-01T12:00:00+09:00", "provider": "paypay", "amount": 19_000,
       "store": "S1", "store_municipality": "131016"}


class World:
    """An engine on a fresh embedded store, with builders for canonical events."""

    def __init__(self, catalog: Catalog) -> None:
        self.sink = ListSink()
        self.store = MemoryStore(self.sink)
        self.engine = Engine(catalog, self.store, explain=True)
        self._ids = itertools.count(1)

    def event(self, type: str, person: str, at: str, **fields: Any) -> AnyEvent:
        """A canonical event; ``at`` may be a date (noon JST is assumed)."""
        if len(at) == 10:
            at = f"{at}T12:00:00+09:00"
        data: dict[str, Any] = {"type": type, "source": fields.pop("source", "test"),
                                "id": fields.pop("id", f"e{next(self._ids)}"),
                                "person": person, "at": at, **fields}
        return event_from_dict(data)

    def run(self, *events: AnyEvent) -> list[Decision]:
        """Process events one batch."""
        return self.engine.process(list(events))

    def apply(self, person: str = "MK-A", at: str = "2022-01-10", *, phase: int = 2,
              provider: str = "paypay", card: str = "2021-12-01", residence: str = "131016",
              **fields: Any) -> Decision:
        """A Mynapoint application."""
        return self.run(self.event("mynapoint_application", person, at, phase=phase,
                                   provider=provider, card_applied_on=card,
                                   residence=residence, **fields))[0]

    def buy(self, amount: int, person: str = "MK-A", at: str = "2022-02-01", *,
            provider: str = "paypay", store: str = "ST1", where: str = "131016",
            **fields: Any) -> Decision:
        """A purchase."""
        return self.run(self.event("purchase", person, at, provider=provider, amount=amount,
                                   store=store, store_municipality=where, **fields))[0]

    def charge(self, amount: int, person: str = "MK-A", at: str = "2022-02-01", *,
               provider: str = "waon", where: str | None = None, **fields: Any) -> Decision:
        """A charge."""
        extra = {"store_municipality": where} if where else {}
        return self.run(self.event("charge", person, at, provider=provider, amount=amount,
                                   **extra, **fields))[0]

    def awarded(self, decision: Decision, program: str) -> int:
        """Points ``program`` awarded for one decision."""
        return sum(o.awarded for o in decision.applied.outcomes if o.program == program)

    def failed(self, decision: Decision, program: str) -> str | None:
        """The name of the first check ``program`` failed for one decision (None if it passed)."""
        for verdict in decision.verdicts:
            if verdict.program == program:
                return verdict.failed.name if verdict.failed else None
        raise AssertionError(f"{program} did not consider the event")

    def points(self, person: str, program: str | None = None) -> int:
        """Net ledger points of a person (in one program, or all)."""
        return sum(e.points for e in self.sink.entries
                   if e.person == person and (program is None or e.program == program))

"""Where the compiled lane meets an engine: the one place that chooses it by the store.

The engine knows neither the lane nor the concrete stores; a replay asks :func:`lane_for` for
the engine's lane, which is built once per catalog and closed with it
(:meth:`Engine.companion <pointengine.decide.engine.Engine.companion>`).
"""

from __future__ import annotations

from pointengine.decide.engine import Engine
from pointengine.lane.lane import Lane
from pointengine.store.memory import MemoryStore
from pointengine.store.redis_store import RedisStore

__all__ = ["lane_for"]


def lane_for(engine: Engine) -> Lane | None:
    """The engine's compiled lane: on the embedded store (a write-back store is one) it
    applies what it decides, on the Redis store it writes batches for the store's script.
    None when it does not apply: another store, or an engine that explains its decisions (the
    lane keeps no verdicts)."""
    store = engine.store
    if engine.explain:
        return None
    if isinstance(store, MemoryStore):
        return engine.companion("lane", lambda: Lane(engine, store))
    if isinstance(store, RedisStore):
        return engine.companion("lane", lambda: Lane(engine, None, intents=True))
    return None

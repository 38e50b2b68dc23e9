"""The generation marker: telling a Redis store that lost its state from a new one.

An empty Redis looks the same whether the deployment is new or Redis lost everything (a
``FLUSHALL``, a restart without persistence, a failover to an empty replica). The difference
matters: applying events onto empty counters pays every cap and budget again from zero. So the
store's state carries a marker, ``<prefix>generation``, a string made once when the state is
first created, and every process that uses the store remembers the one it saw:

``new:<hex>``
    made by the first process (service or worker) that finds no marker and has seen none
    before: a new deployment, or one from before the marker, which is taken as it is; it
    starts by itself, no action needed;
``reset:<hex>``
    made by an operator (``pointengine reinit``, :func:`reinit`) who decided that the state
    Redis holds now, empty or not, is the one to go on from; every process takes it up.

A process that saw a generation and then finds the marker missing, or replaced by another
``new:`` one (a process started after the loss took the empty Redis for a new deployment),
has found the state lost. It records why in ``<prefix>generation:lost``, so that every other
process, and any process started later, finds it lost too, and raises
:class:`~pointengine.errors.StateLost` until an operator re-initialises the store, which
writes a ``reset:`` marker and removes that record.

What the marker cannot tell: a loss that no process which saw the marker has checked for yet.
A process started after the loss and before that (everything restarted together, or a new
worker in the moment before a running service's next request) takes the empty Redis for a new
deployment and may accept or apply events until a process that saw the old marker checks and
records the loss; the service checks on every request, ``/health`` and ``/metrics`` scrape,
and workers before every batch. Nor does the marker tell a partial rollback (Redis restarted
from an older snapshot, a failover to a lagging replica): the marker is the same, and what
was applied after the snapshot is gone. Run Redis with the append-only file
(``appendfsync always``, or ``everysec`` accepting a second) and ``--min-replicas``.

The check is atomic where it matters: the Redis store's apply script (when the store is given a
:class:`Generation`) and the service's append script compare the marker with the generation
the process knows, and refuse, in the same script that would write.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import redis

from pointengine.errors import StateLost

__all__ = ["NEW", "RESET", "Generation", "GenerationKeys", "read_generation", "reinit"]

log = logging.getLogger("pointengine.store.generation")

NEW = "new:"
"""The prefix of a generation a process started on an empty store."""
RESET = "reset:"
"""The prefix of a generation an operator started (:func:`reinit`)."""


@dataclass(frozen=True, slots=True)
class GenerationKeys:
    """The marker's keys under a prefix."""

    marker: str
    lost: str

    @classmethod
    def under(cls, prefix: str) -> GenerationKeys:
        """The keys under ``prefix`` (the store's)."""
        return cls(prefix + "generation", prefix + "generation:lost")


class Generation:
    """One process's view of the store's generation.

    :meth:`check` reads the marker and returns the generation in force, or raises
    :class:`~pointengine.errors.StateLost`; :attr:`known` is the generation last seen and
    :attr:`lost` why the state is lost (None while it is not).
    """

    def __init__(self, client: redis.Redis, prefix: str = "pe:") -> None:
        self.client = client
        self.keys = GenerationKeys.under(prefix)
        self.known: str | None = None
        self.lost: str | None = None

    def expected(self) -> str:
        """The generation writes must find (read from Redis when none is known yet)."""
        return self.known if self.known is not None else self.check()

    def check(self) -> str:
        """The generation in force: the one known, one an operator started, or (when this
        process has seen none and Redis holds none) a new one. Raises StateLost when the
        state is gone, and :class:`redis.RedisError` when Redis does not answer."""
        pipe = self.client.pipeline(transaction=False)
        pipe.get(self.keys.marker)
        pipe.get(self.keys.lost)
        marker, lost = pipe.execute()
        return self.judge(marker, lost)

    def judge(self, marker: bytes | str | None, lost: bytes | str | None) -> str:
        """:meth:`check` on values read elsewhere (a pipeline of the caller's): the marker's
        and the lost record's."""
        if lost is not None:
            raise self._lost(_text(lost), record=False)
        if marker is None:
            if self.known is not None:
                raise self._lost(f"the store's generation {self.known} is no longer in Redis: "
                                 "Redis lost the store's state (flushed, or restarted empty)",
                                 seen=None)
            return self._adopt(self._start(), "started")
        found = _text(marker)
        if self.known is None:
            return self._adopt(found, "found")
        if found == self.known:
            self.lost = None
            return found
        if found.startswith(RESET):
            return self._adopt(found, "re-initialised by the operator")
        raise self._lost(f"the store's generation {self.known} was replaced by {found}, which "
                         "a process started on an empty Redis: Redis lost the store's state",
                         seen=found)

    def _start(self) -> str:
        """Write a new marker unless another process just did; the one in force."""
        pipe = self.client.pipeline(transaction=True)
        pipe.set(self.keys.marker, NEW + uuid.uuid4().hex, nx=True)
        pipe.get(self.keys.marker)
        _, marker = pipe.execute()
        return _text(marker)

    def _adopt(self, generation: str, how: str) -> str:
        if generation != self.known:
            log.info("store generation " + how, extra={"fields": {"generation": generation}})
        self.known, self.lost = generation, None
        return generation

    def _lost(self, why: str, *, record: bool = True, seen: str | None = None) -> StateLost:
        """The error to raise; the reason is recorded in Redis for every other process, unless
        the marker is no longer the one ``seen`` (an operator's reinit came in between: its
        decision stands)."""
        if record:
            with contextlib.suppress(redis.RedisError):  # the next check records it then
                self.client.eval(_RECORD_LOSS, 2, self.keys.marker, self.keys.lost,
                                 "" if seen is None else seen, why)
        if self.lost is None:
            log.error("store state lost", extra={"fields": {"detail": why}})
        self.lost = why
        return StateLost(f"{why}; nothing is accepted or applied until an operator runs "
                         "`pointengine reinit`")


# Record the loss only while the marker is still what the process read (none: "").
_RECORD_LOSS = """
local marker = redis.call('GET', KEYS[1])
if (marker or '') == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2], 'NX')
end
"""


def read_generation(client: redis.Redis, prefix: str = "pe:") -> tuple[str | None, str | None]:
    """The marker's generation (None: no marker) and why the state was found lost (None: it
    was not), as Redis holds them."""
    keys = GenerationKeys.under(prefix)
    pipe = client.pipeline(transaction=False)
    pipe.get(keys.marker)
    pipe.get(keys.lost)
    marker, lost = pipe.execute()
    return (None if marker is None else _text(marker)), (None if lost is None else _text(lost))


def reinit(client: redis.Redis, prefix: str = "pe:") -> str:
    """Start a new generation on the state Redis holds now, which every process takes up, and
    forget that the state was lost: the operator's decision that this state (empty after a loss,
    say) is the one to go on from. Deletes nothing. Returns the new generation."""
    keys = GenerationKeys.under(prefix)
    generation = RESET + uuid.uuid4().hex
    pipe = client.pipeline(transaction=True)
    pipe.set(keys.marker, generation)
    pipe.delete(keys.lost)
    pipe.execute()
    log.warning("store generation re-initialised", extra={"fields": {"generation": generation}})
    return generation


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

"""Identical questions in flight are computed once (and a dataset's state is loaded once).

A sweep's jobs start at the same instant and ask the same few questions (one stats, eight
balanced seeds) a thousand times over, before any answer is in the cache. Without this, each
of them computed its answer on its own: the thousandth waited for a thousand computations.

The first to ask a question (by its cache key) computes it; whoever asks the same while that
runs waits for it and is handed the answer the first one leaves in its `Flight`, whether or
not the answer cache kept it. When there is none to hand over (an answer streamed past the
cache's budget, one overtaken by a presence update, an error), the waiters compute it
themselves, as they would have without this, having waited for the first to end. Everything
here runs on the event loop, so the map needs no lock.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from contextlib import contextmanager

import anyio


class Flight:
    """One piece of work in flight: its end, and what it leaves for those who waited on it."""

    def __init__(self) -> None:
        self.ended = anyio.Event()
        self.result: object | None = None


class InFlight:
    """The work being done now, by key (a question's cache key, a dataset's state)."""

    def __init__(self) -> None:
        self._running: dict[Hashable, Flight] = {}

    @property
    def waiting(self) -> int:
        """Requests waiting now for the same work in flight."""
        flights = list(self._running.values())
        return sum(flight.ended.statistics().tasks_waiting for flight in flights)

    async def wait_for(self, key: Hashable) -> Flight | None:
        """The flight of `key` once it has ended, if one was in flight."""
        flight = self._running.get(key)
        if flight is None:
            return None
        await flight.ended.wait()
        return flight

    @contextmanager
    def computing(self, key: Hashable) -> Iterator[Flight]:
        """Mark `key` as being computed for as long as the block runs (however it ends); the
        block may leave its result in the flight for those waiting.

        Where it is already marked (the waiters of an answer that was not handed over all
        compute again), the first mark stays and is the one cleared; the flight given here is
        one nobody waits on.
        """
        if key in self._running:
            yield Flight()
            return
        flight = Flight()
        self._running[key] = flight
        try:
            yield flight
        finally:
            del self._running[key]
            flight.ended.set()

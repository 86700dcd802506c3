"""Identical questions in flight are computed once (and a dataset's state is loaded once).

A sweep's jobs start at the same instant and ask the same few questions (one stats, eight
balanced seeds) a thousand times over, before any answer is in the cache. Without this, each
of them computed its answer on its own: the thousandth waited for a thousand computations.

The first to ask a question (by its cache key) computes it; whoever asks the same while that
runs waits for it and is then served from the answer cache. When it could not be kept there
(larger than the cache's budget, overtaken by a presence update, or an error), the waiters
compute it themselves, as they would have without this. Everything here runs on the event
loop, so the map needs no lock.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from contextlib import contextmanager

import anyio


class InFlight:
    """The work being done now, by key (a question's cache key, a dataset's state), each with
    the event its waiters wait on."""

    def __init__(self) -> None:
        self._running: dict[Hashable, anyio.Event] = {}

    @property
    def waiting(self) -> int:
        """Requests waiting now for the same work in flight."""
        return sum(done.statistics().tasks_waiting for done in list(self._running.values()))

    async def wait_for(self, key: Hashable) -> bool:
        """Wait until the computation of `key` in flight ends; whether one was in flight."""
        running = self._running.get(key)
        if running is None:
            return False
        await running.wait()
        return True

    @contextmanager
    def computing(self, key: Hashable) -> Iterator[None]:
        """Mark `key` as being computed for as long as the block runs (however it ends).

        Where it is already marked (the waiters of an answer that was not kept all compute
        again), the first mark stays and is the one cleared.
        """
        if key in self._running:
            yield
            return
        done = anyio.Event()
        self._running[key] = done
        try:
            yield
        finally:
            del self._running[key]
            done.set()

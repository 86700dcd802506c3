"""Admission of heavy reads: a few at a time, a short queue, and a prompt 429 past it.

Endpoints share AnyIO's 40 worker threads and the engine's 40 connections. A burst of diffs or
index streams of a large snapshot took every one of them (and gigabytes of memory), and
/healthz and /readyz waited behind it: 39 s on SQLite. So reads of large snapshots go through
a gate of their own: `slots` run at once, on connections of their own (the heavy engine),
`queue` more wait up to `wait_seconds` without holding a thread or a connection, and the rest
are refused at once with 429 and Retry-After. Reads of small snapshots cost milliseconds
whatever they ask, and pass straight through, as do answers served from the answer cache.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable
from typing import TypeVar

import anyio
import anyio.to_thread
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.db import read_session
from app.errors import BusyError
from app.models import Snapshot

T = TypeVar("T")


class SnapshotSizes:
    """Windows per snapshot, remembered for good: a snapshot never changes."""

    def __init__(self) -> None:
        self._windows: dict[int, int] = {}
        self._lock = threading.Lock()

    def known(self, snapshot_ids: Iterable[int]) -> int | None:
        """Total windows of these snapshots, if all are remembered."""
        with self._lock:
            sizes = [self._windows.get(snapshot_id) for snapshot_id in snapshot_ids]
        return None if None in sizes else sum(size or 0 for size in sizes)

    def load(self, factory: sessionmaker[Session], snapshot_ids: Iterable[int]) -> int:
        """Total windows of these snapshots (one indexed query); unknown ids count nothing."""
        wanted = sorted(set(snapshot_ids))
        windows = Snapshot.partial_windows + Snapshot.full_windows + Snapshot.no_seizure_windows
        with read_session(factory) as session:
            rows = session.execute(
                select(Snapshot.id, windows).where(Snapshot.id.in_(wanted))
            ).all()
        found = {int(snapshot_id): int(total) for snapshot_id, total in rows}
        with self._lock:
            self._windows.update(found)
        return sum(found.values())


class AdmissionGate:
    """Bounded concurrency for reads of large snapshots, with a short bounded wait."""

    def __init__(self, slots: int, queue: int, wait_seconds: float, min_windows: int) -> None:
        self.slots = slots
        self.queue = queue
        self.wait_seconds = wait_seconds
        self.min_windows = min_windows
        self.retry_after_seconds = max(1, math.ceil(wait_seconds))
        self._limiter = anyio.CapacityLimiter(slots)
        # For /metrics. Changed only on the event loop, so no lock.
        self.peak_running = 0
        self.refused = 0

    def is_heavy(self, windows: int) -> bool:
        return windows >= self.min_windows

    @property
    def running(self) -> int:
        return int(self._limiter.borrowed_tokens)

    @property
    def waiting(self) -> int:
        return self._limiter.statistics().tasks_waiting

    async def run(self, func: Callable[[], T]) -> T:
        """Run `func` in a worker thread once a slot is free; BusyError if none frees in time."""
        limiter = self._limiter
        if limiter.available_tokens < 1 and limiter.statistics().tasks_waiting >= self.queue:
            raise self._busy(f"{self.slots} running and {self.queue} waiting")
        try:
            with anyio.fail_after(self.wait_seconds):
                await limiter.acquire()
        except TimeoutError:
            raise self._busy(
                f"none of {self.slots} slots freed in {self.wait_seconds:g} s"
            ) from None
        self.peak_running = max(self.peak_running, self.running)
        try:
            return await anyio.to_thread.run_sync(func)
        finally:
            limiter.release()

    def _busy(self, why: str) -> BusyError:
        self.refused += 1
        return BusyError(
            f"too many heavy reads at once ({why}): try again in {self.retry_after_seconds} s",
            retry_after_seconds=self.retry_after_seconds,
        )

"""Waiting for the commit signal: on Postgres a commit is heard when its NOTIFY reaches the
listener, a moment later, and a listener just started hears nothing until it is connected."""

from __future__ import annotations

import time
from collections.abc import Callable

# How long a token must stay put to count as settled, and the longest wait for anything.
STEADY_SECONDS = 0.3
TIMEOUT_SECONDS = 30


def moved_from(read: Callable[[], object], before: object) -> None:
    """Wait until `read()` (a token or a stamp) differs from `before`, taken before a write."""
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while read() == before:
        assert time.monotonic() < deadline, "the write was never signalled"
        time.sleep(0.01)


def settled(read: Callable[[], object]) -> None:
    """Wait until `read()` stays the same for STEADY_SECONDS: every commit so far is heard."""
    deadline = time.monotonic() + TIMEOUT_SECONDS
    value = read()
    while True:
        time.sleep(STEADY_SECONDS)
        if read() == value:
            return
        assert time.monotonic() < deadline, "the change signal never settled"
        value = read()

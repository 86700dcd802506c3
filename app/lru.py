"""A small thread-safe LRU, bounded by its number of entries and, if asked, by their cost.

Pure: imports nothing of ours, so any layer may keep what it computed in one (answers as
bytes, fold assignments).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def _free(_: object) -> int:
    return 0


class LruCache(Generic[K, V]):
    """Least recently used entries go first, once there are more than `max_entries` or their
    costs add up to more than `max_cost`. An entry that alone costs more is not kept."""

    def __init__(
        self,
        max_entries: int,
        *,
        max_cost: int | None = None,
        cost: Callable[[V], int] = _free,
    ) -> None:
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._max = max_entries
        self._max_cost = max_cost
        self._cost_of = cost
        self._cost = 0
        self._lock = threading.Lock()

    @property
    def max_entries(self) -> int:
        return self._max

    @property
    def total_cost(self) -> int:
        """What the entries held now count against `max_cost`."""
        return self._cost

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def admits(self, cost: int) -> bool:
        """Whether an entry of this cost could be kept at all (larger ones are not)."""
        return self._max > 0 and (self._max_cost is None or cost <= self._max_cost)

    def put(self, key: K, value: V) -> None:
        cost = self._cost_of(value)
        if not self.admits(cost):
            return
        with self._lock:
            replaced = self._entries.pop(key, None)
            if replaced is not None:
                self._cost -= self._cost_of(replaced)
            self._entries[key] = value
            self._cost += cost
            while len(self._entries) > self._max or self._over_budget():
                _, evicted = self._entries.popitem(last=False)
                self._cost -= self._cost_of(evicted)

    def discard(self, key: K) -> None:
        with self._lock:
            removed = self._entries.pop(key, None)
            if removed is not None:
                self._cost -= self._cost_of(removed)

    def _over_budget(self) -> bool:
        return self._max_cost is not None and self._cost > self._max_cost

"""Where an answer came from: the service, or the client's offline cache. Never on the wire.

Only pydantic and the standard library: the client imports these.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel, PrivateAttr


class Answer(BaseModel):
    """An answer the client may give from its offline cache when the service cannot answer.

    `from_cache` and `cached_at` are attributes, not fields: they are neither sent nor
    received, and `model_dump()` of a cached answer equals that of the live one it keeps.
    """

    _cached_at: datetime | None = PrivateAttr(default=None)

    @property
    def from_cache(self) -> bool:
        """True when the client answered from its cache instead of the service."""
        return self._cached_at is not None

    @property
    def cached_at(self) -> datetime | None:
        """When the cached answer was received from the service (UTC); None for a live one."""
        return self._cached_at


Marked = TypeVar("Marked", bound=Answer)


def mark_cached(answer: Marked, received_at: datetime) -> Marked:
    """The answer, marked as given from the cache, received from the service at `received_at`."""
    answer._cached_at = received_at
    return answer

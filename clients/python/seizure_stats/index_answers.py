"""The balanced index as the client returns it: entries read as they are iterated, or numpy
columns; each says which snapshot it is about and whether it came from the offline cache."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from seizure_stats.errors import UnmatchedFilterWarning
from seizure_stats.schemas.questions import IndexEntry


@dataclass(frozen=True)
class IndexAnswer:
    """An opened index answer: what it is about, and its entries still to be read."""

    snapshot: int | None
    content_hash: str | None
    cached_at: datetime | None
    entries: Generator[IndexEntry]
    # Lets go of what the entries are read from (a connection, a cache file), read or not.
    release: Callable[[], None]

    @classmethod
    def of(
        cls,
        headers: Mapping[str, str],
        cached_at: datetime | None,
        lines: Iterator[str],
        release: Callable[[], None],
    ) -> IndexAnswer:
        snapshot, content_hash = snapshot_of(headers)
        return cls(snapshot, content_hash, cached_at, _entries_of(lines, release), release)


class IndexEntries(Iterator[IndexEntry]):
    """The balanced index's entries in dataset order, read as they are iterated.

    Nothing is asked of the service until the first entry, or `snapshot`, `content_hash`,
    `from_cache` or `cached_at`, is wanted; then the answer is opened once.
    """

    def __init__(self, open_answer: Callable[[], IndexAnswer]) -> None:
        self._open_answer = open_answer
        self._answer: IndexAnswer | None = None

    def __iter__(self) -> IndexEntries:
        return self

    def __next__(self) -> IndexEntry:
        return next(self._opened().entries)

    @property
    def snapshot(self) -> int | None:
        """The snapshot the entries are drawn from."""
        return self._opened().snapshot

    @property
    def content_hash(self) -> str | None:
        return self._opened().content_hash

    @property
    def from_cache(self) -> bool:
        """True when the entries come from the client's cache instead of the service."""
        return self._opened().cached_at is not None

    @property
    def cached_at(self) -> datetime | None:
        """When the cached answer was received from the service (UTC); None for a live one."""
        return self._opened().cached_at

    def close(self) -> None:
        """Stop reading: the connection or cache file is released (as it is after the last
        entry)."""
        if self._answer is not None:
            self._answer.entries.close()
            # Closing entries never started runs none of their code: let go directly.
            self._answer.release()

    def _opened(self) -> IndexAnswer:
        if self._answer is None:
            self._answer = self._open_answer()
        return self._answer


class IndexArrays(dict[str, Any]):
    """The balanced index as numpy columns (`cache_files`, `recording`, `window_idx`), with the
    snapshot they are drawn from and whether they came from the client's cache."""

    def __init__(
        self, columns: Mapping[str, Any], headers: Mapping[str, str], cached_at: datetime | None
    ) -> None:
        super().__init__(columns)
        self.snapshot, self.content_hash = snapshot_of(headers)
        self.cached_at = cached_at

    @property
    def from_cache(self) -> bool:
        return self.cached_at is not None


def snapshot_of(headers: Mapping[str, str]) -> tuple[int | None, str | None]:
    """The snapshot and content hash a streamed answer names in its headers."""
    snapshot = headers.get("x-snapshot")
    return (int(snapshot) if snapshot else None), headers.get("x-content-hash")


def warn_of_unmatched(headers: Mapping[str, str], *, stacklevel: int) -> None:
    """Say what a streamed answer's headers name as matching nothing (only a non-strict
    question gets such an answer: a strict one is refused). `stacklevel` counts from the
    caller's frame, as warnings.warn does."""
    shown = headers.get("x-unmatched-filter")
    if shown:
        count = headers.get("x-unmatched-values", "some")
        message = f"unmatched_filter: {count} filter value(s) match no recording: {shown}"
        warnings.warn(message, UnmatchedFilterWarning, stacklevel=stacklevel + 1)


def _entries_of(lines: Iterator[str], release: Callable[[], None]) -> Generator[IndexEntry]:
    try:
        for line in lines:
            if line.strip():
                yield IndexEntry.model_validate_json(line)
    finally:  # closing the entries closes what they are read from
        release()

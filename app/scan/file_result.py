"""What a scan learns of one cache file, how files are split into shards, and the wire form."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

import numpy as np

from seizure_stats.schemas.scans import ScanFileIn

OK = "ok"
REUSED = "reused"


class IssueCode(StrEnum):
    """Why a file contributes no windows. Each comes with a reason naming the detail."""

    UNREADABLE = "unreadable"  # not a zip archive, truncated, checksum or inflate error, I/O error
    NO_LABELS = "no_labels"  # the archive has no `labels` member
    WRONG_RANK = "wrong_rank"  # labels is not a (windows, samples) array
    BAD_LABELS = "bad_labels"  # non-numeric dtype, rows without samples, malformed .npy member
    NAN_LABELS = "nan_labels"  # labels hold NaN: the file's labelling failed, none of it is used
    NO_WINDOWS = "no_windows"  # labels has zero rows
    LENGTH_MISMATCH = "length_mismatch"  # rows disagree with the window length of the other files


def _no_counts() -> np.ndarray[Any, np.dtype[np.int32]]:
    return np.zeros(0, dtype=np.int32)


@dataclass(frozen=True)
class FileResult:
    """One cache file: its size and mtime when read, and either its counts or its issue.

    The field names are also the stored form of a scan part's results (`as_stored`): a part
    waits in the database under them until its scan is whole, so renaming one breaks parts
    stored before the change.
    """

    name: str
    size: int
    mtime_ns: int
    status: str  # OK or an IssueCode value
    reason: str = ""
    n_samples: int = 0
    n_pos: np.ndarray[Any, np.dtype[np.int32]] = field(default_factory=_no_counts)
    reused: bool = False

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def n_windows(self) -> int:
        return int(self.n_pos.shape[0])

    def unchanged(self, size: int, mtime_ns: int) -> bool:
        return self.size == size and self.mtime_ns == mtime_ns


_STORED_FIELDS = tuple(f.name for f in fields(FileResult))


def shard_of(name: str, shard_count: int) -> int:
    """The shard a file belongs to: a hash of its name, so machines agree whatever they list."""
    return zlib.crc32(name.encode("utf-8")) % shard_count


def parse_shard(text: str) -> tuple[int, int]:
    """`i/n` (0 <= i < n) as (i, n)."""
    index, sep, count = text.partition("/")
    if not sep or not index.strip().isdigit() or not count.strip().isdigit():
        raise ValueError(f"shard must look like i/n (e.g. 0/4), got {text!r}")
    i, n = int(index), int(count)
    if not 0 <= i < n:
        raise ValueError(f"shard {text!r}: need 0 <= i < n")
    return i, n


def to_wire(result: FileResult) -> ScanFileIn:
    if result.reused:
        return ScanFileIn(
            cache_file=result.name, size=result.size, mtime_ns=result.mtime_ns, status=REUSED
        )
    return ScanFileIn(
        cache_file=result.name,
        size=result.size,
        mtime_ns=result.mtime_ns,
        status=result.status,
        reason=result.reason[:500],
        n_samples=result.n_samples,
        n_pos=result.n_pos.tolist(),
    )


def from_wire(entry: ScanFileIn) -> FileResult:
    """A received entry as a result (`reused` entries still need the service's record)."""
    return FileResult(
        name=entry.cache_file,
        size=entry.size,
        mtime_ns=entry.mtime_ns,
        status=OK if entry.status == REUSED else entry.status,
        reason=entry.reason,
        n_samples=entry.n_samples,
        n_pos=np.asarray(entry.n_pos, dtype=np.int64).astype(np.int32),
        reused=entry.status == REUSED,
    )


def as_stored(result: FileResult) -> dict[str, Any]:
    """The result as JSON values by field name, as a waiting scan part is stored."""
    stored = {name: getattr(result, name) for name in _STORED_FIELDS}
    return stored | {"n_pos": result.n_pos.tolist()}


def from_stored(stored: dict[str, Any]) -> FileResult:
    """The result `as_stored` wrote."""
    return FileResult(**stored | {"n_pos": np.asarray(stored["n_pos"], dtype=np.int32)})


def pack_counts(n_pos: np.ndarray[Any, Any]) -> bytes:
    """Per-window counts as stored: little-endian int32, deflated (mostly zeros)."""
    return zlib.compress(np.asarray(n_pos, dtype="<i4").tobytes(), 1)


def unpack_counts(blob: bytes) -> np.ndarray[Any, np.dtype[np.int32]]:
    return np.frombuffer(zlib.decompress(blob), dtype="<i4").astype(np.int32)

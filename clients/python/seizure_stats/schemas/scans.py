"""Wire models of cache scans: the parts scanning machines push, scan state and issues."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from seizure_stats.schemas.datasets import SnapshotOut
from seizure_stats.schemas.questions import MAX_INT64, Text

SCAN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
MAX_LABEL_COUNT = 2**31 - 1
# What can be wrong with a file a scan read.
FileProblemName = Literal[
    "unreadable", "no_labels", "wrong_rank", "bad_labels", "nan_labels", "no_windows"
]
# What a scan found in one file. `reused`: the sender did not read it because the service's
# record has the same size and mtime; the service fills in what it read before.
FileStatusName = Literal["ok", "reused", FileProblemName]
# Why a file contributes no windows to the snapshot. `length_mismatch` is decided when the parts
# are put together (a file's rows disagree with the window length of most files).
IssueCodeName = Literal[FileProblemName, "length_mismatch"]


class ScanFileIn(BaseModel):
    """One cache file as a scan saw it. For `ok`, `n_pos` holds every window's positive samples."""

    model_config = ConfigDict(extra="forbid")

    cache_file: str = Field(min_length=1, max_length=255)
    # Both are 64-bit integer columns.
    size: int = Field(ge=0, le=MAX_INT64)
    mtime_ns: int = Field(ge=-MAX_INT64 - 1, le=MAX_INT64)
    status: FileStatusName
    reason: Text = Field(default="", max_length=500)
    n_samples: int = Field(default=0, ge=0, le=MAX_LABEL_COUNT)
    n_pos: list[int] = Field(default_factory=list)


class ScanPartIn(BaseModel):
    """Part `shard_index` of `shard_count` of one scan: the files whose name hashes to it."""

    model_config = ConfigDict(extra="forbid")

    scan_id: str = Field(pattern=SCAN_ID_PATTERN)
    shard_index: int = Field(default=0, ge=0)
    shard_count: int = Field(default=1, ge=1, le=10_000)
    files: list[ScanFileIn] = Field(default_factory=list)
    other_files: list[str] = Field(
        default_factory=list,
        description="Other regular files of this shard (not scanned; they count for presence).",
    )


class ScanIssueOut(BaseModel):
    cache_file: str
    code: IssueCodeName
    reason: str


class ScanOut(BaseModel):
    dataset: str
    scan_id: str
    shard_count: int
    parts_received: list[int]
    complete: bool
    created_at: datetime
    completed_at: datetime | None
    snapshot: SnapshotOut | None = Field(description="The assembled snapshot, once complete.")
    snapshot_created: bool | None = Field(
        description="False when the scan found content imported before."
    )
    files: int = Field(description="Cache files scanned (read or reused).")
    read: int = Field(description="Files opened and read in this scan.")
    reused: int = Field(description="Files unchanged since an earlier scan, not opened.")
    skipped: int = Field(description="Files that contribute no windows; see issues.")
    missing: int = Field(description="Known recordings no longer in the cache directory.")
    issues: list[ScanIssueOut]


class ScanFileRecordOut(BaseModel):
    """What the service knows of a cache file from the last scan that read it."""

    cache_file: str
    size: int
    mtime_ns: int
    status: FileStatusName
    reason: str
    n_samples: int
    n_pos: list[int] | None = Field(description="Per-window counts, when asked for.")


class SnapshotScanIssues(BaseModel):
    dataset: str
    snapshot: int
    scan_id: str | None = Field(description="The latest scan that produced this snapshot.")
    issues: list[ScanIssueOut]

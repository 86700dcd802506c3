"""Tables. Snapshots and their windows are immutable once committed; presence is per dataset."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from app.db import Base

# A recording known to be missing from the volume (`present` NULL means never checked).
MISSING_PREDICATE = "present IS false"


def utc_now() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps in UTC on every backend (SQLite would hand them back without a zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Columns several tables declare alike, each written once. A bare Mapped[int], Mapped[bool] or
# Mapped[bytes] takes its SQL type (Integer, Boolean, LargeBinary) from the annotation.
RowId = Annotated[int, mapped_column(Integer, primary_key=True)]
# A row that belongs to a dataset and goes with it.
DatasetRef = Annotated[int, mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))]
# When the row was written, in UTC.
WrittenAt = Annotated[datetime, mapped_column(UTCDateTime, default=utc_now)]
# Sums, sizes and nanosecond times that can pass 2**31.
Int64 = Annotated[int, mapped_column(BigInteger)]


class Dataset(Base):
    """One cache directory: a named sequence of snapshots, one of them current."""

    __tablename__ = "datasets"

    id: Mapped[RowId]
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str] = mapped_column(String(1000), default="")
    full_threshold: Mapped[float] = mapped_column(Float, default=0.99)
    created_at: Mapped[WrittenAt]
    current_snapshot_id: Mapped[int | None] = mapped_column(
        ForeignKey("snapshots.id", use_alter=True, ondelete="SET NULL")
    )
    presence_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Bumped by every presence update: answers (and their ETags) depend on it.
    presence_version: Mapped[int] = mapped_column(default=0)

    current_snapshot: Mapped[Snapshot | None] = relationship(
        foreign_keys=[current_snapshot_id], lazy="raise", post_update=True
    )


class Snapshot(Base):
    """One immutable import of a dataset's manifest."""

    __tablename__ = "snapshots"
    __table_args__ = (UniqueConstraint("dataset_id", "content_hash"),)

    id: Mapped[RowId]
    dataset_id: Mapped[DatasetRef]
    content_hash: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[WrittenAt]
    source: Mapped[str] = mapped_column(String(500), default="")
    partial_windows: Mapped[Int64]
    full_windows: Mapped[Int64]
    no_seizure_windows: Mapped[Int64]
    recordings: Mapped[int]
    has_sample_counts: Mapped[bool]
    # The rollups summed by which categories a recording has windows in, written with the
    # snapshot (app.storage.rollup_totals): whole-snapshot questions start from these.
    rollup_totals: Mapped[dict[str, dict[str, int]] | None] = mapped_column(JSON)

    dataset: Mapped[Dataset] = relationship(foreign_keys="Snapshot.dataset_id", lazy="raise")


class Recording(Base):
    """A cache file of a dataset, with the names parsed from its stem and whether it is present."""

    __tablename__ = "recordings"
    __table_args__ = (
        UniqueConstraint("dataset_id", "cache_file"),
        Index("ix_recordings_dataset_id_patient", "dataset_id", "patient"),
        Index("ix_recordings_dataset_id_stem", "dataset_id", "stem"),
        Index("ix_recordings_dataset_id_session", "dataset_id", "session"),
        # A question about the whole snapshot subtracts the missing recordings' rows: found here.
        # Partial, on the very predicate the query writes (app.queries.subset.is_known_missing):
        # SQLite uses such an index only for that text, and Postgres estimates `IS false` from
        # the column's NULLs, where `= false` over an all-NULL column looked like every row.
        Index(
            "ix_recordings_dataset_id_missing",
            "dataset_id",
            sqlite_where=text(MISSING_PREDICATE),
            postgresql_where=text(MISSING_PREDICATE),
        ),
    )

    id: Mapped[RowId]
    dataset_id: Mapped[DatasetRef]
    cache_file: Mapped[str] = mapped_column(String(255))
    stem: Mapped[str] = mapped_column(String(255))
    patient: Mapped[str] = mapped_column(String(255))
    session: Mapped[str | None] = mapped_column(String(255))
    token: Mapped[str | None] = mapped_column(String(255))
    # None: never checked (counted as present); False: known to be missing from the volume.
    present: Mapped[bool | None]


# The prefix of each category's columns in recording_rollups (`partial_windows`, ...).
ROLLUP_PREFIX = {"partial_seizure": "partial", "full_seizure": "full", "no_seizure": "no_seizure"}


class RecordingRollup(Base):
    """Per snapshot and recording, window and sample counts by category: what stats sum over."""

    __tablename__ = "recording_rollups"

    snapshot_id: Mapped[int] = mapped_column(
        ForeignKey("snapshots.id", ondelete="CASCADE"), primary_key=True
    )
    recording_id: Mapped[int] = mapped_column(
        ForeignKey("recordings.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    partial_windows: Mapped[int]
    full_windows: Mapped[int]
    no_seizure_windows: Mapped[int]
    partial_pos: Mapped[Int64]
    full_pos: Mapped[Int64]
    no_seizure_pos: Mapped[Int64]
    partial_samples: Mapped[Int64]
    full_samples: Mapped[Int64]
    no_seizure_samples: Mapped[Int64]


class SnapshotColumns(Base):
    """A snapshot's category lists as packed little-endian int32 arrays, in manifest order.

    The same data as `windows`, laid out for the balanced selection, which needs whole lists
    in order: one row read instead of millions.
    """

    __tablename__ = "snapshot_columns"

    snapshot_id: Mapped[int] = mapped_column(
        ForeignKey("snapshots.id", ondelete="CASCADE"), primary_key=True
    )
    category: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    recording_ids: Mapped[bytes]
    window_idx: Mapped[bytes]


class Window(Base):
    """One manifest entry: its category list, its place in that list, and its label counts."""

    __tablename__ = "windows"
    __table_args__ = {"sqlite_with_rowid": False}

    # No foreign keys on this table: a per-row check made a 10M-window COPY four times slower.
    # Windows are written once, with their snapshot, in one transaction.
    snapshot_id: Mapped[int] = mapped_column(primary_key=True)
    category: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    position: Mapped[int] = mapped_column(primary_key=True)
    recording_id: Mapped[int]
    window_idx: Mapped[int]
    n_pos: Mapped[int | None]
    n_samples: Mapped[int | None]


class ApiToken(Base):
    """A bearer token for the HTTP API. Only its SHA-256 is kept; the token is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[RowId]
    name: Mapped[str] = mapped_column(String(64), index=True)
    scope: Mapped[str] = mapped_column(String(16))
    # The token's public lookup part, so the secret part is compared in constant time.
    lookup: Mapped[str] = mapped_column(String(32), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[WrittenAt]
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ScanFile(Base):
    """What the last scan that read a cache file found, keyed by the file's size and mtime."""

    __tablename__ = "scan_files"
    __table_args__ = (UniqueConstraint("dataset_id", "cache_file"),)

    id: Mapped[RowId]
    dataset_id: Mapped[DatasetRef]
    cache_file: Mapped[str] = mapped_column(String(255))
    size: Mapped[Int64]
    mtime_ns: Mapped[Int64]
    status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(500), default="")
    n_windows: Mapped[int]
    n_samples: Mapped[int]
    # Positive samples per window: little-endian int32, deflated.
    n_pos: Mapped[bytes]
    scanned_at: Mapped[WrittenAt]


class Scan(Base):
    """One scan of a dataset's cache, in one or more parts; complete once every part arrived."""

    __tablename__ = "scans"
    __table_args__ = (UniqueConstraint("dataset_id", "scan_key"),)

    id: Mapped[RowId]
    dataset_id: Mapped[DatasetRef]
    scan_key: Mapped[str] = mapped_column(String(64))
    shard_count: Mapped[int]
    created_at: Mapped[WrittenAt]
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    snapshot_id: Mapped[int | None] = mapped_column(
        ForeignKey("snapshots.id", ondelete="SET NULL"), index=True
    )
    snapshot_created: Mapped[bool | None]
    files: Mapped[int] = mapped_column(default=0)
    files_read: Mapped[int] = mapped_column(default=0)
    files_reused: Mapped[int] = mapped_column(default=0)
    files_skipped: Mapped[int] = mapped_column(default=0)
    recordings_missing: Mapped[int] = mapped_column(default=0)


class ScanPart(Base):
    """A received part. Its payload is kept only until the scan is assembled."""

    __tablename__ = "scan_parts"

    scan_id: Mapped[int] = mapped_column(
        ForeignKey("scans.id", ondelete="CASCADE"), primary_key=True
    )
    shard_index: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(String(80))
    payload: Mapped[bytes | None]
    received_at: Mapped[WrittenAt]


class ScanIssue(Base):
    """A file a scan left out, and why."""

    __tablename__ = "scan_issues"

    scan_id: Mapped[int] = mapped_column(
        ForeignKey("scans.id", ondelete="CASCADE"), primary_key=True
    )
    cache_file: Mapped[str] = mapped_column(String(255), primary_key=True)
    code: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(500))

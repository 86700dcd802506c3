"""Writing a parsed manifest as a snapshot: recordings, windows, per-recording rollups.

Everything happens in the caller's transaction, so a failed or interrupted import leaves
nothing behind and the previous snapshot stays current until the commit.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from app.db import is_sqlite
from app.ingest.bulk_rows import array_rows, insert_rows
from app.ingest.manifest import ParsedManifest
from app.ingest.names import parse_recording_name
from app.models import ROLLUP_PREFIX, Dataset, Recording, RecordingRollup, Snapshot, SnapshotColumns
from app.storage.rollup_totals import sum_rollups
from seizure_stats.labels import Category

ROWS_PER_BATCH = 100_000
# In the order of RecordingName's fields, between the dataset and presence.
RECORDING_COLUMNS = ("dataset_id", "cache_file", "stem", "patient", "session", "token", "present")
ProgressCallback = Callable[[int], None]


@dataclass(frozen=True)
class StoreResult:
    snapshot: Snapshot
    created: bool


def store_snapshot(
    session: Session,
    dataset: Dataset,
    parsed: ParsedManifest,
    *,
    source: str = "",
    progress: ProgressCallback | None = None,
) -> StoreResult:
    """Store `parsed` as the dataset's new current snapshot, or re-select an identical one."""
    existing = session.scalars(
        select(Snapshot).where(
            Snapshot.dataset_id == dataset.id, Snapshot.content_hash == parsed.content_hash
        )
    ).one_or_none()
    if existing is not None:
        dataset.current_snapshot_id = existing.id
        session.flush()
        return StoreResult(existing, created=False)

    recording_ids = _upsert_recordings(session, dataset, parsed.recordings)
    counts = parsed.window_counts
    snapshot = Snapshot(
        dataset_id=dataset.id,
        content_hash=parsed.content_hash,
        source=source[:500],
        partial_windows=counts[Category.PARTIAL_SEIZURE],
        full_windows=counts[Category.FULL_SEIZURE],
        no_seizure_windows=counts[Category.NO_SEIZURE],
        recordings=len(parsed.recordings),
        has_sample_counts=parsed.has_sample_counts,
    )
    session.add(snapshot)
    session.flush()
    _insert_windows(session, snapshot.id, parsed, recording_ids, progress)
    _insert_rollups(session, snapshot.id, parsed, recording_ids)
    snapshot.rollup_totals = sum_rollups(session, snapshot.id)
    _insert_columns(session, snapshot.id, parsed, recording_ids)
    _refresh_planner_statistics(session)
    dataset.current_snapshot_id = snapshot.id
    session.flush()
    return StoreResult(snapshot, created=True)


def _upsert_recordings(
    session: Session, dataset: Dataset, names: list[str]
) -> np.ndarray[Any, Any]:
    """Database ids of the named recordings (creating the new ones), aligned with `names`."""
    known = _recording_ids(session, dataset)
    new_names = [name for name in names if name not in known]
    if new_names:
        rows = ((dataset.id, name, *parse_recording_name(name), None) for name in new_names)
        insert_rows(session.connection(), Recording.__tablename__, RECORDING_COLUMNS, rows)
        known = _recording_ids(session, dataset)
    return np.fromiter((known[name] for name in names), dtype=np.int32, count=len(names))


def _recording_ids(session: Session, dataset: Dataset) -> dict[str, int]:
    query = select(Recording.cache_file, Recording.id).where(Recording.dataset_id == dataset.id)
    return dict(session.connection().execute(query).all())


def _insert_windows(
    session: Session,
    snapshot_id: int,
    parsed: ParsedManifest,
    recording_ids: np.ndarray[Any, Any],
    progress: ProgressCallback | None,
) -> None:
    connection = session.connection()
    columns = ["snapshot_id", "category", "position", "recording_id", "window_idx"]
    if parsed.has_sample_counts:
        columns += ["n_pos", "n_samples"]
    if is_sqlite(connection):
        marks = ", ".join("?" for _ in columns)
        sql = f"INSERT INTO windows ({', '.join(columns)}) VALUES ({marks})"
        for rows, size in _row_batches(snapshot_id, parsed, recording_ids):
            connection.exec_driver_sql(sql, rows)
            if progress:
                progress(size)
        return
    driver = connection.connection.driver_connection
    assert driver is not None
    sql = f"COPY windows ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    with driver.cursor() as cursor, cursor.copy(sql) as copy:
        copy.write(b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0))
        for chunk, size in _binary_batches(snapshot_id, parsed, recording_ids):
            copy.write(chunk)
            if progress:
                progress(size)
        copy.write(struct.pack(">h", -1))


def _row_batches(
    snapshot_id: int, parsed: ParsedManifest, recording_ids: np.ndarray[Any, Any]
) -> Iterator[tuple[list[tuple[int, ...]], int]]:
    for category in Category:
        arrays = parsed.as_arrays(category)
        for start in range(0, len(arrays["recording"]), ROWS_PER_BATCH):
            stop = start + ROWS_PER_BATCH
            parts: list[Any] = [
                repeat(snapshot_id),
                repeat(int(category)),
                range(start, min(stop, len(arrays["recording"]))),
                recording_ids[arrays["recording"][start:stop]].tolist(),
                arrays["window_idx"][start:stop].tolist(),
            ]
            if parsed.has_sample_counts:
                parts += [
                    arrays["n_pos"][start:stop].tolist(),
                    arrays["n_samples"][start:stop].tolist(),
                ]
            rows = list(zip(*parts, strict=False))
            yield rows, len(rows)


def _binary_batches(
    snapshot_id: int, parsed: ParsedManifest, recording_ids: np.ndarray[Any, Any]
) -> Iterator[tuple[bytes, int]]:
    """PostgreSQL binary COPY rows built by numpy: (count, then length + big-endian value)*."""
    fields: list[tuple[str, str]] = [
        ("snapshot_id", ">i4"),
        ("category", ">i2"),
        ("position", ">i4"),
        ("recording_id", ">i4"),
        ("window_idx", ">i4"),
    ]
    if parsed.has_sample_counts:
        fields += [("n_pos", ">i4"), ("n_samples", ">i4")]
    layout: list[tuple[str, str]] = [("field_count", ">i2")]
    for name, kind in fields:
        layout += [(f"{name}_len", ">i4"), (name, kind)]
    row_type = np.dtype(layout)
    for category in Category:
        arrays = parsed.as_arrays(category)
        total = len(arrays["recording"])
        for start in range(0, total, ROWS_PER_BATCH):
            stop = min(start + ROWS_PER_BATCH, total)
            rows = np.empty(stop - start, dtype=row_type)
            rows["field_count"] = len(fields)
            for name, kind in fields:
                rows[f"{name}_len"] = np.dtype(kind).itemsize
            rows["snapshot_id"] = snapshot_id
            rows["category"] = int(category)
            rows["position"] = np.arange(start, stop)
            rows["recording_id"] = recording_ids[arrays["recording"][start:stop]]
            rows["window_idx"] = arrays["window_idx"][start:stop]
            if parsed.has_sample_counts:
                rows["n_pos"] = arrays["n_pos"][start:stop]
                rows["n_samples"] = arrays["n_samples"][start:stop]
            yield rows.tobytes(), stop - start


def _refresh_planner_statistics(session: Session) -> None:
    """Postgres plans the stats query from table statistics; right after a bulk load they still
    describe the tables before it (a measured 2x slower plan), and autovacuum comes later."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("ANALYZE recording_rollups, recordings")


def _insert_columns(
    session: Session, snapshot_id: int, parsed: ParsedManifest, recording_ids: np.ndarray[Any, Any]
) -> None:
    # One category at a time, handed over as buffers rather than copies.
    for category in Category:
        arrays = parsed.as_arrays(category)
        recordings = np.ascontiguousarray(recording_ids[arrays["recording"]], dtype="<i4")
        window_idx = np.ascontiguousarray(arrays["window_idx"], dtype="<i4")
        row = {
            "snapshot_id": snapshot_id,
            "category": int(category),
            "recording_ids": recordings.data.cast("B"),
            "window_idx": window_idx.data.cast("B"),
        }
        session.execute(insert(SnapshotColumns), [row])


def _insert_rollups(
    session: Session, snapshot_id: int, parsed: ParsedManifest, recording_ids: np.ndarray[Any, Any]
) -> None:
    """Sum windows, positive samples and samples per recording and category, with numpy."""
    n_recordings = len(parsed.recordings)
    sums: dict[str, np.ndarray[Any, Any]] = {}
    for category in Category:
        arrays = parsed.as_arrays(category)
        prefix = ROLLUP_PREFIX[category.key]
        rec = arrays["recording"]
        sums[f"{prefix}_windows"] = np.bincount(rec, minlength=n_recordings)
        for column in ("pos", "samples"):
            # Integer accumulation: float weights (bincount) could round large sums.
            total = np.zeros(n_recordings, dtype=np.int64)
            source = arrays.get(f"n_{column}")
            if source is not None:
                np.add.at(total, rec, source.astype(np.int64))
            sums[f"{prefix}_{column}"] = total
    snapshot_ids = np.full(n_recordings, snapshot_id, dtype=np.int64)
    columns = ["snapshot_id", "recording_id", *sums]
    rows = array_rows(snapshot_ids, recording_ids, *sums.values())
    insert_rows(session.connection(), RecordingRollup.__tablename__, columns, rows)

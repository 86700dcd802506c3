"""Per-file scan records: what the last read of each cache file found, for incremental scans.

A record is trusted while the file keeps the size and mtime_ns it had when read. Services flush;
the caller's session commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session, sessionmaker

from app.catalog import find_dataset
from app.db import read_session
from app.errors import ConflictError
from app.models import Dataset, ScanFile
from app.scan.file_result import FileResult, pack_counts, unpack_counts
from seizure_stats.schemas.scans import ScanFileRecordOut

NAMES_PER_STATEMENT = 500
SAME_NAMED_FIELDS = ("size", "mtime_ns", "status", "reason", "n_samples")
Item = TypeVar("Item")


def known_files(session: Session, dataset: Dataset) -> dict[str, tuple[int, int]]:
    """(size, mtime_ns) of every file the dataset has a record of."""
    query = select(ScanFile.cache_file, ScanFile.size, ScanFile.mtime_ns).where(
        ScanFile.dataset_id == dataset.id
    )
    return {name: (size, mtime_ns) for name, size, mtime_ns in session.execute(query)}


def known_files_of(factory: sessionmaker[Session], dataset_name: str) -> dict[str, tuple[int, int]]:
    """known_files of a dataset by name; empty for a dataset that does not exist yet."""
    with read_session(factory) as session:
        dataset = find_dataset(session, dataset_name)
        return known_files(session, dataset) if dataset is not None else {}


def list_records(
    session: Session, dataset: Dataset, *, with_counts: bool = False
) -> list[ScanFileRecordOut]:
    query = (
        select(ScanFile)
        .where(ScanFile.dataset_id == dataset.id)
        .order_by(ScanFile.cache_file)
        .execution_options(yield_per=1000)
    )
    return [
        ScanFileRecordOut(
            cache_file=r.cache_file,
            n_pos=unpack_counts(r.n_pos).tolist() if with_counts else None,
            **_same_named_fields(r),
        )
        for r in session.scalars(query)
    ]


def as_result(record: ScanFile | ScanFileRecordOut, *, reused: bool = True) -> FileResult:
    """A stored record as the result of reading its file again."""
    if isinstance(record, ScanFile):
        n_pos = unpack_counts(record.n_pos)
    else:
        n_pos = np.asarray(record.n_pos or [], dtype=np.int32)
    return FileResult(
        name=record.cache_file, n_pos=n_pos, reused=reused, **_same_named_fields(record)
    )


def _same_named_fields(record: ScanFile | ScanFileRecordOut) -> dict[str, Any]:
    """What a record, its wire form and a file's result hold under the same names, as they are."""
    return {name: getattr(record, name) for name in SAME_NAMED_FIELDS}


def resolve_reused(
    session: Session, dataset: Dataset, results: Sequence[FileResult]
) -> list[FileResult]:
    """Fill `reused` entries from the records; refuse any whose record changed meanwhile."""
    wanted = [r.name for r in results if r.reused]
    records: dict[str, ScanFile] = {}
    for batch in _batches(wanted):
        query = select(ScanFile).where(
            ScanFile.dataset_id == dataset.id, ScanFile.cache_file.in_(batch)
        )
        records.update((r.cache_file, r) for r in session.scalars(query))
    stale = [
        r.name
        for r in results
        if r.reused and (r.name not in records or not _same_stat(records[r.name], r))
    ]
    if stale:
        shown = ", ".join(repr(name) for name in stale[:5])
        raise ConflictError(
            f"{len(stale)} file(s) sent as unchanged have no matching scan record ({shown}); "
            "another scan changed them meanwhile: scan again"
        )
    return [as_result(records[r.name]) if r.reused else r for r in results]


def _same_stat(record: ScanFile, result: FileResult) -> bool:
    return (record.size, record.mtime_ns) == (result.size, result.mtime_ns)


def save_records(session: Session, dataset: Dataset, results: Iterable[FileResult]) -> None:
    """Replace the records of files that were read (not reused) in a scan."""
    fresh = [r for r in results if not r.reused]
    forget_records(session, dataset, [r.name for r in fresh])
    now = datetime.now(UTC)
    rows = [
        {
            "dataset_id": dataset.id,
            "cache_file": r.name,
            "size": r.size,
            "mtime_ns": r.mtime_ns,
            "status": str(r.status),
            "reason": r.reason[:500],
            "n_windows": r.n_windows,
            "n_samples": r.n_samples,
            "n_pos": pack_counts(r.n_pos),
            "scanned_at": now,
        }
        for r in fresh
    ]
    for batch in _batches(rows):
        session.execute(insert(ScanFile), batch)


def forget_records(session: Session, dataset: Dataset, names: Sequence[str]) -> None:
    for batch in _batches(names):
        session.execute(
            delete(ScanFile).where(
                ScanFile.dataset_id == dataset.id, ScanFile.cache_file.in_(batch)
            )
        )


def record_names(session: Session, dataset: Dataset) -> set[str]:
    query = select(ScanFile.cache_file).where(ScanFile.dataset_id == dataset.id)
    return set(session.scalars(query))


def _batches(items: Sequence[Item]) -> Iterable[Sequence[Item]]:
    """Rows or names in slices small enough for one statement's parameters."""
    for start in range(0, len(items), NAMES_PER_STATEMENT):
        yield items[start : start + NAMES_PER_STATEMENT]

"""Reading scans back: their state, the parts received, the files they left out."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import catalog
from app.errors import NotFoundError
from app.models import Dataset, Scan, ScanIssue, ScanPart, Snapshot
from seizure_stats.schemas.scans import ScanIssueOut, ScanOut, SnapshotScanIssues

MAX_ISSUES_SHOWN = 10_000


def scan_out(session: Session, dataset: Dataset, scan: Scan) -> ScanOut:
    parts = session.scalars(
        select(ScanPart.shard_index).where(ScanPart.scan_id == scan.id).order_by("shard_index")
    )
    return ScanOut(
        dataset=dataset.name,
        scan_id=scan.scan_key,
        shard_count=scan.shard_count,
        parts_received=list(parts),
        complete=scan.completed_at is not None,
        created_at=scan.created_at,
        completed_at=scan.completed_at,
        snapshot=catalog.snapshot_out_of(session, dataset, scan.snapshot_id),
        snapshot_created=scan.snapshot_created,
        files=scan.files,
        read=scan.files_read,
        reused=scan.files_reused,
        skipped=scan.files_skipped,
        missing=scan.recordings_missing,
        issues=scan_issues(session, scan),
    )


def scan_issues(session: Session, scan: Scan) -> list[ScanIssueOut]:
    query = (
        select(ScanIssue)
        .where(ScanIssue.scan_id == scan.id)
        .order_by(ScanIssue.cache_file)
        .limit(MAX_ISSUES_SHOWN)
    )
    return [
        ScanIssueOut(cache_file=i.cache_file, code=i.code, reason=i.reason)
        for i in session.scalars(query)
    ]


def get_scan(session: Session, dataset: Dataset, scan_key: str) -> Scan:
    query = select(Scan).where(Scan.dataset_id == dataset.id, Scan.scan_key == scan_key)
    scan = session.scalars(query).one_or_none()
    if scan is None:
        raise NotFoundError(f"dataset {dataset.name!r} has no scan {scan_key[:80]!r}")
    return scan


def list_scans(session: Session, dataset: Dataset, limit: int = 100) -> list[Scan]:
    query = select(Scan).where(Scan.dataset_id == dataset.id).order_by(Scan.id.desc()).limit(limit)
    return list(session.scalars(query))


def snapshot_scan_issues(
    session: Session, dataset: Dataset, snapshot: Snapshot
) -> SnapshotScanIssues:
    """The files left out by the latest scan that produced (or found again) `snapshot`."""
    query = (
        select(Scan)
        .where(Scan.dataset_id == dataset.id, Scan.snapshot_id == snapshot.id)
        .order_by(Scan.completed_at.desc(), Scan.id.desc())
        .limit(1)
    )
    scan = session.scalars(query).one_or_none()
    return SnapshotScanIssues(
        dataset=dataset.name,
        snapshot=snapshot.id,
        scan_id=scan.scan_key if scan is not None else None,
        issues=scan_issues(session, scan) if scan is not None else [],
    )

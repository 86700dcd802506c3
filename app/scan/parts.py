"""Receiving scan parts and assembling a snapshot once every part of a scan has arrived.

One transaction per part, the caller's (app.db.run_write). The scan's row is locked first, so
of two last parts arriving at once one assembles and the other sees a complete scan. The part
that completes a scan assembles the manifest, stores the snapshot (store_snapshot, the import
path), records presence, refreshes the per-file records and lists the files left out, all in
that same transaction: until it commits nobody sees any of it, afterwards everything at once.
An unsharded scan is one part of one.

A part sent again is a no-op when identical; before assembly a different copy replaces it,
after assembly it is refused (409: use a new scan id).
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import catalog
from app.errors import ConflictError, InvalidRequestError
from app.ingest.names import cache_file_problem
from app.ingest.presence import apply_presence, recording_names
from app.ingest.snapshot_store import store_snapshot
from app.models import Dataset, Scan, ScanIssue, ScanPart
from app.scan.assembly import Assembly, assemble
from app.scan.file_records import (
    forget_records,
    record_names,
    resolve_reused,
    save_records,
)
from app.scan.file_result import (
    OK,
    REUSED,
    FileResult,
    as_stored,
    from_stored,
    from_wire,
    shard_of,
)
from app.scan.status import scan_out
from seizure_stats.schemas.scans import ScanOut, ScanPartIn


@dataclass(frozen=True)
class PartOutcome:
    scan: ScanOut
    assembly: Assembly | None  # set when this part completed the scan


@dataclass(frozen=True)
class PreparedPart:
    """A part checked and digested, outside any transaction: ready to submit."""

    dataset_name: str
    part: ScanPartIn
    results: list[FileResult]
    digest: str


def prepare_part(dataset_name: str, part: ScanPartIn) -> PreparedPart:
    catalog.validate_dataset_name(dataset_name)
    return PreparedPart(dataset_name, part, validate_part(part), part_digest(part))


def validate_part(part: ScanPartIn) -> list[FileResult]:
    """The part's entries as results; 422 naming the first entry that is not acceptable."""
    index, count = part.shard_index, part.shard_count
    if index >= count:
        raise InvalidRequestError(f"shard_index {index} is not below shard_count {count}")
    seen: set[str] = set()
    results: list[FileResult] = []
    for position, entry in enumerate(part.files):
        where = f"files[{position}] ({entry.cache_file[:100]!r})"
        _check_name(where, entry.cache_file, index, count)
        if entry.cache_file in seen:
            raise InvalidRequestError(f"{where}: file appears twice in the part")
        seen.add(entry.cache_file)
        if entry.status == OK:
            _check_counts(where, entry.n_samples, entry.n_pos)
        elif entry.n_pos:
            raise InvalidRequestError(f"{where}: only `ok` entries carry n_pos")
        if entry.status == REUSED and entry.reason:
            raise InvalidRequestError(f"{where}: a reused entry carries no reason")
        results.append(from_wire(entry))
    for position, name in enumerate(part.other_files):
        where = f"other_files[{position}] ({name[:100]!r})"
        _check_name(where, name, index, count)
        if name in seen:
            raise InvalidRequestError(f"{where}: also listed in files")
    return results


def _check_name(where: str, name: str, index: int, count: int) -> None:
    problem = cache_file_problem(name)
    if problem:
        raise InvalidRequestError(f"{where}: {problem}")
    if shard_of(name, count) != index:
        raise InvalidRequestError(f"{where}: belongs to shard {shard_of(name, count)}/{count}")


def _check_counts(where: str, n_samples: int, n_pos: list[int]) -> None:
    if n_samples < 1 or not n_pos:
        raise InvalidRequestError(f"{where}: an ok file needs n_samples >= 1 and n_pos per window")
    try:
        counts = np.asarray(n_pos, dtype=np.int64)
    except (OverflowError, ValueError) as exc:
        raise InvalidRequestError(f"{where}: n_pos must be integers: {exc}") from exc
    bad = np.flatnonzero((counts < 0) | (counts > n_samples))
    if bad.size:
        i = int(bad[0])
        raise InvalidRequestError(
            f"{where}: n_pos[{i}] = {int(counts[i])} is outside 0..n_samples ({n_samples})"
        )


def part_digest(part: ScanPartIn) -> str:
    """sha256 of the part in a canonical order: equal content, equal digest."""
    canonical = part.model_copy(
        update={
            "files": sorted(part.files, key=lambda f: f.cache_file),
            "other_files": sorted(part.other_files),
        }
    )
    return "sha256:" + hashlib.sha256(canonical.model_dump_json().encode()).hexdigest()


def submit_part(session: Session, prepared: PreparedPart) -> PartOutcome:
    """Record one part of a scan; assemble and store the snapshot when it is the last one.

    Flushes, never commits. Concurrent first parts (or first scans of a new dataset) collide on
    a unique key: run it with app.db.run_write, whose retry finds the winner's row.
    """
    part, results, digest = prepared.part, prepared.results, prepared.digest
    dataset = catalog.get_or_create_dataset(session, prepared.dataset_name)
    scan = _locked_scan(session, dataset, part.scan_id)
    if scan is None:
        scan = Scan(dataset_id=dataset.id, scan_key=part.scan_id, shard_count=part.shard_count)
        session.add(scan)
        session.flush()
    if scan.shard_count != part.shard_count:
        raise ConflictError(
            f"scan {part.scan_id!r} has {scan.shard_count} parts; this part says {part.shard_count}"
        )
    stored = session.get(ScanPart, (scan.id, part.shard_index))
    if scan.completed_at is not None:
        if stored is not None and stored.digest == digest:
            return PartOutcome(scan_out(session, dataset, scan), None)
        raise ConflictError(
            f"scan {part.scan_id!r} is already assembled and part {part.shard_index} differs "
            "from the one it used: start a new scan id"
        )
    resolved = resolve_reused(session, dataset, results)
    now = datetime.now(UTC)
    if stored is None:
        stored = ScanPart(scan_id=scan.id, shard_index=part.shard_index)
        session.add(stored)
    if stored.digest != digest:
        stored.digest = digest
        stored.payload = _encode(resolved, part.other_files)
        stored.received_at = now
    session.flush()
    parts = list(session.scalars(select(ScanPart).where(ScanPart.scan_id == scan.id)))
    if len(parts) < scan.shard_count:
        return PartOutcome(scan_out(session, dataset, scan), None)
    everything: list[FileResult] = []
    others: list[str] = []
    for received in parts:
        assert received.payload is not None
        files, names = _decode(received.payload)
        everything += files
        others += names
        received.payload = None  # assembled: only the digest is kept, for repeated pushes
    assembly = _assemble(session, dataset, scan, everything, others, now)
    return PartOutcome(scan_out(session, dataset, scan), assembly)


def _locked_scan(session: Session, dataset: Dataset, scan_key: str) -> Scan | None:
    query = (
        select(Scan)
        .where(Scan.dataset_id == dataset.id, Scan.scan_key == scan_key)
        .with_for_update()
    )
    return session.scalars(query).one_or_none()


def _assemble(
    session: Session,
    dataset: Dataset,
    scan: Scan,
    results: list[FileResult],
    other_files: list[str],
    now: datetime,
) -> Assembly:
    assembly = assemble(results, dataset.full_threshold)
    if assembly.parsed is None:
        reasons = "; ".join(f"{i.cache_file}: {i.code}" for i in assembly.issues[:5])
        raise InvalidRequestError(
            f"the scan found no usable window in {len(results)} file(s)"
            + (f" ({reasons})" if reasons else "")
        )
    stored = store_snapshot(session, dataset, assembly.parsed, source=f"scan {scan.scan_key}")
    on_disk = {r.name for r in results} | set(other_files)
    presence = {name: name in on_disk for name in recording_names(session, dataset)}
    apply_presence(session, dataset, presence)
    scanned = {r.name for r in results}
    forget_records(session, dataset, sorted(record_names(session, dataset) - scanned))
    save_records(session, dataset, results)
    session.add_all(
        ScanIssue(scan_id=scan.id, cache_file=i.cache_file, code=i.code, reason=i.reason[:500])
        for i in assembly.issues
    )
    scan.completed_at = now
    scan.snapshot_id = stored.snapshot.id
    scan.snapshot_created = stored.created
    scan.files = len(results)
    scan.files_reused = sum(1 for r in results if r.reused)
    scan.files_read = scan.files - scan.files_reused
    scan.files_skipped = assembly.skipped
    scan.recordings_missing = sum(1 for present in presence.values() if not present)
    session.flush()
    return assembly


def _encode(results: Sequence[FileResult], other_files: list[str]) -> bytes:
    files = [as_stored(r) for r in results]
    return zlib.compress(json.dumps({"files": files, "others": other_files}).encode(), 6)


def _decode(payload: bytes) -> tuple[list[FileResult], list[str]]:
    data = json.loads(zlib.decompress(payload))
    files = [from_stored(f) for f in data["files"]]
    return files, list(data["others"])

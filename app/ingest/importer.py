"""Importing a manifest: parse it outside any transaction, then store it in the caller's.

A large manifest takes seconds to parse; parsed inside a write transaction it would hold the
write lock that long. Storing only flushes: the caller's one transaction (app.db.run_write)
makes the import all or nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sqlalchemy.orm import Session, sessionmaker

from app.catalog import find_dataset, get_or_create_dataset, validate_dataset_name
from app.db import read_session
from app.errors import InvalidRequestError
from app.ingest.gunzip import GZIP_MAGIC, open_gunzipped
from app.ingest.manifest import ParsedManifest, ProgressCallback, parse_manifest
from app.ingest.presence import PresenceReport, apply_presence, check_presence
from app.ingest.snapshot_store import store_snapshot
from app.models import Dataset, Snapshot
from seizure_stats.labels import DEFAULT_FULL_THRESHOLD


@dataclass(frozen=True)
class ImportOutcome:
    dataset: Dataset
    snapshot: Snapshot
    created: bool
    presence: PresenceReport | None


def open_manifest_file(path: Path) -> IO[bytes]:
    """Open a manifest for reading, gunzipping it when it starts with the gzip magic bytes.

    Gzip follows the same rule as uploads (app.ingest.gunzip); errors name the file.
    """
    if not path.is_file():
        raise InvalidRequestError(f"manifest file {str(path)!r} does not exist")
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == GZIP_MAGIC:
        return open_gunzipped(path.open("rb"), f"manifest file {str(path)!r}")
    return path.open("rb")


@dataclass(frozen=True)
class PreparedImport:
    """A manifest parsed for a dataset, ready to store: the slow part, done outside transactions."""

    dataset_name: str
    parsed: ParsedManifest
    source: str = ""
    presence: PresenceReport | None = None


def dataset_threshold(factory: sessionmaker[Session], name: str) -> float:
    with read_session(factory) as session:
        dataset = find_dataset(session, name)
        return dataset.full_threshold if dataset is not None else DEFAULT_FULL_THRESHOLD


def prepare_import(
    factory: sessionmaker[Session],
    dataset_name: str,
    stream: IO[bytes],
    *,
    source: str = "",
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> PreparedImport:
    """Parse a manifest stream with the dataset's threshold; check presence in `cache_dir`."""
    validate_dataset_name(dataset_name)
    parsed = parse_manifest(
        stream, full_threshold=dataset_threshold(factory, dataset_name), progress=progress
    )
    presence = check_presence(cache_dir, parsed.recordings) if cache_dir is not None else None
    return PreparedImport(dataset_name, parsed, source, presence)


def store_import(session: Session, prepared: PreparedImport) -> ImportOutcome:
    """Store a prepared import as the dataset's current snapshot, with its presence report."""
    report = prepared.presence
    return store_parsed(
        session,
        prepared.dataset_name,
        prepared.parsed,
        source=prepared.source,
        presence=report.as_mapping() if report is not None else None,
        report=report,
    )


def store_parsed(
    session: Session,
    dataset_name: str,
    parsed: ParsedManifest,
    *,
    source: str = "",
    presence: Mapping[str, bool] | None = None,
    report: PresenceReport | None = None,
) -> ImportOutcome:
    """Store an already parsed manifest (with presence, if given); flushes, never commits."""
    dataset = get_or_create_dataset(session, dataset_name)
    result = store_snapshot(session, dataset, parsed, source=source)
    if presence:
        apply_presence(session, dataset, presence)
    return ImportOutcome(dataset, result.snapshot, result.created, report)

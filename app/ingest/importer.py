"""Importing a manifest end to end: parse (outside any transaction), then store atomically."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.catalog import find_dataset, get_or_create_dataset, validate_dataset_name
from app.db import read_session, write_session
from app.errors import ConflictError, InvalidRequestError
from app.ingest.gunzip import GZIP_MAGIC, open_gunzipped
from app.ingest.manifest import ParsedManifest, ProgressCallback, parse_manifest
from app.ingest.presence import PresenceReport, apply_presence, check_presence
from app.ingest.snapshot_store import store_snapshot
from app.labels import DEFAULT_FULL_THRESHOLD
from app.models import Dataset, Snapshot

# Concurrent first imports into one new dataset, or of one content, collide on a unique key;
# the loser retries and then finds the winner's row.
ATTEMPTS = 3


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


def dataset_threshold(factory: sessionmaker[Session], name: str) -> float:
    with read_session(factory) as session:
        dataset = find_dataset(session, name)
        return dataset.full_threshold if dataset is not None else DEFAULT_FULL_THRESHOLD


def import_manifest(
    factory: sessionmaker[Session],
    dataset_name: str,
    stream: IO[bytes],
    *,
    source: str = "",
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
) -> ImportOutcome:
    """Parse a manifest stream and store it as the dataset's current snapshot."""
    validate_dataset_name(dataset_name)
    parsed = parse_manifest(
        stream, full_threshold=dataset_threshold(factory, dataset_name), progress=progress
    )
    presence = check_presence(cache_dir, parsed.recordings) if cache_dir is not None else None
    return store_parsed(
        factory,
        dataset_name,
        parsed,
        source=source,
        presence=presence.as_mapping() if presence else None,
        report=presence,
    )


def store_parsed(
    factory: sessionmaker[Session],
    dataset_name: str,
    parsed: ParsedManifest,
    *,
    source: str = "",
    presence: Mapping[str, bool] | None = None,
    report: PresenceReport | None = None,
) -> ImportOutcome:
    """Store an already parsed manifest in one transaction (with presence, if given)."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with write_session(factory) as session:
                dataset = get_or_create_dataset(session, dataset_name)
                result = store_snapshot(session, dataset, parsed, source=source)
                if presence:
                    apply_presence(session, dataset, presence)
            return ImportOutcome(dataset, result.snapshot, result.created, report)
        except (IntegrityError, ConflictError):
            if attempt == ATTEMPTS:
                raise
    raise AssertionError("unreachable")  # pragma: no cover

"""Which recordings exist on the volume: file names only, never file contents."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from app.catalog import get_dataset
from app.errors import InvalidRequestError, NotFoundError
from app.models import Dataset, Recording
from seizure_stats.schemas.datasets import PresenceResult

UNKNOWN_SHOWN = 1000


@dataclass(frozen=True)
class PresenceReport:
    present: list[str]
    missing: list[str]
    unexpected: list[str]

    def as_mapping(self) -> dict[str, bool]:
        return dict.fromkeys(self.present, True) | dict.fromkeys(self.missing, False)


def list_cache_files(cache_dir: Path) -> set[str]:
    """Names of the regular files directly inside cache_dir (one directory listing)."""
    if not cache_dir.is_dir():
        raise InvalidRequestError(f"cache directory {str(cache_dir)!r} does not exist")
    with os.scandir(cache_dir) as entries:
        return {entry.name for entry in entries if entry.is_file()}


def check_presence(cache_dir: Path, expected: Iterable[str]) -> PresenceReport:
    """Compare the expected cache files with what the directory holds."""
    on_disk = list_cache_files(cache_dir)
    expected_set = set(expected)
    return PresenceReport(
        present=sorted(expected_set & on_disk),
        missing=sorted(expected_set - on_disk),
        unexpected=sorted(name for name in on_disk - expected_set if name.endswith(".npz")),
    )


def apply_presence(session: Session, dataset: Dataset, presence: Mapping[str, bool]) -> int:
    """Record presence for the dataset's recordings; returns how many known recordings it named."""
    if not presence:
        return 0
    table = Recording.__table__.c
    statement = (
        update(Recording)
        .where(table.dataset_id == dataset.id, table.cache_file == bindparam("name"))
        .values(present=bindparam("is_present"))
    )
    params = [{"name": name, "is_present": bool(flag)} for name, flag in presence.items()]
    result = session.connection().execute(statement, params)
    dataset.presence_checked_at = datetime.now(UTC)
    dataset.presence_version += 1
    return int(result.rowcount)


def recording_names(session: Session, dataset: Dataset) -> list[str]:
    """Cache file names of every recording the dataset has known."""
    query = select(Recording.cache_file).where(Recording.dataset_id == dataset.id)
    return sorted(session.scalars(query))


def record_presence(session: Session, name: str, presence: Mapping[str, bool]) -> PresenceResult:
    """Record a presence report for dataset `name`; names it does not know are listed back."""
    found = get_dataset(session, name)
    known = set(recording_names(session, found))
    if not known:
        raise NotFoundError(f"dataset {name!r} has no recordings yet: import a manifest")
    updated = apply_presence(session, found, presence)
    unknown = sorted(set(presence) - known)
    return PresenceResult(dataset=name, updated=updated, unknown=unknown[:UNKNOWN_SHOWN])

"""Datasets and snapshots: lookups and creation. Services flush; the caller's session commits."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import ConflictError, InvalidRequestError, NotFoundError
from app.models import Dataset, Snapshot
from app.queries.stats import make_counts
from seizure_stats.labels import DEFAULT_FULL_THRESHOLD
from seizure_stats.schemas.datasets import DatasetOut, SnapshotOut

DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def validate_dataset_name(name: str) -> None:
    if not DATASET_NAME.match(name):
        raise InvalidRequestError(
            f"dataset name {name[:140]!r} is not valid: use 1-128 letters, digits, '.', '_' or "
            "'-', starting with a letter or digit"
        )


def validate_full_threshold(threshold: float) -> None:
    if not 0 < threshold <= 1:
        raise InvalidRequestError(f"full_threshold must be in (0, 1], got {threshold}")


def list_datasets(session: Session) -> list[Dataset]:
    return list(session.scalars(select(Dataset).order_by(Dataset.name)))


def find_dataset(session: Session, name: str) -> Dataset | None:
    if not DATASET_NAME.match(name):
        return None  # no dataset can have this name; Postgres could not even compare some
    return session.scalars(select(Dataset).where(Dataset.name == name)).one_or_none()


def no_such_dataset(name: str) -> NotFoundError:
    return NotFoundError(f"dataset {name[:140]!r} does not exist")


def no_snapshot_yet(name: str) -> NotFoundError:
    return NotFoundError(f"dataset {name!r} has no snapshot yet: import a manifest")


def get_dataset(session: Session, name: str) -> Dataset:
    dataset = find_dataset(session, name)
    if dataset is None:
        raise no_such_dataset(name)
    return dataset


def create_dataset(
    session: Session,
    name: str,
    *,
    description: str = "",
    full_threshold: float = DEFAULT_FULL_THRESHOLD,
) -> Dataset:
    validate_dataset_name(name)
    validate_full_threshold(full_threshold)
    if find_dataset(session, name) is not None:
        raise ConflictError(f"dataset {name!r} already exists")
    try:
        return _insert_dataset(session, name, description, full_threshold)
    except IntegrityError:
        raise ConflictError(f"dataset {name!r} already exists") from None


def get_or_create_dataset(session: Session, name: str) -> Dataset:
    """The dataset, created when missing; a concurrent creation raises IntegrityError (retry)."""
    dataset = find_dataset(session, name)
    if dataset is not None:
        return dataset
    validate_dataset_name(name)
    return _insert_dataset(session, name, "", DEFAULT_FULL_THRESHOLD)


def _insert_dataset(
    session: Session, name: str, description: str, full_threshold: float
) -> Dataset:
    dataset = Dataset(name=name, description=description, full_threshold=full_threshold)
    session.add(dataset)
    with session.begin_nested():
        session.flush()
    return dataset


def list_snapshots(session: Session, dataset: Dataset) -> list[Snapshot]:
    query = select(Snapshot).where(Snapshot.dataset_id == dataset.id).order_by(Snapshot.id.desc())
    return list(session.scalars(query))


def get_snapshot(session: Session, dataset: Dataset, snapshot_id: int) -> Snapshot:
    snapshot = session.get(Snapshot, snapshot_id)
    if snapshot is None or snapshot.dataset_id != dataset.id:
        raise NotFoundError(f"dataset {dataset.name!r} has no snapshot {snapshot_id}")
    return snapshot


def resolve_snapshot(session: Session, dataset: Dataset, snapshot_id: int | None) -> Snapshot:
    """The pinned snapshot, or the dataset's current one."""
    if snapshot_id is not None:
        return get_snapshot(session, dataset, snapshot_id)
    if dataset.current_snapshot_id is None:
        raise no_snapshot_yet(dataset.name)
    return get_snapshot(session, dataset, dataset.current_snapshot_id)


def dataset_snapshot(
    session: Session, name: str, snapshot_id: int | None
) -> tuple[Dataset, Snapshot]:
    """The dataset named and the snapshot a question is about (pinned, or else current).

    Every answer starts here, so both come in one statement (one round trip fewer to Postgres);
    when it finds nothing, the two lookups it stands for say which 404 it is.
    """
    if DATASET_NAME.match(name):
        wanted = Dataset.current_snapshot_id if snapshot_id is None else snapshot_id
        query = (
            select(Dataset, Snapshot)
            .join(Snapshot, Snapshot.dataset_id == Dataset.id)
            .where(Dataset.name == name, Snapshot.id == wanted)
        )
        found = session.execute(query).one_or_none()
        if found is not None:
            dataset, snapshot = found
            return dataset, snapshot
    dataset = get_dataset(session, name)
    return dataset, resolve_snapshot(session, dataset, snapshot_id)


def count_snapshots(session: Session, dataset: Dataset) -> int:
    query = select(func.count()).select_from(Snapshot).where(Snapshot.dataset_id == dataset.id)
    return int(session.scalar(query) or 0)


def snapshot_out(snapshot: Snapshot, dataset: Dataset) -> SnapshotOut:
    return SnapshotOut(
        id=snapshot.id,
        dataset=dataset.name,
        content_hash=snapshot.content_hash,
        created_at=snapshot.created_at,
        source=snapshot.source,
        counts=make_counts(
            snapshot.partial_windows, snapshot.full_windows, snapshot.no_seizure_windows
        ),
        recordings=snapshot.recordings,
        has_sample_counts=snapshot.has_sample_counts,
        current=dataset.current_snapshot_id == snapshot.id,
    )


def snapshot_out_of(
    session: Session, dataset: Dataset, snapshot_id: int | None
) -> SnapshotOut | None:
    """The wire form of the snapshot an optional reference names (a current one, a scan's)."""
    if snapshot_id is None:
        return None
    return snapshot_out(get_snapshot(session, dataset, snapshot_id), dataset)


def dataset_out(session: Session, dataset: Dataset) -> DatasetOut:
    return DatasetOut(
        name=dataset.name,
        description=dataset.description,
        full_threshold=dataset.full_threshold,
        created_at=dataset.created_at,
        snapshots=count_snapshots(session, dataset),
        current_snapshot=snapshot_out_of(session, dataset, dataset.current_snapshot_id),
    )

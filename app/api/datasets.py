"""Datasets, their snapshots, imports and presence reports."""

from __future__ import annotations

import logging
import time
from functools import partial
from typing import IO, Annotated

from fastapi import Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import catalog
from app.api.deps import (
    MetricsDep,
    ReadSessionDep,
    SessionFactoryDep,
    SettingsDep,
    WriteTokenDep,
    read_route,
)
from app.api.routers import datasets_router, error_responses
from app.api.upload import receive_manifest
from app.db import run_write
from app.ingest.importer import prepare_import, store_import
from app.ingest.presence import record_presence
from app.models import Recording
from seizure_stats.schemas.datasets import (
    DatasetCreate,
    DatasetOut,
    ImportResponse,
    PresenceResult,
    PresenceUpdate,
    RecordingOut,
    SnapshotOut,
)
from seizure_stats.schemas.questions import SnapshotId, Text

logger = logging.getLogger(__name__)
router = datasets_router("datasets", error_responses(400, 401, 403, 404, 409, 413, 422, 503))

MANIFEST_BODY = {
    "requestBody": {
        "required": True,
        "description": "A manifest.json, plain or gzip (`Content-Encoding: gzip`).",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["partial_seizure", "full_seizure", "no_seizure"],
                    "additionalProperties": False,
                    "properties": {
                        key: {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["cache_file", "window_idx"],
                                "properties": {
                                    "cache_file": {"type": "string"},
                                    "window_idx": {"type": "integer", "minimum": 0},
                                    "n_pos": {"type": "integer", "minimum": 0},
                                    "n_samples": {"type": "integer", "minimum": 1},
                                },
                            },
                        }
                        for key in ("partial_seizure", "full_seizure", "no_seizure")
                    },
                }
            }
        },
    }
}


@read_route(router, "", summary="All datasets")
def list_datasets(session: ReadSessionDep) -> list[DatasetOut]:
    return [catalog.dataset_out(session, d) for d in catalog.list_datasets(session)]


@router.post(
    "",
    status_code=201,
    summary="Create an empty dataset (importing into a new name creates it too)",
)
def create_dataset(
    body: DatasetCreate, factory: SessionFactoryDep, writer: WriteTokenDep
) -> DatasetOut:
    def create(session: Session) -> DatasetOut:
        dataset = catalog.create_dataset(
            session, body.name, description=body.description, full_threshold=body.full_threshold
        )
        return catalog.dataset_out(session, dataset)

    return run_write(factory, create)


@read_route(router, "/{dataset}", summary="One dataset and its current snapshot")
def get_dataset(dataset: str, session: ReadSessionDep) -> DatasetOut:
    return catalog.dataset_out(session, catalog.get_dataset(session, dataset))


@read_route(router, "/{dataset}/snapshots", summary="The dataset's snapshots, newest first")
def list_snapshots(dataset: str, session: ReadSessionDep) -> list[SnapshotOut]:
    found = catalog.get_dataset(session, dataset)
    return [catalog.snapshot_out(s, found) for s in catalog.list_snapshots(session, found)]


@read_route(router, "/{dataset}/snapshots/{snapshot_id}", summary="One snapshot")
def get_snapshot(dataset: str, snapshot_id: SnapshotId, session: ReadSessionDep) -> SnapshotOut:
    found = catalog.get_dataset(session, dataset)
    return catalog.snapshot_out(catalog.get_snapshot(session, found, snapshot_id), found)


@router.post(
    "/{dataset}/snapshots",
    status_code=201,
    summary="Import a manifest.json as a new snapshot (200 if identical content exists)",
    responses={200: {"model": ImportResponse}},
    openapi_extra=MANIFEST_BODY,
)
async def import_snapshot(
    dataset: str,
    request: Request,
    response: Response,
    factory: SessionFactoryDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    writer: WriteTokenDep,
    source: Annotated[Text, Query(max_length=500, description="Where it came from.")] = "",
) -> ImportResponse:
    started = time.perf_counter()
    size: int | None = None
    try:
        with await receive_manifest(request, settings.max_upload_bytes) as body:
            size = _body_size(body)
            prepared = await run_in_threadpool(
                prepare_import, factory, dataset, body, source=source or "http upload"
            )
        outcome = await run_in_threadpool(
            run_write, factory, partial(store_import, prepared=prepared)
        )
    except Exception:
        metrics.observe_import("failed", time.perf_counter() - started, size, None)
        raise
    summary = catalog.snapshot_out(outcome.snapshot, outcome.dataset)
    seconds = time.perf_counter() - started
    verdict = "created" if outcome.created else "existing"
    metrics.observe_import(verdict, seconds, size, summary.counts.total)
    logger.info(
        "import into %s by token %s: snapshot %d %s, %d windows, %.2fs",
        dataset,
        writer.name,
        summary.id,
        verdict,
        summary.counts.total,
        seconds,
        extra={"dataset": dataset, "snapshot": summary.id, "token_name": writer.name},
    )
    if not outcome.created:
        response.status_code = 200
    return ImportResponse(**summary.model_dump(), created=outcome.created)


def _body_size(body: IO[bytes]) -> int:
    size = body.seek(0, 2)
    body.seek(0)
    return size


@read_route(
    router,
    "/{dataset}/recordings",
    summary="The dataset's recordings: names parsed from the stem, and presence on the volume",
)
def list_recordings(dataset: str, session: ReadSessionDep) -> list[RecordingOut]:
    found = catalog.get_dataset(session, dataset)
    rows = session.scalars(
        select(Recording).where(Recording.dataset_id == found.id).order_by(Recording.cache_file)
    )
    return [RecordingOut.model_validate(r) for r in rows]


@router.post(
    "/{dataset}/presence",
    summary="Record which recordings are present on the volume (from a verify or scan)",
)
def update_presence(
    dataset: str, body: PresenceUpdate, factory: SessionFactoryDep, writer: WriteTokenDep
) -> PresenceResult:
    presence = dict.fromkeys(body.present, True) | dict.fromkeys(body.missing, False)
    return run_write(factory, partial(record_presence, name=dataset, presence=presence))

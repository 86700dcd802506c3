"""Cache scans: parts pushed by scanning machines, scan state, per-file records, skipped files."""

from __future__ import annotations

import contextlib
from functools import partial
from typing import IO, Annotated

from fastapi import Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from app import catalog
from app.api.bodies import NotJsonError, load_json
from app.api.deps import (
    ReadSessionDep,
    SessionFactoryDep,
    SettingsDep,
    WriteTokenDep,
    read_route,
)
from app.api.routers import datasets_router, error_responses
from app.api.upload import receive_manifest
from app.db import run_write
from app.errors import InvalidRequestError
from app.scan.file_records import list_records
from app.scan.parts import prepare_part, submit_part
from app.scan.status import get_scan, list_scans, scan_out, snapshot_scan_issues
from seizure_stats.schemas.questions import SnapshotId
from seizure_stats.schemas.scans import (
    SCAN_ID_PATTERN,
    ScanFileIn,
    ScanFileRecordOut,
    ScanOut,
    ScanPartIn,
    SnapshotScanIssues,
)

router = datasets_router("scans", error_responses(400, 401, 403, 404, 409, 413, 422))
PART_BODY = {
    "requestBody": {
        "required": True,
        "description": "A scan part (JSON, optionally gzip with `Content-Encoding: gzip`).",
        "content": {"application/json": {"schema": ScanPartIn.model_json_schema()}},
    }
}


@router.post(
    "/{dataset}/scan-parts",
    status_code=200,
    summary="Push one part of a scan; the snapshot is assembled when every part has arrived",
    description="200 with the complete scan (and its snapshot) once every part is in; 202 while "
    "parts are missing. Pushing an identical part again changes nothing.",
    responses={202: {"model": ScanOut}},
    openapi_extra=PART_BODY,
)
async def push_scan_part(
    dataset: str,
    request: Request,
    response: Response,
    factory: SessionFactoryDep,
    settings: SettingsDep,
    _writer: WriteTokenDep,
) -> ScanOut:
    with await receive_manifest(request, settings.max_upload_bytes) as body:
        # Tens of megabytes: parsed on the event loop, it stalled every other request.
        part = await run_in_threadpool(parse_part, body)
    prepared = await run_in_threadpool(prepare_part, dataset, part)
    outcome = await run_in_threadpool(run_write, factory, partial(submit_part, prepared=prepared))
    if not outcome.scan.complete:
        response.status_code = 202
    return outcome.scan


def parse_part(body: IO[bytes]) -> ScanPartIn:
    """The part, parsed in slices and validated file by file, so that a part of tens of
    megabytes never holds the GIL for long: parsed whole, one stalled every other request."""
    try:
        data = load_json(body)
    except NotJsonError as exc:
        raise InvalidRequestError(f"scan part is not valid JSON: {exc}") from None
    files = data.get("files") if isinstance(data, dict) else None
    if isinstance(files, list):
        # If a file is invalid, the whole part is validated below, naming each problem's place.
        with contextlib.suppress(ValidationError):
            data["files"] = [ScanFileIn.model_validate(entry) for entry in files]
    try:
        return ScanPartIn.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        raise InvalidRequestError(
            f"scan part: {where}: {first.get('msg', 'invalid')} ({exc.error_count()} problem(s))"
        ) from None


@read_route(router, "/{dataset}/scans", summary="The dataset's scans, newest first")
def get_scans(
    dataset: str, session: ReadSessionDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[ScanOut]:
    found = catalog.get_dataset(session, dataset)
    return [scan_out(session, found, scan) for scan in list_scans(session, found, limit)]


@read_route(
    router,
    "/{dataset}/scans/{scan_id}",
    summary="One scan: parts received, its snapshot once complete, the files it left out",
)
def get_one_scan(
    dataset: str,
    scan_id: Annotated[str, Path(pattern=SCAN_ID_PATTERN)],
    session: ReadSessionDep,
) -> ScanOut:
    found = catalog.get_dataset(session, dataset)
    return scan_out(session, found, get_scan(session, found, scan_id))


@read_route(
    router,
    "/{dataset}/scan-files",
    summary="What the last scans found per cache file (size and mtime; counts on request)",
)
def get_scan_files(
    dataset: str,
    session: ReadSessionDep,
    counts: Annotated[bool, Query(description="Include each window's n_pos.")] = False,
) -> list[ScanFileRecordOut]:
    found = catalog.get_dataset(session, dataset)
    return list_records(session, found, with_counts=counts)


@read_route(
    router,
    "/{dataset}/snapshots/{snapshot_id}/scan-issues",
    summary="Files the scan that produced this snapshot left out, with the reason",
)
def get_snapshot_scan_issues(
    dataset: str, snapshot_id: SnapshotId, session: ReadSessionDep
) -> SnapshotScanIssues:
    found = catalog.get_dataset(session, dataset)
    return snapshot_scan_issues(session, found, catalog.get_snapshot(session, found, snapshot_id))

"""Breakdowns, seizure-fraction histograms and snapshot diffs of a dataset."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.orm import Session

from app import catalog
from app.api.bodies import BodyGuardRoute
from app.api.deps import ReadAccess, only_params
from app.api.heavy import in_read_session, json_response, run_read, snapshot_asked
from app.api.stats import ERRORS
from app.queries.breakdown import compute_breakdown
from app.queries.diff import DEFAULT_RECORDING_LIMIT, diff_snapshots
from app.queries.filters import release_filter_garbage
from app.queries.histogram import compute_histogram
from app.schemas.questions import SnapshotId, question_in
from app.schemas.reports import (
    MAX_BREAKDOWN_LIMIT,
    BreakdownParams,
    BreakdownQuery,
    BreakdownResponse,
    HistogramQuery,
    HistogramResponse,
    SnapshotDiff,
)
from app.schemas.reports import BreakdownFormat as Format

router = APIRouter(
    prefix="/api/v1/datasets",
    tags=["breakdowns"],
    dependencies=[ReadAccess],
    route_class=BodyGuardRoute,
)
CSV_COLUMNS = (
    "key",
    "patient",
    "session",
    "recording",
    "category",
    "no_seizure",
    "partial_seizure",
    "full_seizure",
    "seizure",
    "total",
    "seizure_ratio",
    "share",
    "positive_samples",
    "samples",
    "sample_ratio",
    "recordings",
    "missing_windows",
)


async def answer_breakdown(
    request: Request, dataset: str, query: BreakdownQuery, output: Format
) -> Response:
    snapshot_id = await snapshot_asked(request, dataset, query.snapshot)
    work = in_read_session(partial(breakdown_of, dataset, query, output))
    response = await run_read(request, [snapshot_id], work)
    release_filter_garbage(query)
    return response


def breakdown_of(dataset: str, query: BreakdownQuery, output: Format, session: Session) -> Response:
    found = catalog.get_dataset(session, dataset)
    snapshot = catalog.resolve_snapshot(session, found, query.snapshot)
    answer = compute_breakdown(session, found, snapshot, query, unpaged=output == "csv")
    if output == "json":
        return json_response(answer)
    headers = {
        "X-Snapshot": str(answer.snapshot),
        "X-Content-Hash": answer.content_hash,
        "X-Total-Groups": str(answer.total_groups),
        "Content-Disposition": f'attachment; filename="{found.name}-by-{query.by}.csv"',
    }
    return StreamingResponse(_csv_lines(answer), media_type="text/csv", headers=headers)


def _csv_lines(answer: BreakdownResponse) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for number, group in enumerate(answer.groups, start=1):
        counts = group.counts
        texts = (group.key, group.patient, group.session, group.recording, group.category)
        writer.writerow(
            [text_cell(value) for value in texts]
            + [
                _number_cell(value)
                for value in (
                    counts.no_seizure,
                    counts.partial_seizure,
                    counts.full_seizure,
                    counts.seizure,
                    counts.total,
                    group.seizure_ratio,
                    group.share,
                    group.samples.positive,
                    group.samples.total,
                    group.sample_ratio,
                    group.recordings,
                    group.missing_windows,
                )
            ]
        )
        if number % 5000 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


# A spreadsheet runs a cell starting with one of these as a formula (a cache file named
# `=HYPERLINK(...)_windows.npz` would become a live link). OWASP's advice on CSV injection: make
# such a text cell text with a leading single quote, which spreadsheets show without it.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def text_cell(value: str | None) -> str:
    """A name column's cell: the name, quoted so that no spreadsheet takes it for a formula."""
    if value is None:
        return ""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _number_cell(value: float | None) -> str:
    # repr of a float is its shortest exact form: a CSV reader gets the same number back.
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


BREAKDOWN_RESPONSES = ERRORS | {
    200: {"content": {"application/json": {}, "text/csv": {}}, "model": BreakdownResponse}
}


@router.get(
    "/{dataset}/breakdown",
    summary="A subset's exact counts per patient, session, recording or category",
    description="The same subset as `stats`; the groups' counts add up to its totals. "
    "Sortable and paged; `format=csv` streams every group (or the page asked for) as CSV.",
    responses=BREAKDOWN_RESPONSES,
    response_model=BreakdownResponse,
)
async def get_breakdown(
    dataset: str, request: Request, params: Annotated[BreakdownParams, Query()]
) -> Any:
    query = question_in(params, BreakdownQuery)
    return await answer_breakdown(request, dataset, query, params.format)


@router.post(
    "/{dataset}/breakdown",
    summary="The same as GET, with the filter in a JSON body (for long recording lists)",
    responses=BREAKDOWN_RESPONSES,
    response_model=BreakdownResponse,
    dependencies=[Depends(only_params("format"))],
)
async def post_breakdown(
    dataset: str, request: Request, query: BreakdownQuery, format: Format = "json"
) -> Any:
    return await answer_breakdown(request, dataset, query, format)


async def answer_histogram(request: Request, dataset: str, query: HistogramQuery) -> Response:
    snapshot_id = await snapshot_asked(request, dataset, query.snapshot)
    answer = await run_read(
        request, [snapshot_id], in_read_session(partial(histogram_of, dataset, query))
    )
    release_filter_garbage(query)
    return answer


def histogram_of(dataset: str, query: HistogramQuery, session: Session) -> Response:
    found = catalog.get_dataset(session, dataset)
    snapshot = catalog.resolve_snapshot(session, found, query.snapshot)
    return json_response(compute_histogram(session, found, snapshot, query))


@router.get(
    "/{dataset}/histogram",
    summary="How many windows of a subset have each seizure fraction (n_pos / n_samples)",
    description="Needs per-window sample counts (a scanned snapshot): 422 otherwise.",
    responses=ERRORS,
    response_model=HistogramResponse,
)
async def get_histogram(
    dataset: str, request: Request, query: Annotated[HistogramQuery, Query()]
) -> Response:
    return await answer_histogram(request, dataset, query)


@router.post(
    "/{dataset}/histogram",
    summary="The same as GET, with the filter in a JSON body",
    responses=ERRORS,
    response_model=HistogramResponse,
    dependencies=[Depends(only_params())],
)
async def post_histogram(dataset: str, request: Request, query: HistogramQuery) -> Response:
    return await answer_histogram(request, dataset, query)


@router.get(
    "/{dataset}/snapshots/{a}/diff/{b}",
    summary="Windows added, removed and changed in category from snapshot a to snapshot b",
    responses=ERRORS,
    response_model=SnapshotDiff,
    dependencies=[Depends(only_params("limit"))],
)
async def get_snapshot_diff(
    dataset: str,
    a: SnapshotId,
    b: SnapshotId,
    request: Request,
    limit: Annotated[
        int, Query(ge=0, le=MAX_BREAKDOWN_LIMIT, description="Most recordings listed.")
    ] = DEFAULT_RECORDING_LIMIT,
) -> Response:
    return await run_read(request, [a, b], in_read_session(partial(diff_of, dataset, a, b, limit)))


def diff_of(dataset: str, a: int, b: int, limit: int, session: Session) -> Response:
    found = catalog.get_dataset(session, dataset)
    old = catalog.get_snapshot(session, found, a)
    new = catalog.get_snapshot(session, found, b)
    return json_response(diff_snapshots(session, found, old, new, recording_limit=limit))

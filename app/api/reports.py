"""Breakdowns, seizure-fraction histograms and snapshot diffs of a dataset."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from app import catalog, models
from app.api.answer_cache import Answer
from app.api.answer_path import answer, send_answer
from app.api.bodies import BodyGuardRoute
from app.api.deps import ReadAccess, only_params
from app.api.heavy import ask_diff_question
from app.api.stats import ERRORS, NOT_MODIFIED
from app.api.streams import stream_breakdown_csv
from app.queries.diff import DEFAULT_RECORDING_LIMIT, diff_snapshots
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


async def answer_breakdown(
    request: Request, dataset: str, query: BreakdownQuery, output: Format
) -> Response:
    if output == "csv":
        return await stream_breakdown_csv(request, dataset, query)
    return await answer(request, "breakdown", dataset, query)


BREAKDOWN_RESPONSES = (
    ERRORS
    | NOT_MODIFIED
    | {200: {"content": {"application/json": {}, "text/csv": {}}, "model": BreakdownResponse}}
)


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
    return await answer(request, "histogram", dataset, query)


@router.get(
    "/{dataset}/histogram",
    summary="How many windows of a subset have each seizure fraction (n_pos / n_samples)",
    description="Needs per-window sample counts (a scanned snapshot): 422 otherwise.",
    responses=ERRORS | NOT_MODIFIED,
    response_model=HistogramResponse,
)
async def get_histogram(
    dataset: str, request: Request, query: Annotated[HistogramQuery, Query()]
) -> Response:
    return await answer_histogram(request, dataset, query)


@router.post(
    "/{dataset}/histogram",
    summary="The same as GET, with the filter in a JSON body",
    responses=ERRORS | NOT_MODIFIED,
    response_model=HistogramResponse,
    dependencies=[Depends(only_params())],
)
async def post_histogram(dataset: str, request: Request, query: HistogramQuery) -> Response:
    return await answer_histogram(request, dataset, query)


@router.get(
    "/{dataset}/snapshots/{a}/diff/{b}",
    summary="Windows added, removed and changed in category from snapshot a to snapshot b",
    responses=ERRORS | NOT_MODIFIED,
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
    question = await ask_diff_question(request, dataset, a, b, limit)
    return await send_answer(request, dataset, question, partial(diff_of, b, limit))


def diff_of(
    b: int, limit: int, session: Session, dataset: models.Dataset, a: models.Snapshot
) -> Answer:
    new = catalog.get_snapshot(session, dataset, b)
    diff = diff_snapshots(session, dataset, a, new, recording_limit=limit)
    return Answer(diff.model_dump_json().encode())

"""Breakdowns, seizure-fraction histograms and snapshot diffs of a dataset."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from app import catalog, models
from app.api.answer_cache import Answer
from app.api.answer_path import answer, send_answer
from app.api.heavy import ask_diff_question
from app.api.question_routes import QuestionRoutes, answered_as_json
from app.api.routers import Responses, questions_router
from app.api.stats import LONG_LISTS
from app.api.streams import stream_breakdown_csv
from app.queries.diff import DEFAULT_RECORDING_LIMIT, diff_snapshots
from seizure_stats.schemas.questions import SnapshotId
from seizure_stats.schemas.reports import (
    MAX_BREAKDOWN_LIMIT,
    BreakdownParams,
    BreakdownQuery,
    BreakdownResponse,
    HistogramQuery,
    HistogramResponse,
    SnapshotDiff,
)
from seizure_stats.schemas.reports import BreakdownFormat as Format

router = questions_router("breakdowns")


async def answer_breakdown(
    request: Request, dataset: str, query: BreakdownQuery, output: Format
) -> Response:
    if output == "csv":
        return await stream_breakdown_csv(request, dataset, query)
    return await answer(request, "breakdown", dataset, query)


BREAKDOWN_CONTENT: Responses = {
    200: {"content": {"application/json": {}, "text/csv": {}}, "model": BreakdownResponse}
}


QuestionRoutes(
    "/{dataset}/breakdown",
    "breakdown",
    BreakdownQuery,
    answer_breakdown,
    params=BreakdownParams,
    summary="A subset's exact counts per patient, session, recording or category",
    description="The same subset as `stats`; the groups' counts add up to its totals. "
    "Sortable and paged; `format=csv` streams every group (or the page asked for) as CSV.",
    post_summary=LONG_LISTS,
    responses=BREAKDOWN_CONTENT,
    response_model=BreakdownResponse,
).add_to(router)

QuestionRoutes(
    "/{dataset}/histogram",
    "histogram",
    HistogramQuery,
    answered_as_json("histogram"),
    summary="How many windows of a subset have each seizure fraction (n_pos / n_samples)",
    description="Needs per-window sample counts (a scanned snapshot): 422 otherwise.",
    response_model=HistogramResponse,
).add_to(router)


@router.get(
    "/{dataset}/snapshots/{a}/diff/{b}",
    summary="Windows added, removed and changed in category from snapshot a to snapshot b",
    response_model=SnapshotDiff,
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

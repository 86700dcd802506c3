"""Statistics and balanced selection of a dataset's subsets."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from app.api.answer_path import answer
from app.api.bodies import BodyGuardRoute
from app.api.deps import ReadAccess, only_params
from app.api.streams import stream_index
from app.schemas.questions import (
    BalancedIndexParams,
    BalancedQuery,
    BalancedResponse,
    ErrorResponse,
    IndexFormat,
    StatsQuery,
    StatsResponse,
    question_in,
)

router = APIRouter(
    prefix="/api/v1/datasets",
    tags=["statistics"],
    dependencies=[ReadAccess],
    route_class=BodyGuardRoute,
)
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 403, 404, 422, 429, 503)
}
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the answer for this ETag has not changed."}
}
INDEX_CONTENT: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/x-ndjson": {}, "application/json": {}}}
}


@router.get(
    "/{dataset}/stats",
    summary="Exact counts, seizure ratio and pos_weight of a subset",
    response_model=StatsResponse,
    responses=ERRORS | NOT_MODIFIED,
)
async def get_stats(
    dataset: str, request: Request, query: Annotated[StatsQuery, Query()]
) -> Response:
    return await answer(request, "stats", dataset, query)


@router.post(
    "/{dataset}/stats",
    summary="The same as GET, with the filter in a JSON body (for long recording lists)",
    response_model=StatsResponse,
    responses=ERRORS | NOT_MODIFIED,
    dependencies=[Depends(only_params())],
)
async def post_stats(dataset: str, request: Request, query: StatsQuery) -> Response:
    return await answer(request, "stats", dataset, query)


@router.get(
    "/{dataset}/balanced",
    summary="What the balanced training dataset keeps of a subset: counts and pos_weight",
    response_model=BalancedResponse,
    responses=ERRORS | NOT_MODIFIED,
)
async def get_balanced(
    dataset: str, request: Request, query: Annotated[BalancedQuery, Query()]
) -> Response:
    return await answer(request, "balanced", dataset, query)


@router.post(
    "/{dataset}/balanced",
    summary="The same as GET, with the filter in a JSON body",
    response_model=BalancedResponse,
    responses=ERRORS | NOT_MODIFIED,
    dependencies=[Depends(only_params())],
)
async def post_balanced(dataset: str, request: Request, query: BalancedQuery) -> Response:
    return await answer(request, "balanced", dataset, query)


@router.get(
    "/{dataset}/balanced/index",
    summary="The kept (cache_file, window_idx) entries in dataset order, streamed",
    response_description="JSON lines, one entry per line (or a JSON array with format=json).",
    responses=ERRORS | NOT_MODIFIED | INDEX_CONTENT,
    response_class=StreamingResponse,
)
async def get_balanced_index(
    dataset: str, request: Request, params: Annotated[BalancedIndexParams, Query()]
) -> Response:
    query = question_in(params, BalancedQuery)
    return await stream_index(request, dataset, query, params.format)


@router.post(
    "/{dataset}/balanced/index",
    summary="The same as GET, with the filter in a JSON body",
    responses=ERRORS | NOT_MODIFIED | INDEX_CONTENT,
    response_class=StreamingResponse,
    dependencies=[Depends(only_params("format"))],
)
async def post_balanced_index(
    dataset: str,
    request: Request,
    query: BalancedQuery,
    format: IndexFormat = "jsonl",
) -> Response:
    return await stream_index(request, dataset, query, format)

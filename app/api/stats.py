"""Statistics and balanced selection of a dataset's subsets."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from app.api.answer_path import answer
from app.api.bodies import BodyGuardRoute
from app.api.deps import ReadAccess, only_params
from app.api.streams import stream_index
from app.schemas.questions import (
    FILTER_FIELDS,
    BalancedQuery,
    BalancedResponse,
    ErrorResponse,
    SnapshotId,
    StatsQuery,
    StatsResponse,
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
LIST_HELP = "Repeat the parameter or separate values with commas."

Values = Annotated[list[str], Query(description=LIST_HELP)]
Weighting = Literal["sqrt", "linear", "effective", "none"]


async def stats_query(
    patient: Values = [],  # noqa: B006 - FastAPI copies defaults per request
    exclude_patient: Values = [],  # noqa: B006
    session: Values = [],  # noqa: B006
    recording: Values = [],  # noqa: B006
    category: Annotated[
        list[str], Query(description="partial_seizure, full_seizure, no_seizure or seizure.")
    ] = [],  # noqa: B006
    snapshot: Annotated[
        SnapshotId | None, Query(description="Snapshot id; default current.")
    ] = None,
    weighting: Weighting = "sqrt",
    beta: Annotated[float, Query(ge=0, lt=1, description="For effective weighting.")] = 0.9999,
    basis: Literal["window", "sample"] = "window",
) -> StatsQuery:
    return StatsQuery.model_validate(
        {
            "patient": patient,
            "exclude_patient": exclude_patient,
            "session": session,
            "recording": recording,
            "category": category,
            "snapshot": snapshot,
            "weighting": weighting,
            "beta": beta,
            "basis": basis,
        }
    )


async def balanced_query(
    patient: Values = [],  # noqa: B006
    exclude_patient: Values = [],  # noqa: B006
    session: Values = [],  # noqa: B006
    recording: Values = [],  # noqa: B006
    category: Annotated[
        list[str], Query(description="partial_seizure, full_seizure, no_seizure or seizure.")
    ] = [],  # noqa: B006
    snapshot: SnapshotId | None = None,
    full_ratio: Annotated[float, Query(ge=0, le=1_000_000)] = 0.3,
    background_ratio: Annotated[float, Query(ge=0, le=1_000_000)] = 2.5,
    seed: Annotated[int, Query(ge=0, le=2**63 - 1)] = 42,
    weighting: Weighting = "sqrt",
    beta: Annotated[float, Query(ge=0, lt=1)] = 0.9999,
) -> BalancedQuery:
    return BalancedQuery.model_validate(
        {
            "patient": patient,
            "exclude_patient": exclude_patient,
            "session": session,
            "recording": recording,
            "category": category,
            "snapshot": snapshot,
            "full_ratio": full_ratio,
            "background_ratio": background_ratio,
            "seed": seed,
            "weighting": weighting,
            "beta": beta,
        }
    )


STATS_PARAMS = (*FILTER_FIELDS, "snapshot", "weighting", "beta", "basis")
BALANCED_PARAMS = (
    *FILTER_FIELDS,
    "snapshot",
    "full_ratio",
    "background_ratio",
    "seed",
    "weighting",
    "beta",
)
INDEX_PARAMS = (*BALANCED_PARAMS, "format")


@router.get(
    "/{dataset}/stats",
    summary="Exact counts, seizure ratio and pos_weight of a subset",
    response_model=StatsResponse,
    responses=ERRORS | NOT_MODIFIED,
    dependencies=[Depends(only_params(*STATS_PARAMS))],
)
async def get_stats(
    dataset: str, request: Request, query: Annotated[StatsQuery, Depends(stats_query)]
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
    dependencies=[Depends(only_params(*BALANCED_PARAMS))],
)
async def get_balanced(
    dataset: str, request: Request, query: Annotated[BalancedQuery, Depends(balanced_query)]
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
    dependencies=[Depends(only_params(*INDEX_PARAMS))],
)
async def get_balanced_index(
    dataset: str,
    request: Request,
    query: Annotated[BalancedQuery, Depends(balanced_query)],
    format: Literal["jsonl", "json"] = "jsonl",
) -> Response:
    return await stream_index(request, dataset, query, format)


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
    format: Literal["jsonl", "json"] = "jsonl",
) -> Response:
    return await stream_index(request, dataset, query, format)

"""What every router under /api/v1/datasets shares: its prefix, read access, the refusal of
unknown query parameters, guarded bodies, remembered GET requests, and the error responses its
OpenAPI lists."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from app.api.deps import ReadAccess, refuse_unknown_parameters
from app.api.request_memo import MemoizedRoute, QuestionRoute
from seizure_stats.schemas.questions import ErrorResponse

Responses = dict[int | str, dict[str, Any]]


def datasets_router(
    tag: str, responses: Responses, route_class: type[MemoizedRoute] = MemoizedRoute
) -> APIRouter:
    """A router of /api/v1/datasets routes: each needs read access (writes ask for more), refuses
    query parameters it does not declare, reads each body through the guard that bounds its
    size and pace, answers a GET request it has answered before without parsing it again
    (app.api.request_memo), and lists `responses` in its OpenAPI (a route adds its own)."""
    return APIRouter(
        prefix="/api/v1/datasets",
        tags=[tag],
        responses=responses,
        # In this order: a request without a needed token gets 401 whatever its parameters.
        dependencies=[ReadAccess, Depends(refuse_unknown_parameters)],
        route_class=route_class,
    )


def error_responses(*codes: int) -> Responses:
    """The OpenAPI entries of these error statuses, each answered as an ErrorResponse."""
    return {code: {"model": ErrorResponse} for code in codes}


# What every read question lists: its errors, and the 304 of a matching ETag.
QUESTION_RESPONSES: Responses = error_responses(400, 401, 403, 404, 422, 429, 503) | {
    304: {"description": "Not modified: the answer for this ETag has not changed."}
}


def questions_router(tag: str) -> APIRouter:
    """A router of questions about a dataset: its routes list QUESTION_RESPONSES, and their
    requests wait for the dataset's state before they are parsed (app.api.request_memo)."""
    return datasets_router(tag, QUESTION_RESPONSES, route_class=QuestionRoute)

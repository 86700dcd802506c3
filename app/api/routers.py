"""What every router under /api/v1/datasets shares: its prefix, read access, guarded bodies, and
the error responses its OpenAPI lists."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.api.bodies import BodyGuardRoute
from app.api.deps import ReadAccess
from seizure_stats.schemas.questions import ErrorResponse

Responses = dict[int | str, dict[str, Any]]


def datasets_router(tag: str) -> APIRouter:
    """A router of /api/v1/datasets routes: each needs read access (writes ask for more), and
    each body is read through the guard that bounds its size and pace."""
    return APIRouter(
        prefix="/api/v1/datasets",
        tags=[tag],
        dependencies=[ReadAccess],
        route_class=BodyGuardRoute,
    )


def error_responses(*codes: int) -> Responses:
    """The OpenAPI entries of these error statuses, each answered as an ErrorResponse."""
    return {code: {"model": ErrorResponse} for code in codes}


# What every read question lists: its errors, and the 304 of a matching ETag.
QUESTION_ERRORS = error_responses(400, 401, 403, 404, 422, 429, 503)
NOT_MODIFIED: Responses = {
    304: {"description": "Not modified: the answer for this ETag has not changed."}
}

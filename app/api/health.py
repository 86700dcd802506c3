"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from app.migrate import current_revision

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The database is reachable and its schema is at the latest migration",
    responses={503: {"description": "Not ready; the body says why."}},
)
def readyz(request: Request) -> JSONResponse:
    head = request.app.state.schema_head
    try:
        current = current_revision(request.app.state.engine)
    except SQLAlchemyError as exc:
        reason = " ".join(str(exc).split())[:200]
        return JSONResponse(
            {"status": "unavailable", "detail": f"database unreachable: {reason}"}, 503
        )
    if current != head:
        return JSONResponse(
            {
                "status": "unavailable",
                "detail": f"schema at {current or 'nothing'}, expected {head}: run "
                "`seizure-stats db upgrade`",
            },
            503,
        )
    return JSONResponse({"status": "ok", "schema": current})

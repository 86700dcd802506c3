"""Liveness and readiness.

Both answer whatever else runs: /healthz is async and touches nothing, so it needs neither a
worker thread nor a connection; /readyz asks the database on an engine and a thread limiter of
its own, so it never queues behind a burst of other requests.
"""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from app.storage.migrations import current_revision

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The database is reachable and its schema is at the latest migration",
    responses={503: {"description": "Not ready; the body says why."}},
)
async def readyz(request: Request) -> JSONResponse:
    head = request.app.state.schema_head
    engine = request.app.state.readiness_engine
    try:
        current = await anyio.to_thread.run_sync(
            current_revision, engine, limiter=request.app.state.readiness_limiter
        )
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

"""Prometheus metrics of this process."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from app.api.deps import MetricsDep
from app.observability.metrics import CONTENT_TYPE

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    summary="Prometheus metrics: requests, imports, snapshots per dataset",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}}},
)
async def metrics(metrics: MetricsDep) -> Response:
    # Collecting queries the database for the per-dataset gauges: keep it off the event loop.
    body = await run_in_threadpool(metrics.exposition)
    return Response(body, media_type=CONTENT_TYPE)

"""The application factory: engine, routers and error handling. Nothing is built at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

import app
from app.api import datasets, folds, health, metrics, reports, scans, stats
from app.api.admission import AdmissionGate, SnapshotSizes
from app.api.answer_cache import AnswerCache, DatasetStates
from app.api.deps import needs_write_token
from app.api.middleware.head_requests import HeadAsGetMiddleware
from app.api.middleware.request_body import RequestBodyMiddleware
from app.api.middleware.request_context import RequestContextMiddleware
from app.api.middleware.security_headers import SecurityHeadersMiddleware
from app.api.request_memo import RequestMemo
from app.api.single_flight import InFlight
from app.config import Settings
from app.dashboard.site import install_dashboard
from app.db import is_memory_database, make_engine, make_session_factory
from app.errors import AppError, DatabaseUnavailableError, error_body, error_fields
from app.observability.log_queue import dropped_log_records, stop_log_queue
from app.observability.logs import configure_logging
from app.observability.metrics import Metrics
from app.storage.commit_signal import change_signal
from app.storage.migrations import head_revision, upgrade

logger = logging.getLogger("seizure_stats")

DESCRIPTION = """Exact counts, seizure ratio and pos_weight of any subset of an EEG
seizure-detection training set, from manifests kept in a database. Reads never touch the
storage volume; every answer names the snapshot and content hash it came from."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings)
    if settings.uses_embedded_database:
        # The embedded default should just work: bring its schema to the latest migration.
        upgrade(settings.resolved_database_url)
    url, busy_ms = settings.resolved_database_url, settings.sqlite_busy_timeout_ms
    engine = make_engine(url, sqlite_busy_timeout_ms=busy_ms)
    # Heavy reads and readiness get connections of their own, so that neither waits for the
    # other nor for the shared pool (an in-memory database exists once, in its one engine).
    separate = not is_memory_database(url)
    heavy_engine = (
        make_engine(url, sqlite_busy_timeout_ms=busy_ms, pool_size=settings.heavy_read_slots)
        if separate
        else engine
    )
    readiness_engine = (
        make_engine(url, sqlite_busy_timeout_ms=busy_ms, pool_size=1) if separate else engine
    )

    changes = change_signal(engine)

    @asynccontextmanager
    async def lifespan(started: FastAPI) -> AsyncIterator[None]:
        prepare_routes(started)
        yield
        changes.close()
        for each in {engine, heavy_engine, readiness_engine}:
            each.dispose()
        # Write out the log queue now; later lines go straight to stderr. uvicorn ends a process
        # stopped by a signal by raising it again: no `finally` or atexit runs after this.
        stop_log_queue()

    application = FastAPI(
        title="Seizure Stats Service",
        version=app.__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # Served by the dashboard from packaged assets instead of a CDN.
        docs_url=None,
        redoc_url=None,
    )
    application.state.settings = settings
    application.state.engine = engine
    application.state.session_factory = make_session_factory(engine)
    application.state.heavy_session_factory = make_session_factory(heavy_engine)
    application.state.readiness_engine = readiness_engine
    application.state.readiness_limiter = anyio.CapacityLimiter(1)
    application.state.admission = AdmissionGate(
        settings.heavy_read_slots,
        settings.heavy_read_queue,
        settings.heavy_read_wait_seconds,
        settings.heavy_read_min_windows,
    )
    application.state.snapshot_sizes = SnapshotSizes()
    application.state.schema_head = head_revision()
    application.state.answer_cache = AnswerCache(
        settings.answer_cache_entries, settings.answer_cache_bytes
    )
    application.state.in_flight = InFlight()
    application.state.changes = changes
    application.state.dataset_states = DatasetStates(application.state.session_factory, changes)
    application.state.request_memo = RequestMemo(settings.request_memo_entries)
    application.state.metrics = Metrics(
        application.state.session_factory,
        dropped_log_records,
        application.state.admission,
        lambda: application.state.in_flight.waiting,
    )
    # Each middleware added wraps the ones before it.
    application.add_middleware(
        RequestBodyMiddleware,
        idle_seconds=settings.body_idle_timeout_seconds,
        total_seconds=settings.body_timeout_seconds,
    )
    application.add_middleware(HeadAsGetMiddleware)
    application.add_middleware(SecurityHeadersMiddleware)
    # Outermost: it logs and counts what the others answered.
    application.add_middleware(RequestContextMiddleware, metrics=application.state.metrics)

    routers = [health.router, *([metrics.router] if settings.metrics_enabled else [])]
    routers += [datasets.router, stats.router, scans.router, reports.router, folds.router]
    for router in routers:
        application.include_router(router)
    install_dashboard(application)
    install_error_handlers(application)
    if not settings.require_read_token:
        document_open_reads(application, routers)
    return application


def prepare_routes(application: FastAPI) -> None:
    """Have FastAPI build its per-route state (response fields, type adapters) now.

    It builds it on the first request that passes through each included router, on the event
    loop: under a first burst of heavy reads that took 1.6 s, and /healthz waited for it.
    Matching a path that no route has walks every router once, which builds it all.
    """
    scope = {"type": "http", "method": "GET", "path": "/.prepare", "root_path": "", "headers": []}
    for route in application.router.routes:
        route.matches(scope)


def document_open_reads(application: FastAPI, routers: list[APIRouter]) -> None:
    """Say in the OpenAPI document that reads need no token when reads are open.

    Every route declares the bearer scheme (a token is checked when one is needed). An open read
    gets an empty list of requirements instead: with the scheme as an alternative, Swagger UI
    drew a padlock on every read, as if each one were closed.
    """
    generate = application.openapi

    def openapi() -> dict[str, Any]:
        if application.openapi_schema is not None:
            return application.openapi_schema
        schema = generate()
        routes = [route for router in routers for route in router.routes]
        for route in routes:
            if not isinstance(route, APIRoute) or needs_write_token(route.dependant):
                continue
            for method in route.methods or ():
                operation = schema["paths"].get(route.path_format, {}).get(method.lower(), {})
                if "security" in operation:
                    operation["security"] = []
        return schema

    application.openapi = openapi  # type: ignore[method-assign]


def install_error_handlers(application: FastAPI) -> None:
    @application.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        return error_response(exc)

    @application.exception_handler(RequestValidationError)
    async def _request_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_response(exc.errors())

    @application.exception_handler(ValidationError)
    async def _model_invalid(_: Request, exc: ValidationError) -> JSONResponse:
        return _validation_response(exc.errors())

    @application.exception_handler(DBAPIError)
    async def _database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        # A lost connection or an unreachable (or locked) database is an outage to ride out,
        # not a bug: 503 with Retry-After, which clients retry. Anything else is a real 500.
        if not (isinstance(exc, OperationalError) or exc.connection_invalidated):
            raise exc
        reason = " ".join(str(exc.orig or exc).split())[:200]
        logger.warning(
            "database unavailable during %s %s: %s", request.method, request.url.path, reason
        )
        return error_response(
            DatabaseUnavailableError(f"the database is unavailable, try again shortly: {reason}")
        )

    @application.exception_handler(PoolTimeoutError)
    async def _saturated(request: Request, exc: PoolTimeoutError) -> JSONResponse:
        logger.warning("no database connection free for %s %s", request.method, request.url.path)
        return error_response(
            DatabaseUnavailableError("the service is saturated, try again shortly")
        )

    @application.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = "not_found" if exc.status_code == 404 else "http_error"
        return JSONResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )


def error_response(error: AppError) -> JSONResponse:
    """The one JSON answer of every AppError: its status, headers and body."""
    return JSONResponse(error_fields(error), status_code=error.status_code, headers=error.headers)


def _validation_response(errors: Any) -> JSONResponse:
    """422 whose detail names each offending parameter: `weighting: Input should be ...`.

    Named alike wherever it was sent: in the query string or in a JSON body.
    """
    problems = []
    for error in errors:
        loc = error.get("loc", ())
        where = ".".join(str(part) for part in loc if part not in ("body", "query")) or "body"
        problem = f"{where}: {error.get('msg', 'invalid')}"
        if error.get("type") not in ("missing", "extra_forbidden") and "input" in error:
            problem += f" (got {str(error['input'])[:80]!r})"
        problems.append(problem)
    detail = "; ".join(problems[:20]) or "invalid request"
    return JSONResponse(error_body("invalid_request", detail), status_code=422)

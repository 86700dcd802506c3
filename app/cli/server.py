"""`serve` and `db upgrade`: run the HTTP API; bring the database schema up to date."""

from __future__ import annotations

from typing import cast

import click

from app.cli import main, redacted_url
from app.config import Settings

KEEP_ALIVE_SECONDS = 75


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="uvicorn worker processes.")
def serve(host: str, port: int, workers: int) -> None:
    """Run the HTTP API (uvicorn)."""
    import logging

    from app.observability.log_queue import stop_log_queue
    from app.observability.logs import configure_logging
    from app.storage.migrations import upgrade

    settings = Settings()
    configure_logging(settings, force=True)
    # Logged, not echoed: in a container every stderr line stays one JSON object.
    log = logging.getLogger("seizure_stats")
    if settings.uses_embedded_database:
        upgrade(settings.resolved_database_url)
        log.info("database: %s", settings.resolved_database_url)
    log.info("serving on http://%s:%d  (API docs: http://%s:%d/docs)", host, port, host, port)
    try:
        run_uvicorn(host, port, workers, settings)
    finally:
        # The log lines still queued are written before the process ends.
        stop_log_queue()


def run_uvicorn(host: str, port: int, workers: int, settings: Settings) -> None:
    import asyncio
    from functools import partial

    import uvicorn

    from app.api.http_protocol import HeadDeadlineProtocol

    # A partial of a module-level class, so worker processes can unpickle it.
    protocol = partial(HeadDeadlineProtocol, head_timeout_seconds=settings.header_timeout_seconds)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        http=cast("type[asyncio.Protocol]", protocol),
        timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
        # Idle keep-alive connections are the client's to close (httpx does after 5 s). With
        # uvicorn's own 5 s, a connection the server closed as a busy client reused it was a
        # transport error in the load test; proxies keep them 60-75 s for the same reason.
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        # Logging is configured above (JSON or text, with request ids); the access log is
        # written by the app itself, without query strings or headers.
        log_config=None,
        access_log=False,
    )


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply Alembic migrations to DATABASE_URL."""
    from app.storage.migrations import upgrade

    settings = Settings()
    upgrade(settings.resolved_database_url, revision)
    click.echo(f"database at {revision}: {redacted_url(settings.resolved_database_url)}")

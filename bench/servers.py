"""Processes the benchmark talks to: our service, Datasette, each on a free loopback port."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.servers import LiveServer, ServerProcess, free_port, serving


@contextmanager
def service(
    database_url: str, workdir: Path, workers: int = 1, env: dict[str, str] | None = None
) -> Iterator[str]:
    server = LiveServer(
        database_url,
        workdir,
        {"SEIZURE_STATS_LOG_LEVEL": "WARNING"} | (env or {}),
        serve_options=("--workers", str(workers)),
    )
    with serving(server) as ready:
        yield ready.url


@contextmanager
def datasette(sqlite_path: Path, workdir: Path) -> Iterator[str]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "datasette",
        "serve",
        str(sqlite_path),
        "--port",
        str(port),
        "--setting",
        "sql_time_limit_ms",
        "120000",
        "--setting",
        "facet_time_limit_ms",
        "120000",
        "--immutable",
        str(sqlite_path),
    ]
    log = workdir / f"datasette-{port}.log"
    with serving(ServerProcess(command, port, log, ready_path="/-/versions.json")) as ready:
        yield ready.url

"""Processes the benchmark talks to: our service, Datasette, each on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def process_serving(
    command: list[str], ready_path: str, port: int, env: dict[str, str], log: Path
) -> Iterator[str]:
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=os.environ | env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"{command[:3]} exited; see {log}")
                try:
                    if httpx.get(url + ready_path, timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{command[:3]} not ready after 30 s")
                time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@contextmanager
def service(database_url: str, workdir: Path, workers: int = 1) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "app", "serve", "--port", str(port), "--workers", str(workers)]
    env = {"DATABASE_URL": database_url, "SEIZURE_STATS_LOG_LEVEL": "WARNING"}
    with process_serving(command, "/readyz", port, env, workdir / f"service-{port}.log") as url:
        yield url


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
    with process_serving(
        command, "/-/versions.json", port, {}, workdir / f"datasette-{port}.log"
    ) as url:
        yield url

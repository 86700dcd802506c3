"""Crash safety: kill -9 the server, or the command line, in the middle of a large import.

Afterwards the previous snapshot is still current, the database passes its integrity check,
nothing of the interrupted import is left, and running the import again succeeds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from app.db import make_engine
from app.storage.migrations import upgrade
from bench.generate import write_manifest
from tests.conftest import make_token
from tests.support import manifests
from tests.support.integrity import integrity_problems, snapshot_state
from tests.support.servers import LiveServer, live_server
from tests.support.uploads import load, post_manifest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LARGE_WINDOWS = 1_000_000


@pytest.fixture(scope="session")
def large_manifest(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """A million-window manifest (about 70 MB): its import takes a few seconds."""
    path = tmp_path_factory.mktemp("large") / "manifest.json"
    counts = write_manifest(path, LARGE_WINDOWS, seed=5, cache_dir=None)
    return path, counts


@pytest.fixture
def crash_url(database_url: str, tmp_path: Path) -> str:
    """The test database; on SQLite a file of its own, so its write-ahead log starts empty."""
    if not database_url.startswith("sqlite"):
        return database_url
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    upgrade(url)
    return url


@pytest.fixture
def crash_token(crash_url: str) -> str:
    """A write token in the test database."""
    return make_token(crash_url, "crash-writer", "write")


def sqlite_file(database_url: str) -> Path:
    return Path(database_url.removeprefix("sqlite:///"))


def writing_started(database_url: str) -> Callable[[], bool]:
    """A probe that turns true once an import is writing its windows (not merely parsing)."""
    if database_url.startswith("sqlite"):
        wal = Path(f"{sqlite_file(database_url)}-wal")
        # The small snapshot loaded first takes well under a megabyte of log.
        return lambda: wal.exists() and wal.stat().st_size > 4 * 1024**2
    engine = make_engine(database_url)

    def copying() -> bool:
        with engine.connect() as connection:
            active = connection.execute(
                text(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND state = 'active' AND query LIKE 'COPY windows%'"
                )
            ).scalar()
        return bool(active)

    return copying


def wait_until(probe: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout} s")
        time.sleep(0.02)


def load_previous(url: str, token: str) -> dict[str, object]:
    load(url, "ds", manifests.SMALL, token=token)
    return answers(url)


def answers(url: str) -> dict[str, object]:
    return {
        "dataset": httpx.get(f"{url}/api/v1/datasets/ds").json(),
        "snapshots": httpx.get(f"{url}/api/v1/datasets/ds/snapshots").json(),
        "stats": httpx.get(f"{url}/api/v1/datasets/ds/stats").json(),
        "balanced": httpx.get(f"{url}/api/v1/datasets/ds/balanced").json(),
    }


def assert_reimport_succeeds(response: httpx.Response, counts: dict[str, int]) -> None:
    assert response.status_code == 201, response.text
    assert response.json()["counts"]["total"] == LARGE_WINDOWS
    assert response.json()["counts"]["partial_seizure"] == counts["partial_seizure"]


def test_kill_the_server_during_an_import(
    crash_url: str, tmp_path: Path, large_manifest: tuple[Path, dict[str, int]], crash_token: str
) -> None:
    database_url, token = crash_url, crash_token
    path, counts = large_manifest
    server = LiveServer(database_url, tmp_path)
    try:
        server.start()
        before = load_previous(server.url, token)
        state_before = snapshot_state(database_url, "ds")
        outcome: list[object] = []

        def send() -> None:
            try:
                outcome.append(post_manifest(server.url, "ds", path.read_bytes(), token=token))
            except httpx.HTTPError as exc:
                outcome.append(exc)

        uploader = threading.Thread(target=send)
        uploader.start()
        wait_until(writing_started(database_url), 60, "the import writing its windows")
        server.kill()
        uploader.join(30)
        assert len(outcome) == 1, "the upload is still running"
        assert isinstance(outcome[0], httpx.HTTPError), outcome

        server.start()
        assert answers(server.url) == before
        assert snapshot_state(database_url, "ds") == state_before
        assert integrity_problems(database_url) == []
        again = post_manifest(server.url, "ds", path.read_bytes(), token=token)
        assert_reimport_succeeds(again, counts)
        assert integrity_problems(database_url) == []
        stats = httpx.get(f"{server.url}/api/v1/datasets/ds/stats").json()
        assert stats["counts"]["total"] == LARGE_WINDOWS
    finally:
        server.stop()


def test_kill_the_command_line_during_an_import(
    crash_url: str, tmp_path: Path, large_manifest: tuple[Path, dict[str, int]], crash_token: str
) -> None:
    database_url, token = crash_url, crash_token
    path, counts = large_manifest
    env = os.environ | {"DATABASE_URL": database_url}
    command = [sys.executable, "-m", "app", "import", str(path), "--dataset", "ds", "--json"]
    with live_server(database_url, tmp_path) as server:
        before = load_previous(server.url, token)
        state_before = snapshot_state(database_url, "ds")
        # Its output to a file: a pipe nobody reads would stall the import once it filled.
        with (tmp_path / "import.log").open("wb") as log:
            process = subprocess.Popen(
                command, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            wait_until(writing_started(database_url), 60, "the import writing its windows")
        finally:
            process.kill()
            process.wait()
        assert process.returncode == -9
        # The server kept running throughout and never saw the interrupted import.
        assert answers(server.url) == before
        assert snapshot_state(database_url, "ds") == state_before
        assert integrity_problems(database_url) == []

        again = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, timeout=300)
        assert again.returncode == 0, again.stderr.decode()[-2000:]
        imported = json.loads(again.stdout)
        assert imported["created"] is True
        assert imported["counts"]["total"] == LARGE_WINDOWS
        assert imported["counts"]["no_seizure"] == counts["no_seizure"]
        assert integrity_problems(database_url) == []
        current = httpx.get(f"{server.url}/api/v1/datasets/ds").json()["current_snapshot"]
        assert current["id"] == imported["id"]

"""Shared fixtures: every test that touches a database runs on SQLite and on the local Postgres.

Each run builds its databases by running the migrations; Postgres gets a database of its own per
run (dropped afterwards), so concurrent runs never share state. With CI=true a missing Postgres
is an error, not a skip.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

import app.models  # noqa: F401  (registers every table on Base.metadata)
from app.auth import create_token
from app.config import Settings
from app.db import Base, make_engine, make_session_factory, write_session
from app.main import create_app
from app.storage.migrations import upgrade
from tests.support.postgres import throwaway_database
from tests.support.servers import running_server

# The browser tests' fixtures (chromium, a live server, a watched page).
pytest_plugins = ("tests.support.browser",)


@pytest.fixture(autouse=True)
def client_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The client keeps every answer in a cache directory: each test gets one of its own (and so
    do the processes it starts), never the user's, and none starts offline."""
    directory = tmp_path_factory.mktemp("client-cache")
    monkeypatch.setenv("SEIZURE_STATS_CACHE", str(directory))
    monkeypatch.delenv("SEIZURE_STATS_OFFLINE", raising=False)
    return directory


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, migrated Postgres database for this test run."""
    with throwaway_database("seizure_stats_test") as url:
        upgrade(url)
        yield url


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'test.db'}"
    upgrade(url)
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """The URL of a migrated database, emptied before the test: once per backend."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            for table in reversed(Base.metadata.sorted_tables):
                connection.execute(table.delete())
    finally:
        engine.dispose()
    return url


@pytest.fixture
def live_server(database_url: str, tmp_path: Path) -> Iterator[str]:
    """`seizure-stats serve` on a free port, on the test's (emptied, migrated) database; its log
    goes to a file in tmp_path."""
    with running_server(database_url, tmp_path) as url:
        yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, data_dir=tmp_path)


def make_token(database_url: str, name: str, scope: str) -> str:
    """Create an API token in the database and return it (what `seizure-stats token create` does)."""
    engine = make_engine(database_url)
    try:
        with write_session(make_session_factory(engine)) as session:
            return create_token(session, name, scope).token
    finally:
        engine.dispose()


@pytest.fixture
def write_token(settings: Settings) -> str:
    return make_token(settings.resolved_database_url, "test-writer", "write")


@pytest.fixture
def client(settings: Settings, write_token: str) -> Iterator[TestClient]:
    """A client of the app that sends a write token, as a trusted job would."""
    headers = {"Authorization": f"Bearer {write_token}"}
    with TestClient(create_app(settings), headers=headers) as test_client:
        yield test_client

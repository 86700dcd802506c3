"""Databases of their own on a Postgres server: created for a run or a test, dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from tests.support.ci import cannot_run

POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def unreachable_reason(admin_url: str = POSTGRES_ADMIN_URL) -> str | None:
    """Why the Postgres server at `admin_url` cannot be reached, or None if it can."""
    try:
        with psycopg.connect(admin_url, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return str(exc).strip()


def require_postgres(admin_url: str = POSTGRES_ADMIN_URL) -> None:
    problem = unreachable_reason(admin_url)
    if problem:
        cannot_run(f"Postgres unreachable at {admin_url}: {problem}")


def database_url(admin_url: str, name: str) -> str:
    """The SQLAlchemy URL of database `name` on the server of `admin_url`."""
    base = admin_url.rsplit("/", 1)[0]
    return f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)


def create_database(admin_url: str, name: str, *, replace: bool = False) -> str:
    """Create the empty database `name` (first dropping one so named, if `replace`); its URL."""
    with psycopg.connect(admin_url, autocommit=True) as admin:
        if replace:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return database_url(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    """Drop database `name`, disconnecting whoever is still connected to it."""
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def throwaway_database(prefix: str, admin_url: str = POSTGRES_ADMIN_URL) -> Iterator[str]:
    """A new, empty database (no schema) under a unique name; dropped afterwards."""
    require_postgres(admin_url)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    url = create_database(admin_url, name)
    try:
        yield url
    finally:
        drop_database(admin_url, name)

"""One migration history builds exactly the models' schema on SQLite and on Postgres."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine

from app import models  # noqa: F401  (registers the tables)
from app.db import Base
from app.storage.migrations import current_revision, head_revision, migrations_dir, upgrade


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_database_is_at_head_and_upgrading_again_is_a_no_op(
    engine: Engine, database_url: str
) -> None:
    assert current_revision(engine) == head_revision()
    upgrade(database_url)
    assert current_revision(engine) == head_revision()


def test_migrations_are_found() -> None:
    assert (migrations_dir() / "env.py").is_file()
    assert head_revision() is not None

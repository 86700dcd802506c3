"""One migration history builds exactly the models' schema on SQLite and on Postgres."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from app import models  # noqa: F401  (registers the tables)
from app.db import Base
from app.models import Snapshot
from app.storage.migrations import (
    alembic_config,
    current_revision,
    head_revision,
    migrations_dir,
    upgrade,
)
from tests.support import manifests, oracle
from tests.support.uploads import load
from tests.test_subset_routes import totals_by_hand


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


def test_0004_sums_the_snapshots_stored_before_it(
    client: TestClient, database_url: str, factory: sessionmaker[Session]
) -> None:
    """Snapshots from before the stored totals get theirs from their rollups, equal to what an
    import stores; going down and up again loses no rollup, and the answers stay the same."""
    manifest = manifests.generated(4, recordings=40, with_samples=True)
    first = load(client, "gen", manifest)
    second = load(client, "gen", manifests.generated(6, recordings=25))
    with factory() as session:
        stored = {
            row.id: row.rollup_totals
            for row in session.execute(select(Snapshot.id, Snapshot.rollup_totals))
        }
    assert stored[first] == totals_by_hand(manifest)
    config = alembic_config(database_url)
    try:
        command.downgrade(config, "0003")
    finally:
        upgrade(database_url)
    with factory() as session:
        filled = {
            row.id: row.rollup_totals
            for row in session.execute(select(Snapshot.id, Snapshot.rollup_totals))
        }
    assert filled == stored
    assert set(filled) == {first, second}
    answer = client.get(f"/api/v1/datasets/gen/stats?snapshot={first}").json()
    assert answer["counts"] == oracle.expected_stats(manifest, set())["counts"]

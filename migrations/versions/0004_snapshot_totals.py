"""Snapshot totals and lookup indexes: questions cost what their filter names.

Each snapshot keeps its rollups summed by category mask (`snapshots.rollup_totals`, see
app.storage.rollup_totals); existing snapshots get theirs here, summed from their rollups with
the same GROUP BY the import runs. Recordings get an index for sessions, and a partial one of
the recordings known missing.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COLUMNS = tuple(
    f"{prefix}_{kind}"
    for prefix in ("partial", "full", "no_seizure")
    for kind in ("windows", "pos", "samples")
)
MASK = (
    "(CASE WHEN partial_windows > 0 THEN 1 ELSE 0 END"
    " + CASE WHEN full_windows > 0 THEN 2 ELSE 0 END"
    " + CASE WHEN no_seizure_windows > 0 THEN 4 ELSE 0 END)"
)


def upgrade() -> None:
    # Plain ALTER TABLE, not a batch: on SQLite a batch recreates the table, and dropping
    # `snapshots` would cascade to every table that refers to it.
    op.add_column("snapshots", sa.Column("rollup_totals", sa.JSON(), nullable=True))
    op.create_index("ix_recordings_dataset_id_session", "recordings", ["dataset_id", "session"])
    op.create_index(
        "ix_recordings_dataset_id_missing",
        "recordings",
        ["dataset_id"],
        sqlite_where=sa.text("present IS false"),
        postgresql_where=sa.text("present IS false"),
    )
    fill_totals(op.get_bind())


def fill_totals(connection: sa.Connection) -> None:
    sums = ", ".join(f"SUM({c}) AS {c}" for c in COLUMNS)
    rows = connection.execute(
        sa.text(
            f"SELECT snapshot_id, {MASK} AS mask, COUNT(*) AS recordings, {sums} "
            f"FROM recording_rollups GROUP BY snapshot_id, {MASK}"
        )
    ).mappings()
    totals: dict[int, dict[str, dict[str, int]]] = {}
    for row in rows:
        totals.setdefault(row["snapshot_id"], {})[str(row["mask"])] = {
            name: int(row[name] or 0) for name in ("recordings", *COLUMNS)
        }
    snapshots = sa.table("snapshots", sa.column("id"), sa.column("rollup_totals", sa.JSON()))
    for snapshot_id, by_mask in totals.items():
        connection.execute(
            snapshots.update().where(snapshots.c.id == snapshot_id).values(rollup_totals=by_mask)
        )


def downgrade() -> None:
    op.drop_index("ix_recordings_dataset_id_missing", table_name="recordings")
    op.drop_index("ix_recordings_dataset_id_session", table_name="recordings")
    op.drop_column("snapshots", "rollup_totals")

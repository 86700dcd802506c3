"""Initial schema: datasets, snapshots, recordings, per-recording rollups, windows.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=False),
        sa.Column("full_threshold", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("current_snapshot_id", sa.Integer(), nullable=True),
        sa.Column("presence_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("presence_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
        sa.UniqueConstraint("name", name=op.f("uq_datasets_name")),
    )
    op.create_table(
        "recordings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("cache_file", sa.String(length=255), nullable=False),
        sa.Column("stem", sa.String(length=255), nullable=False),
        sa.Column("patient", sa.String(length=255), nullable=False),
        sa.Column("session", sa.String(length=255), nullable=True),
        sa.Column("token", sa.String(length=255), nullable=True),
        sa.Column("present", sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_recordings_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recordings")),
        sa.UniqueConstraint(
            "dataset_id", "cache_file", name=op.f("uq_recordings_dataset_id_cache_file")
        ),
    )
    op.create_index("ix_recordings_dataset_id_patient", "recordings", ["dataset_id", "patient"])
    op.create_index("ix_recordings_dataset_id_stem", "recordings", ["dataset_id", "stem"])
    op.create_table(
        "snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("partial_windows", sa.BigInteger(), nullable=False),
        sa.Column("full_windows", sa.BigInteger(), nullable=False),
        sa.Column("no_seizure_windows", sa.BigInteger(), nullable=False),
        sa.Column("recordings", sa.Integer(), nullable=False),
        sa.Column("has_sample_counts", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_snapshots_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_snapshots")),
        sa.UniqueConstraint(
            "dataset_id", "content_hash", name=op.f("uq_snapshots_dataset_id_content_hash")
        ),
    )
    # datasets and snapshots point at each other: the second key comes once both exist.
    with op.batch_alter_table("datasets") as batch_op:
        batch_op.create_foreign_key(
            op.f("fk_datasets_current_snapshot_id_snapshots"),
            "snapshots",
            ["current_snapshot_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.create_table(
        "recording_rollups",
        sa.Column("snapshot_id", sa.Integer(), nullable=False),
        sa.Column("recording_id", sa.Integer(), nullable=False),
        sa.Column("partial_windows", sa.Integer(), nullable=False),
        sa.Column("full_windows", sa.Integer(), nullable=False),
        sa.Column("no_seizure_windows", sa.Integer(), nullable=False),
        sa.Column("partial_pos", sa.BigInteger(), nullable=False),
        sa.Column("full_pos", sa.BigInteger(), nullable=False),
        sa.Column("no_seizure_pos", sa.BigInteger(), nullable=False),
        sa.Column("partial_samples", sa.BigInteger(), nullable=False),
        sa.Column("full_samples", sa.BigInteger(), nullable=False),
        sa.Column("no_seizure_samples", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["recording_id"],
            ["recordings.id"],
            name=op.f("fk_recording_rollups_recording_id_recordings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["snapshots.id"],
            name=op.f("fk_recording_rollups_snapshot_id_snapshots"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("snapshot_id", "recording_id", name=op.f("pk_recording_rollups")),
    )
    op.create_index(
        op.f("ix_recording_rollups_recording_id"), "recording_rollups", ["recording_id"]
    )
    op.create_table(
        "snapshot_columns",
        sa.Column("snapshot_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.SmallInteger(), nullable=False),
        sa.Column("recording_ids", sa.LargeBinary(), nullable=False),
        sa.Column("window_idx", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["snapshots.id"],
            name=op.f("fk_snapshot_columns_snapshot_id_snapshots"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("snapshot_id", "category", name=op.f("pk_snapshot_columns")),
    )
    op.create_table(
        "windows",
        sa.Column("snapshot_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.SmallInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("recording_id", sa.Integer(), nullable=False),
        sa.Column("window_idx", sa.Integer(), nullable=False),
        sa.Column("n_pos", sa.Integer(), nullable=True),
        sa.Column("n_samples", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("snapshot_id", "category", "position", name=op.f("pk_windows")),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("windows")
    op.drop_table("snapshot_columns")
    op.drop_table("recording_rollups")
    with op.batch_alter_table("datasets") as batch_op:
        batch_op.drop_constraint(
            op.f("fk_datasets_current_snapshot_id_snapshots"), type_="foreignkey"
        )
    op.drop_table("snapshots")
    op.drop_table("recordings")
    op.drop_table("datasets")

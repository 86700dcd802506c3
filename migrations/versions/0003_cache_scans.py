"""Cache scans: per-file scan records, scans and their parts, and the files a scan left out.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scan_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("cache_file", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("n_windows", sa.Integer(), nullable=False),
        sa.Column("n_samples", sa.Integer(), nullable=False),
        sa.Column("n_pos", sa.LargeBinary(), nullable=False),
        sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_scan_files_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scan_files")),
        sa.UniqueConstraint(
            "dataset_id", "cache_file", name=op.f("uq_scan_files_dataset_id_cache_file")
        ),
    )
    op.create_table(
        "scans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("scan_key", sa.String(length=64), nullable=False),
        sa.Column("shard_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("snapshot_id", sa.Integer(), nullable=True),
        sa.Column("snapshot_created", sa.Boolean(), nullable=True),
        sa.Column("files", sa.Integer(), nullable=False),
        sa.Column("files_read", sa.Integer(), nullable=False),
        sa.Column("files_reused", sa.Integer(), nullable=False),
        sa.Column("files_skipped", sa.Integer(), nullable=False),
        sa.Column("recordings_missing", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_scans_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["snapshots.id"],
            name=op.f("fk_scans_snapshot_id_snapshots"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scans")),
        sa.UniqueConstraint("dataset_id", "scan_key", name=op.f("uq_scans_dataset_id_scan_key")),
    )
    op.create_index(op.f("ix_scans_snapshot_id"), "scans", ["snapshot_id"])
    op.create_table(
        "scan_parts",
        sa.Column("scan_id", sa.Integer(), nullable=False),
        sa.Column("shard_index", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=80), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["scan_id"],
            ["scans.id"],
            name=op.f("fk_scan_parts_scan_id_scans"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("scan_id", "shard_index", name=op.f("pk_scan_parts")),
    )
    op.create_table(
        "scan_issues",
        sa.Column("scan_id", sa.Integer(), nullable=False),
        sa.Column("cache_file", sa.String(length=255), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(
            ["scan_id"],
            ["scans.id"],
            name=op.f("fk_scan_issues_scan_id_scans"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("scan_id", "cache_file", name=op.f("pk_scan_issues")),
    )


def downgrade() -> None:
    op.drop_table("scan_issues")
    op.drop_table("scan_parts")
    op.drop_index(op.f("ix_scans_snapshot_id"), table_name="scans")
    op.drop_table("scans")
    op.drop_table("scan_files")

"""Database integrity after crashes and races: the engine's own check, then every snapshot's
stored rows against the counts it recorded, and no row that belongs to nothing."""

from __future__ import annotations

from sqlalchemy import text

from app.db import make_engine

# (what, query that must return no rows)
CONSISTENCY_QUERIES: list[tuple[str, str]] = [
    (
        "windows of a snapshot differ from its recorded counts",
        """
        SELECT s.id FROM snapshots s
        LEFT JOIN (
            SELECT snapshot_id,
                   SUM(CASE WHEN category = 0 THEN 1 ELSE 0 END) AS partial,
                   SUM(CASE WHEN category = 1 THEN 1 ELSE 0 END) AS full_,
                   SUM(CASE WHEN category = 2 THEN 1 ELSE 0 END) AS background
            FROM windows GROUP BY snapshot_id
        ) w ON w.snapshot_id = s.id
        WHERE COALESCE(w.partial, 0) != s.partial_windows
           OR COALESCE(w.full_, 0) != s.full_windows
           OR COALESCE(w.background, 0) != s.no_seizure_windows
        """,
    ),
    (
        "rollups of a snapshot differ from its recorded counts",
        """
        SELECT s.id FROM snapshots s
        LEFT JOIN (
            SELECT snapshot_id, SUM(partial_windows) AS partial, SUM(full_windows) AS full_,
                   SUM(no_seizure_windows) AS background, COUNT(*) AS recordings
            FROM recording_rollups GROUP BY snapshot_id
        ) r ON r.snapshot_id = s.id
        WHERE COALESCE(r.partial, 0) != s.partial_windows
           OR COALESCE(r.full_, 0) != s.full_windows
           OR COALESCE(r.background, 0) != s.no_seizure_windows
           OR COALESCE(r.recordings, 0) != s.recordings
        """,
    ),
    (
        "packed columns of a snapshot differ from its recorded counts",
        """
        SELECT s.id FROM snapshots s
        WHERE (SELECT COUNT(*) FROM snapshot_columns c WHERE c.snapshot_id = s.id) != 3
           OR (SELECT SUM(LENGTH(c.window_idx)) FROM snapshot_columns c
               WHERE c.snapshot_id = s.id) != 4 * (s.partial_windows + s.full_windows
                                                   + s.no_seizure_windows)
        """,
    ),
    (
        "windows of no snapshot",
        "SELECT DISTINCT snapshot_id FROM windows WHERE snapshot_id NOT IN (SELECT id FROM snapshots)",
    ),
    (
        "windows of no recording",
        "SELECT DISTINCT recording_id FROM windows "
        "WHERE recording_id NOT IN (SELECT id FROM recordings)",
    ),
    (
        "windows whose recording belongs to another dataset",
        """
        SELECT DISTINCT w.snapshot_id FROM windows w
        JOIN snapshots s ON s.id = w.snapshot_id
        JOIN recordings r ON r.id = w.recording_id
        WHERE r.dataset_id != s.dataset_id
        """,
    ),
    (
        "rollups or columns of no snapshot",
        "SELECT snapshot_id FROM recording_rollups WHERE snapshot_id NOT IN "
        "(SELECT id FROM snapshots) UNION SELECT snapshot_id FROM snapshot_columns "
        "WHERE snapshot_id NOT IN (SELECT id FROM snapshots)",
    ),
    (
        "a current snapshot of another dataset, or of none",
        """
        SELECT d.id FROM datasets d LEFT JOIN snapshots s ON s.id = d.current_snapshot_id
        WHERE d.current_snapshot_id IS NOT NULL AND (s.id IS NULL OR s.dataset_id != d.id)
        """,
    ),
]


def integrity_problems(database_url: str) -> list[str]:
    """Everything wrong with the database; empty when it is sound."""
    problems: list[str] = []
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                verdict = [row[0] for row in connection.exec_driver_sql("PRAGMA integrity_check")]
                if verdict != ["ok"]:
                    problems.append(f"PRAGMA integrity_check: {verdict[:5]}")
                orphans = list(connection.exec_driver_sql("PRAGMA foreign_key_check"))
                if orphans:
                    problems.append(f"PRAGMA foreign_key_check: {orphans[:5]}")
            else:
                # Every index must agree with its table; amcheck is not always installed, so
                # compare an index-only count with a sequential one on the biggest table.
                connection.exec_driver_sql("SET enable_seqscan = off")
                by_index = connection.exec_driver_sql("SELECT COUNT(*) FROM windows").scalar()
                connection.exec_driver_sql("SET enable_seqscan = on")
                connection.exec_driver_sql("SET enable_indexscan = off")
                connection.exec_driver_sql("SET enable_bitmapscan = off")
                connection.exec_driver_sql("SET enable_indexonlyscan = off")
                by_scan = connection.exec_driver_sql("SELECT COUNT(*) FROM windows").scalar()
                if by_index != by_scan:
                    problems.append(f"windows: index count {by_index} != table count {by_scan}")
                connection.rollback()
            for what, query in CONSISTENCY_QUERIES:
                rows = connection.execute(text(query)).all()
                if rows:
                    problems.append(f"{what}: {[tuple(r) for r in rows[:5]]}")
    finally:
        engine.dispose()
    return problems


def snapshot_state(database_url: str, dataset: str) -> dict[str, object]:
    """The dataset's snapshots (id, hash, counts) and which one is current, read directly."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            current = connection.execute(
                text("SELECT current_snapshot_id FROM datasets WHERE name = :name"),
                {"name": dataset},
            ).scalar()
            snapshots = connection.execute(
                text(
                    "SELECT s.id, s.content_hash, s.partial_windows, s.full_windows, "
                    "s.no_seizure_windows FROM snapshots s JOIN datasets d "
                    "ON d.id = s.dataset_id WHERE d.name = :name ORDER BY s.id"
                ),
                {"name": dataset},
            ).all()
            windows = connection.execute(text("SELECT COUNT(*) FROM windows")).scalar()
    finally:
        engine.dispose()
    return {"current": current, "snapshots": [tuple(s) for s in snapshots], "windows": windows}

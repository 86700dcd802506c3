"""The same questions asked of peers: Datasette over our SQLite file, DuckDB over a Parquet copy."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np

CATEGORY_CODES = {"partial_seizure": 0, "full_seizure": 1, "no_seizure": 2}


def sql_filter(filters: dict[str, list[str]]) -> str:
    """A WHERE clause over (patient, session, cache_file, category) for the benchmark filters.

    Values come from the benchmark's own generated names, never from outside input.
    """
    clauses = ["present"]

    def quoted(values: list[str]) -> str:
        return ", ".join("'" + v.replace("'", "''") + "'" for v in values)

    if filters.get("patient"):
        clauses.append(f"patient IN ({quoted(filters['patient'])})")
    if filters.get("exclude_patient"):
        clauses.append(f"patient NOT IN ({quoted(filters['exclude_patient'])})")
    if filters.get("session"):
        clauses.append(f"session IN ({quoted(filters['session'])})")
    if filters.get("recording"):
        clauses.append(f"cache_file IN ({quoted(filters['recording'])})")
    if filters.get("category"):
        codes = {c for name in filters["category"] for c in _codes(name)}
        clauses.append(f"category IN ({', '.join(map(str, sorted(codes)))})")
    return " AND ".join(clauses)


def _codes(name: str) -> list[int]:
    return [0, 1] if name == "seizure" else [CATEGORY_CODES[name]]


def datasette_sql(filters: dict[str, list[str]], snapshot_id: int) -> str:
    """Category counts of the subset, the way one would ask Datasette for them."""
    where = sql_filter(filters).replace("present", "coalesce(r.present, 1)", 1)
    return (
        "select w.category, count(*) from windows w join recordings r on r.id = w.recording_id "
        f"where w.snapshot_id = {snapshot_id} and {where} group by w.category"
    )


def duckdb_sql(parquet: Path, filters: dict[str, list[str]]) -> str:
    return (
        f"select category, count(*) from '{parquet}' where {sql_filter(filters)} group by category"
    )


def write_parquet(sqlite_path: Path, snapshot_id: int, out: Path) -> int:
    """One row per window (category, recording names, presence) from the snapshot's columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with sqlite3.connect(sqlite_path) as db:
        recordings = db.execute(
            "select id, cache_file, patient, coalesce(session, ''), coalesce(present, 1) "
            "from recordings"
        ).fetchall()
        packed = db.execute(
            "select category, recording_ids, window_idx from snapshot_columns "
            "where snapshot_id = ? order by category",
            (snapshot_id,),
        ).fetchall()
    size = max(r[0] for r in recordings) + 1
    lookup: dict[str, Any] = {
        "cache_file": np.empty(size, dtype=object),
        "patient": np.empty(size, dtype=object),
        "session": np.empty(size, dtype=object),
        "present": np.zeros(size, dtype=bool),
    }
    for rec_id, cache_file, patient, session, present in recordings:
        lookup["cache_file"][rec_id] = cache_file
        lookup["patient"][rec_id] = patient
        lookup["session"][rec_id] = session
        lookup["present"][rec_id] = bool(present)
    tables = []
    for category, rec_blob, idx_blob in packed:
        rec = np.frombuffer(rec_blob, dtype="<i4")
        columns = {name: values[rec] for name, values in lookup.items()}
        columns["window_idx"] = np.frombuffer(idx_blob, dtype="<i4")
        columns["category"] = np.full(rec.size, category, dtype=np.int8)
        tables.append(pa.table({k: pa.array(v) for k, v in columns.items()}))
    table = pa.concat_tables(tables)
    pq.write_table(table, out)
    return int(table.num_rows)

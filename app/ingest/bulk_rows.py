"""Writing many rows in one statement's worth of work: executemany on SQLite, COPY on Postgres.

Rows arrive as an iterator of tuples and are written a chunk at a time. At 143k recordings,
building one dict per row before writing was the import's peak memory (about 250 MB of Python
objects, on both backends); tuples made a chunk at a time keep that to a few MB.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

import numpy as np
import psycopg
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from app.db import is_sqlite

ROWS_PER_CHUNK = 10_000


def insert_rows(
    connection: Connection, table: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]
) -> None:
    """Insert `rows` (tuples in `columns` order) into `table` within the current transaction."""
    names = ", ".join(columns)
    if is_sqlite(connection):
        marks = ", ".join("?" for _ in columns)
        sql = f"INSERT INTO {table} ({names}) VALUES ({marks})"
        iterator = iter(rows)
        while chunk := list(islice(iterator, ROWS_PER_CHUNK)):
            connection.exec_driver_sql(sql, chunk)
        return
    driver = connection.connection.driver_connection
    assert driver is not None
    # Text COPY: psycopg adapts str, int and None itself, streaming as it goes.
    statement = f"COPY {table} ({names}) FROM STDIN"
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
    except psycopg.IntegrityError as error:
        # Raised by the driver, past SQLAlchemy: wrapped as SQLAlchemy would, so that a lost
        # race on a unique key (two imports adding the same recording) is retried by run_write.
        raise IntegrityError(statement, None, error) from error


def array_rows(*columns: np.ndarray[Any, Any]) -> Iterator[tuple[int, ...]]:
    """Tuples of Python ints across equally long numpy columns, converted a chunk at a time."""
    total = len(columns[0]) if columns else 0
    for start in range(0, total, ROWS_PER_CHUNK):
        stop = start + ROWS_PER_CHUNK
        yield from zip(*(column[start:stop].tolist() for column in columns), strict=True)

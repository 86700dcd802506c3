"""Engine construction, the declarative base and transaction helpers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import MetaData, create_engine, event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

# Stable constraint names on every backend, so one migration history fits SQLite and Postgres.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


T = TypeVar("T")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# Postgres channel on which every write transaction announces itself
# (see app.storage.commit_signal).
CHANGES_CHANNEL = "seizure_stats_changes"

# Execution option that marks a session as a writer: on SQLite it takes the write lock at BEGIN,
# so two writers queue on busy_timeout instead of failing when a reader upgrades to a writer.
WRITE_OPTION = "seizure_stats_write"


def normalize_database_url(url: str) -> str:
    """Accept the common spellings of a Postgres URL and pin the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


# Sync endpoints run on a pool of 40 threads (AnyIO's default). With fewer connections than
# threads, a burst of requests left threads queueing on the connection pool, which is not fair:
# under 200 concurrent clients some waited past its 30 s timeout and failed. With a connection
# for every thread, requests queue only for a thread, first come first served.
POOL_SIZE = 40
POOL_OVERFLOW = 0


def sqlite_file(url: str) -> Path | None:
    """The file behind a SQLite URL; None for other databases and in-memory SQLite."""
    parsed = make_url(normalize_database_url(url))
    if parsed.get_backend_name() != "sqlite" or is_memory_database(url):
        return None
    return Path(str(parsed.database))


def make_engine(
    url: str, *, sqlite_busy_timeout_ms: int = 60_000, pool_size: int = POOL_SIZE
) -> Engine:
    """Build an engine; SQLite gets WAL and the pragmas that make it a good server database."""
    url = normalize_database_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(
            url, pool_pre_ping=True, pool_size=pool_size, max_overflow=POOL_OVERFLOW
        )

    database = sqlite_file(url)
    pool: dict[str, int] = {}
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
        pool = {"pool_size": pool_size, "max_overflow": POOL_OVERFLOW}
    engine = create_engine(url, connect_args={"check_same_thread": False}, **pool)

    @event.listens_for(engine, "connect")
    def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own transaction handling is switched off; BEGIN is emitted below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(sqlite_busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA cache_size = -65536")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin_sqlite(conn: Connection) -> None:
        writer = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

    return engine


def is_memory_database(url: str) -> bool:
    """An in-memory SQLite database: every engine of it would be a database of its own."""
    parsed = make_url(normalize_database_url(url))
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def is_sqlite(engine_or_conn: Engine | Connection) -> bool:
    return engine_or_conn.dialect.name == "sqlite"


# Every question is answered from one view of the database, however many statements it takes:
# at Postgres' default READ COMMITTED each statement sees what was committed before it, so an
# import landing between two statements of one answer showed it half (an array sized by the
# recordings one statement saw, indexed by ids a later one saw). REPEATABLE READ gives the
# whole transaction the view of its first statement; read only, since a reader never writes.
# On SQLite a transaction is one snapshot already (BEGIN comes before the first statement).
READ_OPTIONS = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
READ_BIND = "seizure_stats_read_bind"


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    # The read engine shares the pool; its connections begin as READ_OPTIONS say (reset on
    # their return). Made once here: each one registers an event.
    read_bind = engine.execution_options(**READ_OPTIONS) if not is_sqlite(engine) else engine
    return sessionmaker(
        bind=engine, expire_on_commit=False, autoflush=False, info={READ_BIND: read_bind}
    )


@contextmanager
def write_session(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error: the one place writes end."""
    with factory() as session:
        session.connection(execution_options={WRITE_OPTION: True})
        try:
            yield session
            if session.get_bind().dialect.name == "postgresql":
                # Delivered at commit, to every process listening (app.storage.commit_signal).
                session.execute(text(f"NOTIFY {CHANGES_CHANNEL}"))
            session.commit()
        except BaseException:
            session.rollback()
            raise


# Concurrent first writes of one new row (a dataset, a scan, its parts, a snapshot's content)
# collide on a unique key; the loser's next attempt finds the winner's row. Two retries are
# enough: after one lost race the row exists.
WRITE_ATTEMPTS = 3
# Postgres' SQLSTATE and SQLite's extended result codes for a duplicate key.
UNIQUE_VIOLATIONS = {"23505", "SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"}


def is_unique_violation(error: IntegrityError) -> bool:
    """Whether the database refused a row because its key is taken (not a foreign key or NULL)."""
    code = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "sqlite_errorname", None)
    return code in UNIQUE_VIOLATIONS


def run_write(factory: sessionmaker[Session], work: Callable[[Session], T]) -> T:
    """Run `work` in a write transaction of its own; in a fresh one when it loses a key race."""
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            with write_session(factory) as session:
                return work(session)
        except IntegrityError as error:
            if attempt == WRITE_ATTEMPTS or not is_unique_violation(error):
                raise
    raise AssertionError("unreachable")  # pragma: no cover


@contextmanager
def read_session(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose statements all read one consistent snapshot of the database."""
    read_bind = factory.kw.get("info", {}).get(READ_BIND)  # see make_session_factory
    with factory(bind=read_bind) if read_bind is not None else factory() as session:
        yield session

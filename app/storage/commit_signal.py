"""Knowing cheaply whether anything was committed since we last looked, across processes.

A process keeps what it knows of each dataset (current snapshot, presence version) while the
database says nothing has changed. A token is compared per request, so it must cost
microseconds, never a query:

- SQLite: `PRAGMA data_version` on a connection of our own, which changes whenever another
  connection (any process) commits.
- Postgres: every write transaction sends `NOTIFY` (see `app.db.write_session`); a listener
  thread counts the notifications. While it is not connected, every token is new, so nothing
  is trusted and each request asks the database.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from typing import Any, Protocol

import psycopg
from sqlalchemy.engine import Engine, make_url

from app.db import CHANGES_CHANNEL

logger = logging.getLogger(__name__)


class ChangeSignal(Protocol):
    def token(self) -> object:
        """Equal tokens mean no write was committed in between."""

    def close(self) -> None: ...


class SqliteDataVersion:
    def __init__(self, path: str) -> None:
        self._connection = sqlite3.connect(path, check_same_thread=False)
        self._lock = threading.Lock()

    def token(self) -> object:
        with self._lock:
            return self._connection.execute("PRAGMA data_version").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._connection.close()


# The listener's connection, as pg_stat_activity shows it unless the database URL (or PGAPPNAME)
# names it otherwise.
LISTENER_NAME = "seizure-stats-changes"
# A listener only waits, so a server that vanished without closing the connection (its host
# lost, the network cut) would leave it looking connected, its token unchanged, for ever. TCP
# keepalives find such a connection dead after about 30 s of silence (tcp_user_timeout; the
# probes' count and interval decide where the system has no such timeout); from then on every
# token is new until the listener is back. libpq ignores these on a Unix socket, which cannot
# be left half open.
LISTENER_DEFAULTS: dict[str, int | str] = {
    "connect_timeout": 5,
    "fallback_application_name": LISTENER_NAME,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}


def listener_parameters(engine: Engine) -> dict[str, Any]:
    """The engine's own connection parameters, as its dialect gives them to psycopg (a URL
    rendered again as a string would lose some), over the listener's defaults: what the
    database URL sets wins."""
    _, given = engine.dialect.create_connect_args(engine.url)
    given.pop("context", None)  # the engine's type adapters, of no use to a listener
    parameters: dict[str, Any] = {**LISTENER_DEFAULTS, **given}
    return parameters


def listener_connection(parameters: dict[str, Any]) -> psycopg.Connection[Any]:
    return psycopg.connect(**parameters, autocommit=True)


class PostgresNotifications:
    RECONNECT_SECONDS = 1.0

    def __init__(self, parameters: dict[str, Any]) -> None:
        self._parameters = parameters
        self._lock = threading.Lock()
        self._count = 0
        self._connected = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def token(self) -> object:
        if self._thread is None:
            self._start()
        with self._lock:
            return self._count if self._connected else object()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._listen, name=LISTENER_NAME, daemon=True
                )
                self._thread.start()

    def _listen(self) -> None:
        warned = False
        while not self._stop.is_set():
            connections = self._count  # counted up once each time it connects
            try:
                self._listen_once()
            except psycopg.Error as exc:
                if self._count != connections:  # it was connected: this is a new outage
                    warned = False
                if not warned and not self._stop.is_set():  # once an outage, not once a second
                    logger.warning(
                        "commit signal lost (%s); every answer reads its dataset's state "
                        "from the database until it is back",
                        str(exc).strip() or type(exc).__name__,
                    )
                warned = True
            self._stop.wait(self.RECONNECT_SECONDS)

    def _listen_once(self) -> None:
        """Count notifications until the connection fails or the listener is closed; while it
        is not connected, every token is new, whatever ended it."""
        try:
            with listener_connection(self._parameters) as conn:
                conn.execute(f"LISTEN {CHANGES_CHANNEL}")
                with self._lock:
                    # Anything may have happened while we were not listening.
                    self._count += 1
                    self._connected = True
                while not self._stop.is_set():
                    for _ in conn.notifies(timeout=1.0):
                        with self._lock:
                            self._count += 1
        finally:
            with self._lock:
                self._connected = False

    def close(self) -> None:
        self._stop.set()


def change_signal(engine: Engine) -> ChangeSignal:
    url = make_url(engine.url)
    if url.get_backend_name() == "sqlite":
        return SqliteDataVersion(url.database or ":memory:")
    return PostgresNotifications(listener_parameters(engine))

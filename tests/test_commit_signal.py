"""The Postgres commit signal's listener: its connection finds a vanished server, takes what the
database URL sets, and a lost connection makes every token new until the listener is back."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import make_url
from sqlalchemy.engine import Engine

from app.db import make_engine
from app.storage import commit_signal
from app.storage.commit_signal import (
    LISTENER_DEFAULTS,
    LISTENER_NAME,
    PostgresNotifications,
    change_signal,
    listener_connection,
    listener_parameters,
)
from tests.support import signals

pytestmark = pytest.mark.postgres

KEEPALIVES = ("keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count")
TCP_OPTIONS = (*KEEPALIVES, "tcp_user_timeout")


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    made = make_engine(postgres_url)
    yield made
    made.dispose()


def socket_options(connection: psycopg.Connection[Any]) -> dict[str, int]:
    """The TCP options the kernel holds for the connection's socket (a duplicate of it)."""
    with socket.socket(fileno=os.dup(connection.pgconn.socket)) as sock:
        assert sock.family in (socket.AF_INET, socket.AF_INET6), "the test needs Postgres on TCP"
        return {
            "keepalives": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
            "keepalives_idle": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
            "keepalives_interval": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
            "keepalives_count": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
            "tcp_user_timeout": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
        }


def shown(connection: psycopg.Connection[Any], setting: str) -> str:
    """The server's value of a setting for this connection."""
    row = connection.execute(f"SHOW {setting}").fetchone()
    assert row is not None
    return str(row[0])


def test_the_listener_connection_probes_a_silent_peer(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PGAPPNAME", raising=False)
    with listener_connection(listener_parameters(engine)) as connection:
        assert socket_options(connection) == {k: LISTENER_DEFAULTS[k] for k in TCP_OPTIONS}
        assert shown(connection, "application_name") == LISTENER_NAME


def test_what_the_database_url_sets_wins_and_arrives_whole(postgres_url: str) -> None:
    """Parameters a URL rendered as a string again would lose: options with spaces, and a
    password with one (the test server trusts local connections, so any password is taken)."""
    query = {
        "keepalives_idle": "3",
        "application_name": "mine",
        "options": "-c search_path=elsewhere,public",
    }
    url = make_url(postgres_url).set(password="a secret with spaces").update_query_dict(query)
    engine = make_engine(url.render_as_string(False))
    try:
        with listener_connection(listener_parameters(engine)) as connection:
            assert socket_options(connection)["keepalives_idle"] == 3
            assert socket_options(connection)["keepalives_count"] == 3
            assert shown(connection, "application_name") == "mine"
            assert shown(connection, "search_path") == "elsewhere,public"
    finally:
        engine.dispose()


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[psycopg.Connection[Any]]:
    """Every connection the listeners open, in order."""
    connections: list[psycopg.Connection[Any]] = []

    def recorded(parameters: dict[str, Any]) -> psycopg.Connection[Any]:
        connections.append(listener_connection(parameters))
        return connections[-1]

    monkeypatch.setattr(commit_signal, "listener_connection", recorded)
    return connections


@pytest.fixture
def listener(engine: Engine, opened: list[Any]) -> Iterator[PostgresNotifications]:
    signal = change_signal(engine)
    assert isinstance(signal, PostgresNotifications)
    signal.RECONNECT_SECONDS = 0.5  # long enough to be seen disconnected
    try:
        yield signal
    finally:
        signal.close()


def test_the_listener_listens_on_a_connection_that_probes(
    listener: PostgresNotifications, opened: list[psycopg.Connection[Any]]
) -> None:
    signals.settled(listener.token)
    (connection,) = opened
    assert socket_options(connection) == {k: LISTENER_DEFAULTS[k] for k in TCP_OPTIONS}


@pytest.fixture
def warnings_logged(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """The warnings the commit signal has logged so far in the test."""
    caplog.set_level(logging.WARNING, logger=commit_signal.__name__)
    return lambda: [r.getMessage() for r in caplog.records if r.name == commit_signal.__name__]


def lose_connection(listener: PostgresNotifications, connection: Any, postgres_url: str) -> None:
    """End the listener's connection from the server's side; wait until it is back."""
    admin_url = make_url(postgres_url).set(drivername="postgresql")
    with psycopg.connect(admin_url.render_as_string(False), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s, 5000)", (connection.info.backend_pid,))
    deadline = time.monotonic() + signals.TIMEOUT_SECONDS
    while listener.token() == listener.token():
        assert time.monotonic() < deadline, "the lost connection was never noticed"
        time.sleep(0.01)
    signals.settled(listener.token)


def test_a_lost_connection_makes_every_token_new_until_the_listener_is_back(
    listener: PostgresNotifications,
    opened: list[psycopg.Connection[Any]],
    postgres_url: str,
    warnings_logged: Callable[[], list[str]],
) -> None:
    signals.settled(listener.token)
    before = listener.token()
    (first,) = opened
    first_pid = first.info.backend_pid

    lose_connection(listener, first, postgres_url)

    assert listener.token() != before
    assert len(opened) == 2
    assert opened[1].info.backend_pid != first_pid
    lost = warnings_logged()
    assert len(lost) == 1
    assert lost[0].startswith("commit signal lost (")


def test_each_outage_is_logged_once(
    listener: PostgresNotifications,
    opened: list[psycopg.Connection[Any]],
    postgres_url: str,
    warnings_logged: Callable[[], list[str]],
) -> None:
    signals.settled(listener.token)
    lose_connection(listener, opened[0], postgres_url)
    lose_connection(listener, opened[1], postgres_url)
    assert len(opened) == 3
    lost = warnings_logged()
    assert len(lost) == 2

"""The Postgres commit signal's listener: its connection finds a vanished server, and a lost
connection makes every token new until the listener is back."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import make_url

from app.storage.commit_signal import (
    LISTENER_KEEPALIVES,
    LISTENER_NAME,
    PostgresNotifications,
    listener_connection,
)
from tests.support import signals

pytestmark = pytest.mark.postgres


@pytest.fixture
def conninfo(postgres_url: str) -> str:
    return make_url(postgres_url).set(drivername="postgresql").render_as_string(False)


# The name the listener under test connects as, so that other tests' listeners are not counted.
OWN_NAME = f"signal-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def listener(conninfo: str) -> Iterator[PostgresNotifications]:
    notifications = PostgresNotifications(f"{conninfo}?application_name={OWN_NAME}")
    try:
        yield notifications
    finally:
        notifications.close()


def socket_options(connection: psycopg.Connection[object]) -> dict[str, int]:
    """The TCP options the kernel holds for the connection's socket (a duplicate of it)."""
    with socket.socket(fileno=os.dup(connection.pgconn.socket)) as sock:
        assert sock.family == socket.AF_INET, "the test server must be reached over TCP"
        return {
            "keepalives": sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
            "keepalives_idle": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
            "keepalives_interval": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
            "keepalives_count": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
            "tcp_user_timeout": sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
        }


def test_the_listener_connection_probes_a_silent_peer(conninfo: str) -> None:
    with listener_connection(conninfo) as connection:
        assert socket_options(connection) == LISTENER_KEEPALIVES
        assert connection.info.get_parameters()["application_name"] == LISTENER_NAME


def test_the_database_url_wins_over_the_listener_defaults(conninfo: str) -> None:
    with listener_connection(f"{conninfo}?keepalives_idle=3&application_name=mine") as connection:
        assert socket_options(connection)["keepalives_idle"] == 3
        assert socket_options(connection)["keepalives_count"] == 3
        assert connection.info.get_parameters()["application_name"] == "mine"


def listener_pids(conninfo: str) -> list[int]:
    query = "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
    with psycopg.connect(conninfo) as connection:
        return [row[0] for row in connection.execute(query, (OWN_NAME,))]


def test_a_lost_connection_makes_every_token_new_until_the_listener_is_back(
    conninfo: str, listener: PostgresNotifications
) -> None:
    listener.RECONNECT_SECONDS = 0.5  # long enough to be seen disconnected
    signals.settled(listener.token)
    before = listener.token()
    (pid,) = listener_pids(conninfo)

    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    deadline = time.monotonic() + signals.TIMEOUT_SECONDS
    while listener.token() == listener.token():
        assert time.monotonic() < deadline, "the lost connection was never noticed"
        time.sleep(0.01)

    signals.settled(listener.token)
    assert listener.token() != before
    (new_pid,) = listener_pids(conninfo)
    assert new_pid != pid

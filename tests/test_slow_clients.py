"""Clients that are slow or leave, against a real server: bounded waits, the right status, and
the service answering everyone else meanwhile."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import make_token
from tests.support.servers import LiveServer, live_server

pytestmark = pytest.mark.e2e

SNAPSHOTS = "/api/v1/datasets/{dataset}/snapshots"


def log_lines(server: LiveServer, until: str, timeout: float = 10) -> list[dict[str, Any]]:
    """The server's JSON log lines, once one of them contains `until` (or time is up)."""
    deadline = time.monotonic() + timeout
    while True:
        text = server.log_path.read_text()
        if until in text or time.monotonic() > deadline:
            return [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        time.sleep(0.1)


def request_counts(url: str) -> dict[tuple[str, str, str], float]:
    """seizure_stats_http_requests_total by (method, route, status)."""
    found = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text):
        for sample in family.samples:
            if sample.name == "seizure_stats_http_requests_total":
                labels = sample.labels
                found[(labels["method"], labels["route"], labels["status"])] = sample.value
    return found


def upload_head(dataset: str, token: str, length: int) -> bytes:
    return (
        f"POST /api/v1/datasets/{dataset}/snapshots HTTP/1.1\r\nHost: test\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def receive_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (the socket has a timeout)."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_a_client_that_leaves_mid_upload_is_a_499_not_a_500(
    database_url: str, tmp_path: Path
) -> None:
    token = make_token(database_url, "uploader", "write")
    env = {"SEIZURE_STATS_LOG_FORMAT": "json"}
    with live_server(database_url, tmp_path, env) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(upload_head("left", token, 50_000_000))
            sock.sendall(b'{"partial_seizure": [' + b" " * 1_000_000)
            time.sleep(0.5)
        lines = log_lines(server, '"status": 499')
        access = [line for line in lines if line.get("path") == "/api/v1/datasets/left/snapshots"]
        assert [(a["level"], a["status"]) for a in access] == [("INFO", 499)]
        left = [line for line in lines if "closed the connection" in line["message"]]
        assert [(line["level"], line["message"]) for line in left] == [
            (
                "WARNING",
                "client closed the connection during POST /api/v1/datasets/left/snapshots "
                "after 1000021 of 50000000 body bytes",
            )
        ]
        assert [line for line in lines if line["level"] in ("ERROR", "CRITICAL")] == []
        assert [line for line in lines if "exception" in line] == []
        counts = request_counts(server.url)
        route = SNAPSHOTS
        assert counts.get(("POST", route, "499")) == 1
        assert counts.get(("POST", route, "500")) is None
        assert httpx.get(f"{server.url}/api/v1/datasets/left").status_code == 404


def trickle(sock: socket.socket, data: bytes, every: float) -> None:
    """Send one byte at a time until the server closes the connection."""
    for byte in data:
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return
        time.sleep(every)


def answer_of(reply: bytes) -> tuple[str, dict[str, Any]]:
    """The status line and JSON body of a raw HTTP reply."""
    head, _, body = reply.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), json.loads(body)


def test_a_408_survives_a_client_that_is_still_sending(sqlite_url: str, tmp_path: Path) -> None:
    """The client keeps sending header lines past the deadline. Closed at once, with those
    bytes unread, the connection would be reset, and the reset destroys the 408."""
    env = {"SEIZURE_STATS_HEADER_TIMEOUT_SECONDS": "1"}
    with (
        live_server(sqlite_url, tmp_path, env) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock,
    ):
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        stop = threading.Event()

        def flood() -> None:
            line = b"X-Pad: " + b"a" * 8000 + b"\r\n"
            while not stop.is_set():
                try:
                    sock.sendall(line)
                except OSError:
                    return
                time.sleep(0.002)

        sender = threading.Thread(target=flood)
        sender.start()
        try:
            reply = receive_all(sock)
        finally:
            stop.set()
            sender.join()
    assert answer_of(reply)[0] == "HTTP/1.1 408 Request Timeout"


def test_request_heads_must_arrive_in_time(sqlite_url: str, tmp_path: Path) -> None:
    env = {"SEIZURE_STATS_HEADER_TIMEOUT_SECONDS": "1", "SEIZURE_STATS_LOG_FORMAT": "json"}
    with live_server(sqlite_url, tmp_path, env) as server:
        address = ("127.0.0.1", server.port)
        silent = socket.create_connection(address, timeout=5)
        partial = socket.create_connection(address, timeout=5)
        trickling = socket.create_connection(address, timeout=5)
        with silent, partial, trickling:
            started = time.monotonic()
            partial.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")
            sender = threading.Thread(
                target=trickle, args=(trickling, b"GET /healthz HTTP/1.1\r\nX-Slow: " * 4, 0.1)
            )
            sender.start()
            # Everyone else is served meanwhile.
            for _ in range(5):
                assert httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200
            replies = [receive_all(sock) for sock in (silent, partial, trickling)]
            elapsed = time.monotonic() - started
            sender.join()
        assert replies[0] == b"", "a connection that sent nothing is closed without a word"
        for reply in replies[1:]:
            assert answer_of(reply) == (
                "HTTP/1.1 408 Request Timeout",
                {
                    "error": "request_timeout",
                    "detail": "the request head was not complete within 1 s",
                },
            )
        assert 1 <= elapsed < 3, elapsed
        # A head that arrives in time is served as always, on a connection kept alive.
        with httpx.Client(base_url=server.url) as http:
            assert http.get("/healthz").status_code == 200
            time.sleep(1.5)
            assert http.get("/healthz").status_code == 200
        lines = log_lines(server, "answered 408")
        slow = [line["message"] for line in lines if "answered 408" in line["message"]]
        assert len(slow) == 2
        assert all(m.endswith("not complete after 1 s: answered 408") for m in slow)


def test_request_bodies_must_arrive_in_time(sqlite_url: str, tmp_path: Path) -> None:
    token = make_token(sqlite_url, "slow-uploader", "write")
    env = {
        "SEIZURE_STATS_BODY_IDLE_TIMEOUT_SECONDS": "1",
        "SEIZURE_STATS_BODY_TIMEOUT_SECONDS": "3",
        "SEIZURE_STATS_LOG_FORMAT": "json",
    }
    with live_server(sqlite_url, tmp_path, env) as server:
        address = ("127.0.0.1", server.port)
        stalled = socket.create_connection(address, timeout=6)
        trickling = socket.create_connection(address, timeout=6)
        with stalled, trickling:
            started = time.monotonic()
            # An upload whose body stops after a few bytes.
            stalled.sendall(upload_head("stalled", token, 1000) + b'{"partial_')
            # A JSON body that keeps coming, a byte every 0.3 s: never idle, but endless.
            body = json.dumps({"name": "trickled", "description": "x" * 100}).encode()
            trickling.sendall(
                (
                    f"POST /api/v1/datasets HTTP/1.1\r\nHost: test\r\n"
                    f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n"
                ).encode()
            )
            sender = threading.Thread(target=trickle, args=(trickling, body, 0.3))
            sender.start()
            for _ in range(5):
                assert httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200
            idle = receive_all(stalled)
            idle_after = time.monotonic() - started
            endless = receive_all(trickling)
            endless_after = time.monotonic() - started
            sender.join()
        assert answer_of(idle) == (
            "HTTP/1.1 408 Request Timeout",
            {
                "error": "request_timeout",
                "detail": "the request body stalled: nothing arrived for 1 s",
            },
        )
        assert b"\r\nconnection: close\r\n" in idle.lower()
        assert 1 <= idle_after < 2.5, idle_after
        assert answer_of(endless) == (
            "HTTP/1.1 408 Request Timeout",
            {
                "error": "request_timeout",
                "detail": "the request body took longer than 3 s to arrive",
            },
        )
        assert 3 <= endless_after < 4.5, endless_after
        counts = request_counts(server.url)
        assert counts.get(("POST", SNAPSHOTS, "408")) == 1
        assert counts.get(("POST", "/api/v1/datasets", "408")) == 1
        assert httpx.get(f"{server.url}/api/v1/datasets").json() == []
        lines = log_lines(server, '"status": 408')
        assert [line for line in lines if line["level"] in ("ERROR", "CRITICAL")] == []


def test_head_answers_over_a_real_server(sqlite_url: str, tmp_path: Path) -> None:
    """HEAD then GET on one keep-alive connection: a HEAD answered as a GET on the wire (a body
    promised, or chunks sent) would break the connection or the answer after it."""
    token = make_token(sqlite_url, "head-writer", "write")
    with live_server(sqlite_url, tmp_path) as server:
        manifest = json.dumps(
            {
                "partial_seizure": [{"cache_file": "a_windows.npz", "window_idx": 0}],
                "full_seizure": [],
                "no_seizure": [{"cache_file": "a_windows.npz", "window_idx": 1}],
            }
        )
        created = httpx.post(
            f"{server.url}/api/v1/datasets/h/snapshots",
            content=manifest,
            headers={"Authorization": f"Bearer {token}"},
        )
        assert created.status_code == 201, created.text
        paths = ["/healthz", "/api/v1/datasets", "/", "/docs", "/api/v1/datasets/h/balanced/index"]
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for path in paths * 2:
                head, get = client.head(path), client.get(path)
                assert (head.status_code, head.content) == (200, b""), path
                assert get.status_code == 200, path
                assert head.headers["content-type"] == get.headers["content-type"], path
                if "content-length" in get.headers:
                    assert head.headers["content-length"] == get.headers["content-length"], path
        text = server.log_path.read_text()
        assert "Exception in ASGI application" not in text, text[-2000:]
        assert '"level": "ERROR"' not in text, text[-2000:]

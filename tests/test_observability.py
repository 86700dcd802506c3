"""Request ids, JSON logs without secrets, and Prometheus metrics."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import select
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.config import Settings
from app.main import create_app
from app.observability.log_queue import stop_log_queue
from app.observability.logs import (
    JsonFormatter,
    RequestIdFilter,
    TextFormatter,
    configure_logging,
    use_json,
)
from tests.support import manifests
from tests.support.servers import LiveServer

MANIFEST = json.dumps(manifests.SMALL)
BROKEN = '{"partial_seizure": 3}'


def samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, keyed by name and sorted labels."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_request_id_is_generated_kept_or_replaced(client: TestClient) -> None:
    generated = client.get("/healthz").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert client.get("/healthz").headers["X-Request-ID"] != generated
    kept = client.get("/healthz", headers={"X-Request-ID": "job-42:step.7"})
    assert kept.headers["X-Request-ID"] == "job-42:step.7"
    for hostile in ('x" injected="1', "a" * 129, "line\tbreak"):
        replaced = client.get("/healthz", headers={"X-Request-ID": hostile})
        assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["X-Request-ID"]), hostile
    # Errors carry it too.
    missing = client.get("/api/v1/datasets/nope", headers={"X-Request-ID": "trace-404"})
    assert missing.status_code == 404
    assert missing.headers["X-Request-ID"] == "trace-404"


def test_access_log_has_request_id_route_and_status_but_no_token(
    client: TestClient, write_token: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client.post(
        "/api/v1/datasets/small/snapshots?source=ci",
        content=MANIFEST,
        headers={"X-Request-ID": "req-import"},
    )
    client.get("/api/v1/datasets/small/stats?patient=bbbbbbbb", headers={"X-Request-ID": "req-2"})
    client.post("/api/v1/datasets", json={"name": "x"}, headers={"Authorization": "Bearer bad"})

    access = [r for r in caplog.records if r.name == "seizure_stats.access"]
    by_id = {getattr(r, "request_id", None): r for r in access}
    imported = by_id["req-import"]
    assert imported.__dict__["route"] == "/api/v1/datasets/{dataset}/snapshots"
    assert imported.__dict__["status"] == 201
    assert imported.__dict__["path"] == "/api/v1/datasets/small/snapshots"
    assert by_id["req-2"].__dict__["status"] == 200
    assert [r.__dict__["status"] for r in access if r.__dict__["method"] == "POST"][-1] == 401

    # What the server logged (the test client's own request log is not the server's).
    server = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    everything = "\n".join(JsonFormatter().format(r) for r in server)
    everything += "\n".join(TextFormatter().format(r) for r in server)
    secret = write_token.rsplit("_", 1)[1]
    assert secret not in everything
    assert "Bearer" not in everything
    assert "patient=bbbbbbbb" not in everything, "query strings stay out of the logs"


def test_json_formatter() -> None:
    record = logging.LogRecord(
        "seizure_stats.x", logging.WARNING, __file__, 1, "a %s", ("b",), None
    )
    record.dataset = "tusz-train"
    RequestIdFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["level"] == "WARNING"
    assert line["logger"] == "seizure_stats.x"
    assert line["message"] == "a b"
    assert line["dataset"] == "tusz-train"
    assert "request_id" not in line
    assert line["time"].endswith("+00:00")
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        failed = logging.LogRecord("x", logging.ERROR, __file__, 1, "oops", None, sys.exc_info())
    assert "ValueError: boom" in json.loads(JsonFormatter().format(failed))["exception"]
    text = TextFormatter().format(record)
    assert "WARNING" in text
    assert text.endswith("seizure_stats.x a b")


class FakeStream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def test_log_format_auto_is_text_on_a_terminal_json_elsewhere() -> None:
    assert use_json("auto", FakeStream(tty=False))
    assert not use_json("auto", FakeStream(tty=True))
    assert use_json("json", FakeStream(tty=True))
    assert not use_json("text", FakeStream(tty=False))


def test_settings_accept_lowercase_log_level() -> None:
    assert Settings(log_level="debug").log_level == "DEBUG"  # type: ignore[arg-type]


def test_request_metrics_by_route_template_and_status(client: TestClient) -> None:
    client.post("/api/v1/datasets/small/snapshots", content=MANIFEST)
    for patient in ("aaaaaaaa", "bbbbbbbb", "nobody"):
        client.get("/api/v1/datasets/small/stats", params={"patient": patient})
    client.get("/api/v1/datasets/nope/stats")
    client.get("/no/such/page")
    found = samples(client)
    total = "seizure_stats_http_requests_total"
    stats_route = "/api/v1/datasets/{dataset}/stats"
    assert value(found, total, method="GET", route=stats_route, status="200") == 3
    assert value(found, total, method="GET", route=stats_route, status="404") == 1
    assert (
        value(
            found,
            total,
            method="POST",
            route="/api/v1/datasets/{dataset}/snapshots",
            status="201",
        )
        == 1
    )
    assert value(found, total, method="GET", route="<unmatched>", status="404") == 1
    latency = "seizure_stats_http_request_duration_seconds_count"
    assert value(found, latency, method="GET", route=stats_route) == 4
    assert not any("small" in dict(labels).get("route", "") for _, labels in found)


def test_import_metrics_and_snapshots_per_dataset(client: TestClient) -> None:
    client.post("/api/v1/datasets/small/snapshots", content=MANIFEST)
    client.post("/api/v1/datasets/small/snapshots", content=MANIFEST)
    client.post("/api/v1/datasets/small/snapshots", content=json.dumps(manifests.generated(3)))
    client.post("/api/v1/datasets/other/snapshots", content=MANIFEST)
    client.post("/api/v1/datasets/bad/snapshots", content=BROKEN)
    client.post("/api/v1/datasets", json={"name": "empty"})
    found = samples(client)
    seconds = "seizure_stats_import_duration_seconds_count"
    assert value(found, seconds, outcome="created") == 3
    assert value(found, seconds, outcome="existing") == 1
    assert value(found, seconds, outcome="failed") == 1
    bodies = [MANIFEST, MANIFEST, json.dumps(manifests.generated(3)), MANIFEST, BROKEN]
    assert value(found, "seizure_stats_import_size_bytes_count") == 5
    assert value(found, "seizure_stats_import_size_bytes_sum") == sum(map(len, bodies))
    assert value(found, "seizure_stats_import_windows_count") == 4
    assert value(found, "seizure_stats_snapshots", dataset="small") == 2
    assert value(found, "seizure_stats_snapshots", dataset="other") == 1
    assert value(found, "seizure_stats_snapshots", dataset="empty") == 0
    assert value(found, "seizure_stats_current_snapshot_windows", dataset="other") == 12
    assert ("seizure_stats_current_snapshot_windows", (("dataset", "empty"),)) not in found


@pytest.fixture
def no_metrics_client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update={"metrics_enabled": False}))) as c:
        yield c


def test_metrics_can_be_switched_off(no_metrics_client: TestClient) -> None:
    assert no_metrics_client.get("/metrics").status_code == 404
    assert no_metrics_client.get("/healthz").status_code == 200


def read_output(stream: IO[bytes], until: str, timeout: float) -> str:
    """What the server wrote to its output pipe, read until `until` appears or time is up."""
    fd = stream.fileno()
    os.set_blocking(fd, False)
    received = b""
    deadline = time.monotonic() + timeout
    while until.encode() not in received and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            received += chunk
    return received.decode()


def test_a_stalled_log_reader_does_not_stall_the_server(sqlite_url: str, tmp_path: Path) -> None:
    """Nobody reads the server's stderr: the pipe fills after some 170 lines. Requests are still
    answered; the records that find the log queue full are dropped and counted, and once the pipe
    is read again the rest is written, followed by one line that says how many were dropped."""
    env = {"SEIZURE_STATS_LOG_FORMAT": "json", "SEIZURE_STATS_LOG_QUEUE_RECORDS": "500"}
    server = LiveServer(sqlite_url, tmp_path, env, output_to_pipe=True)
    requests = 2000
    try:
        server.start()
        with httpx.Client(base_url=server.url, timeout=5) as http:
            for _ in range(requests):
                # Each answer is logged at INFO; a server blocked on its stderr times out here.
                assert http.get("/api/v1/datasets").status_code == 200
            started = time.monotonic()
            assert http.get("/healthz").status_code == 200
            assert time.monotonic() - started < 1
            found = {}
            for family in text_string_to_metric_families(http.get("/metrics").text):
                for sample in family.samples:
                    found[sample.name] = sample.value
        dropped = int(found["seizure_stats_log_records_dropped_total"])
        assert dropped > 0
        assert server.process is not None
        assert server.process.stdout is not None
        output = read_output(server.process.stdout, "log records were dropped", timeout=20)
        lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
        access = [line for line in lines if line.get("path") == "/api/v1/datasets"]
        # Every access record was either written or dropped, none lost silently.
        assert len(access) + dropped == requests
        notices = [line for line in lines if "log records were dropped" in line["message"]]
        assert [n["message"] for n in notices] == [
            f"{dropped} log records were dropped while the log output was blocked"
        ]
        assert notices[0]["level"] == "WARNING"
        # On SIGTERM the queue is written out before the process ends: its last lines too.
        server.process.terminate()
        ending = read_output(server.process.stdout, "Finished server process", timeout=15)
        server.process.wait(timeout=15)
        assert "Finished server process" in ending
    finally:
        if server.process is not None and server.process.stdout is not None:
            read_output(server.process.stdout, "\0", timeout=0.5)
        server.stop()


def test_log_queue_writes_from_one_thread_and_stops_cleanly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    before = threading.active_count()
    try:
        configure_logging(Settings(log_format="json"), force=True)
        configure_logging(Settings(log_format="json"), force=True)
        assert threading.active_count() == before + 1, "a new setup replaces the old writer"
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("seizure_stats.x").exception("failed %s", "here", extra={"n": 3})
        stop_log_queue()
        assert threading.active_count() == before
        line = json.loads(stream.getvalue().splitlines()[-1])
        assert (line["level"], line["logger"], line["message"], line["n"]) == (
            "ERROR",
            "seizure_stats.x",
            "failed here",
            3,
        )
        assert line["exception"].endswith("ValueError: boom")
        # Once stopped, records are written directly, still filtered and formatted.
        logging.getLogger("seizure_stats.x").warning("late")
        assert json.loads(stream.getvalue().splitlines()[-1])["message"] == "late"
        stop_log_queue()
    finally:
        stop_log_queue()
        root.handlers, level = saved
        root.setLevel(level)

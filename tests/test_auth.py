"""API tokens: writes need a write token, reads are open unless configured otherwise."""

from __future__ import annotations

import hashlib
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.api import datasets, reports, scans, stats
from app.api.bodies import BodyGuardRoute
from app.auth import TOKEN_PATTERN, create_token, hash_token, revoke_tokens
from app.cli import main
from app.config import Settings
from app.db import write_session
from app.main import create_app
from app.models import ApiToken
from seizure_stats.client import APIError, SeizureStatsClient
from tests.conftest import make_token
from tests.support import manifests
from tests.support.servers import live_server
from tests.support.uploads import load

MANIFEST = json.dumps(manifests.SMALL)
# POST routes that only read: their filters are too long for a URL.
READS_BY_POST = {
    "/api/v1/datasets/{dataset}/stats",
    "/api/v1/datasets/{dataset}/balanced",
    "/api/v1/datasets/{dataset}/balanced/index",
    "/api/v1/datasets/{dataset}/breakdown",
    "/api/v1/datasets/{dataset}/histogram",
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def anonymous(settings: Settings) -> Iterator[TestClient]:
    """A client of the app that sends no token."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def read_token(settings: Settings) -> str:
    return make_token(settings.resolved_database_url, "test-reader", "read")


def writes(dataset: str = "small") -> list[tuple[str, dict[str, Any]]]:
    """One request for every write endpoint, as (path, keyword arguments of client.post)."""
    return [
        ("/api/v1/datasets", {"json": {"name": "created"}}),
        (f"/api/v1/datasets/{dataset}/snapshots", {"content": MANIFEST}),
        (
            f"/api/v1/datasets/{dataset}/presence",
            {"json": {"missing": ["aaaaaaaa_s002_t000_windows.npz"]}},
        ),
    ]


def state(client: TestClient) -> Any:
    """Everything a write could have changed."""
    return (
        client.get("/api/v1/datasets").json(),
        client.get("/api/v1/datasets/small/stats").json(),
    )


@pytest.mark.parametrize(
    ("headers", "challenge"),
    [
        ({}, 'Bearer realm="seizure-stats"'),
        (bearer("sst_0123456789ab_" + "A" * 43), 'error="invalid_token"'),
        (bearer("not-a-token"), 'error="invalid_token"'),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 'Bearer realm="seizure-stats"'),
    ],
    ids=["missing", "unknown", "malformed", "basic-auth"],
)
def test_writes_without_a_valid_token_are_401_and_change_nothing(
    client: TestClient, anonymous: TestClient, headers: dict[str, str], challenge: str
) -> None:
    assert client.post("/api/v1/datasets/small/snapshots", content=MANIFEST).status_code == 201
    before = state(anonymous)
    for path, kwargs in writes():
        response = anonymous.post(path, headers=headers, **kwargs)
        assert response.status_code == 401, (path, response.text)
        assert response.json()["error"] == "unauthorized"
        assert challenge in response.headers["WWW-Authenticate"]
    assert state(anonymous) == before


def test_wrong_secret_with_a_real_lookup_is_401(anonymous: TestClient, write_token: str) -> None:
    lookup = TOKEN_PATTERN.match(write_token).group(1)  # type: ignore[union-attr]
    forged = f"sst_{lookup}_" + "B" * 43
    response = anonymous.post("/api/v1/datasets", json={"name": "x"}, headers=bearer(forged))
    assert response.status_code == 401
    assert forged not in response.text


def test_a_read_token_cannot_write(anonymous: TestClient, read_token: str) -> None:
    for path, kwargs in writes():
        response = anonymous.post(path, headers=bearer(read_token), **kwargs)
        assert response.status_code == 403, (path, response.text)
        assert response.json()["error"] == "forbidden"
        assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    assert anonymous.get("/api/v1/datasets").json() == []


def test_a_write_token_writes(anonymous: TestClient, write_token: str) -> None:
    created = anonymous.post("/api/v1/datasets", json={"name": "d"}, headers=bearer(write_token))
    assert created.status_code == 201, created.text
    imported = anonymous.post(
        "/api/v1/datasets/d/snapshots", content=MANIFEST, headers=bearer(write_token)
    )
    assert imported.status_code == 201, imported.text
    presence = anonymous.post(
        "/api/v1/datasets/d/presence",
        json={"missing": ["aaaaaaaa_s002_t000_windows.npz"]},
        headers=bearer(write_token),
    )
    assert presence.status_code == 200, presence.text
    assert anonymous.get("/api/v1/datasets/d/stats").json()["counts"]["total"] == 8


def test_a_revoked_token_stops_working_at_once(
    anonymous: TestClient, factory: sessionmaker[Session], write_token: str
) -> None:
    ok = anonymous.post("/api/v1/datasets", json={"name": "a"}, headers=bearer(write_token))
    assert ok.status_code == 201
    with write_session(factory) as session:
        revoke_tokens(session, "test-writer")
    refused = anonymous.post("/api/v1/datasets", json={"name": "b"}, headers=bearer(write_token))
    assert refused.status_code == 401


def test_reads_are_open_by_default(client: TestClient, anonymous: TestClient) -> None:
    assert client.post("/api/v1/datasets/small/snapshots", content=MANIFEST).status_code == 201
    for path in (
        "/api/v1/datasets",
        "/api/v1/datasets/small",
        "/api/v1/datasets/small/snapshots",
        "/api/v1/datasets/small/recordings",
        "/api/v1/datasets/small/stats",
        "/api/v1/datasets/small/balanced",
        "/api/v1/datasets/small/balanced/index",
    ):
        assert anonymous.get(path).status_code == 200, path
    posted = anonymous.post("/api/v1/datasets/small/stats", json={"patient": ["bbbbbbbb"]})
    assert posted.status_code == 200
    assert posted.json()["counts"]["total"] == 3


def test_require_read_token(
    settings: Settings, write_token: str, read_token: str, anonymous: TestClient
) -> None:
    assert (
        anonymous.post(
            "/api/v1/datasets/small/snapshots", content=MANIFEST, headers=bearer(write_token)
        ).status_code
        == 201
    )
    strict = settings.model_copy(update={"require_read_token": True})
    with TestClient(create_app(strict)) as guarded:
        for path in ("/api/v1/datasets", "/api/v1/datasets/small/stats"):
            refused = guarded.get(path)
            assert refused.status_code == 401, path
            assert refused.headers["WWW-Authenticate"].startswith("Bearer")
            assert guarded.get(path, headers=bearer("sst_x")).status_code == 401
            assert guarded.get(path, headers=bearer(read_token)).status_code == 200
            assert guarded.get(path, headers=bearer(write_token)).status_code == 200
        body = {"patient": ["bbbbbbbb"]}
        stats_path = "/api/v1/datasets/small/stats"
        assert guarded.post(stats_path, json=body).status_code == 401
        assert guarded.post(stats_path, json=body, headers=bearer(read_token)).status_code == 200
        # Writes still need the write scope; probes stay open for the orchestrator.
        refused = guarded.post("/api/v1/datasets", json={"name": "x"}, headers=bearer(read_token))
        assert refused.status_code == 403
        for probe in ("/healthz", "/readyz", "/metrics"):
            assert guarded.get(probe).status_code == 200, probe


UNSAFE_METHODS = ("post", "put", "patch", "delete")


def documented_operations(client: TestClient) -> list[tuple[str, str]]:
    """(method, concrete path) of every API operation in the OpenAPI schema."""
    operations = []
    for template, methods in client.get("/openapi.json").json()["paths"].items():
        path = re.sub(r"\{[^}]+\}", "1", template)
        operations += [(method, path) for method in methods if template.startswith("/api/")]
        if template in READS_BY_POST:
            operations = [(m, p) for m, p in operations if (m, p) != ("post", path)]
    return operations


def test_every_write_route_requires_a_write_token(anonymous: TestClient) -> None:
    """Any endpoint that may change something, present or future, refuses a request without a
    token before it looks at the request: it must take WriteTokenDep (or be listed as a read)."""
    unsafe = [(m, p) for m, p in documented_operations(anonymous) if m in UNSAFE_METHODS]
    assert len(unsafe) >= 3
    for method, path in unsafe:
        response = anonymous.request(method, path, json={})
        assert response.status_code == 401, (method, path, response.text)


def test_with_require_read_token_every_read_needs_a_token(settings: Settings) -> None:
    strict = settings.model_copy(update={"require_read_token": True})
    with TestClient(create_app(strict)) as guarded:
        reads = [(m, p) for m, p in documented_operations(guarded) if m == "get"]
        reads += [("post", re.sub(r"\{[^}]+\}", "1", p)) for p in READS_BY_POST]
        assert len(reads) >= 9
        for method, path in reads:
            response = guarded.request(method, path, json={})
            assert response.status_code == 401, (method, path, response.text)


def test_only_a_hash_is_stored(factory: sessionmaker[Session], engine: Engine) -> None:
    with write_session(factory) as session:
        new = create_token(session, "jobs", "write")
    assert TOKEN_PATTERN.match(new.token)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM api_tokens")).mappings().all()
    assert len(rows) == 1
    assert rows[0]["token_hash"] == hashlib.sha256(new.token.encode()).hexdigest()
    # The secret part may itself contain '_': take it as the pattern does, not by splitting.
    match = TOKEN_PATTERN.match(new.token)
    assert match is not None
    secret = match.group(2)
    assert all(secret not in str(value) for value in rows[0].values())


def test_token_rules(factory: sessionmaker[Session]) -> None:
    from app.errors import ConflictError, InvalidRequestError

    with write_session(factory) as session:
        first = create_token(session, "jobs", "read")
    with pytest.raises(ConflictError), write_session(factory) as session:
        create_token(session, "jobs", "write")
    for bad_name in ("1jobs", "", "with space", "x" * 65):
        with pytest.raises(InvalidRequestError), write_session(factory) as session:
            create_token(session, bad_name, "read")
    with pytest.raises(InvalidRequestError), write_session(factory) as session:
        create_token(session, "admin", "admin")
    with write_session(factory) as session:
        assert [r.id for r in revoke_tokens(session, str(first.identity.id))] == [first.identity.id]
    with pytest.raises(InvalidRequestError), write_session(factory) as session:
        revoke_tokens(session, "jobs")
    # Once revoked, the name is free again.
    with write_session(factory) as session:
        second = create_token(session, "jobs", "write")
    assert second.token != first.token
    assert hash_token(second.token) != hash_token(first.token)


def test_token_commands(
    database_url: str, monkeypatch: pytest.MonkeyPatch, factory: sessionmaker[Session]
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    runner = CliRunner()
    created = runner.invoke(main, ["token", "create", "--name", "ci", "--scope", "write"])
    assert created.exit_code == 0, created.output
    token = created.stdout.split()[-1]
    assert TOKEN_PATTERN.match(token)
    with write_session(factory) as session:
        row = session.scalars(select(ApiToken)).one()
        assert (row.name, row.scope, row.token_hash) == ("ci", "write", hash_token(token))

    listed = runner.invoke(main, ["token", "list"])
    assert listed.exit_code == 0, listed.output
    assert "ci" in listed.output
    assert "active" in listed.output
    assert token not in listed.output
    as_json = json.loads(runner.invoke(main, ["token", "list", "--json"]).stdout)
    assert [(t["name"], t["scope"], t["revoked_at"]) for t in as_json] == [("ci", "write", None)]
    assert token.startswith(as_json[0]["prefix"].rstrip("…"))

    duplicate = runner.invoke(main, ["token", "create", "--name", "ci"])
    assert duplicate.exit_code == 1
    assert "already" in duplicate.output or "exists" in duplicate.output

    revoked = runner.invoke(main, ["token", "revoke", "ci"])
    assert revoked.exit_code == 0, revoked.output
    assert "revoked token" in revoked.output
    again = runner.invoke(main, ["token", "revoke", "ci"])
    assert again.exit_code == 1
    listed = runner.invoke(main, ["token", "list", "--json"])
    assert json.loads(listed.stdout)[0]["revoked_at"] is not None


def test_client_sends_the_token_from_the_argument_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Authorization"))
        return httpx.Response(401, json={"error": "unauthorized", "detail": "no"})

    transport = httpx.MockTransport(handler)

    def call(token: str | None = None) -> None:
        client = SeizureStatsClient("http://stats", token=token, transport=transport, retries=0)
        with client, pytest.raises(APIError) as refused:
            client.datasets()
        assert refused.value.status_code == 401

    monkeypatch.setenv("SEIZURE_STATS_TOKEN", "from-env")
    call()
    call("explicit")
    monkeypatch.delenv("SEIZURE_STATS_TOKEN")
    call()
    assert seen == ["Bearer from-env", "Bearer explicit", None]


def security_of(client: TestClient) -> dict[tuple[str, str], Any]:
    spec = client.get("/openapi.json").json()
    return {
        (method, path): operation.get("security", "not declared")
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
        if path.startswith("/api/")
    }


def test_openapi_says_which_operations_need_a_token(
    anonymous: TestClient, settings: Settings
) -> None:
    """Open reads document no requirement (no padlock in Swagger UI); writes require the token."""
    open_reads = security_of(anonymous)
    writes = {("post", p) for m, p in open_reads if m == "post" and p not in READS_BY_POST}
    assert len(writes) == 4  # datasets, snapshots, presence, scan-parts
    for operation, security in open_reads.items():
        if operation in writes:
            assert security == [{"HTTPBearer": []}], operation
        else:
            assert security == [], operation
    strict = settings.model_copy(update={"require_read_token": True})
    with TestClient(create_app(strict)) as guarded:
        assert all(s == [{"HTTPBearer": []}] for s in security_of(guarded).values())


class HugeBody:
    """A valid JSON presence report of exactly `size` bytes, produced as it is sent."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        piece = b'"p0000000_s001_t000_windows.npz", ' * 30_000  # about 1 MiB
        head, tail = b'{"missing": [', b'"last.npz"]}'
        self.sent = len(head)
        yield head
        while self.sent + len(piece) + len(tail) <= self.size:
            self.sent += len(piece)
            yield piece
        padding = b" " * (self.size - self.sent - len(tail))
        self.sent = self.size
        yield padding + tail


def answer_to_a_body_begun(port: int, path: str, size: int, *, declared: bool, token: str) -> bytes:
    """Announce a body of `size` bytes, send its first MiB, and wait for an answer."""
    framing = f"Content-Length: {size}" if declared else "Transfer-Encoding: chunked"
    authorization = f"Authorization: Bearer {token}\r\n" if token else ""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"{authorization}{framing}\r\n\r\n"
    ).encode()
    piece = b'{"missing": [' + b'"p0000000_s001_t000_windows.npz", ' * 30_000
    if not declared:
        piece = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + piece)
        try:
            return sock.recv(4096)
        except TimeoutError:
            return b"(no answer in 10 s: the server waits for the rest of the body)"


@pytest.mark.e2e
@pytest.mark.slow
def test_no_body_is_read_before_its_token_is_checked(database_url: str, tmp_path: Path) -> None:
    """FastAPI reads and parses a body parameter before it runs any dependency: a 279 MB body
    without a token took the server to 1.1 GB before its 401. It is refused from its headers."""
    token = make_token(database_url, "body-writer", "write")
    reader = make_token(database_url, "body-reader", "read")
    size = 279 * 1024**2
    env = {"SEIZURE_STATS_REQUIRE_READ_TOKEN": "true"}
    with live_server(database_url, tmp_path, env) as server:
        load(server.url, "small", manifests.SMALL, token=token)
        baseline = server.peak_rss_bytes()
        # Answered while almost all of the body is still to come.
        for path, presented, status in [
            ("/api/v1/datasets/small/presence", "", b"401"),
            ("/api/v1/datasets/small/presence", reader, b"403"),  # valid, but may not write
            ("/api/v1/datasets", "", b"401"),
            ("/api/v1/datasets/small/stats", "", b"401"),  # reads need a token here
            ("/api/v1/datasets/small/balanced/index", "sst_0123456789ab_" + "A" * 43, b"401"),
        ]:
            for declared in (True, False):  # Content-Length, or chunked without one
                answer = answer_to_a_body_begun(
                    server.port, path, size, declared=declared, token=presented
                )
                assert answer.startswith(b"HTTP/1.1 " + status), (path, declared, answer[:200])
        # Sent whole, the bodies are drained, never held.
        for path, declared in [("presence", True), ("presence", False), ("stats", False)]:
            body = HugeBody(size)
            headers = {"Content-Type": "application/json"}
            if declared:
                headers["Content-Length"] = str(size)
            response = httpx.post(
                f"{server.url}/api/v1/datasets/small/{path}",
                content=iter(body),
                headers=headers,
                timeout=120,
            )
            assert response.status_code == 401, (path, declared, response.text[:200])
            assert response.json()["error"] == "unauthorized"
            assert body.sent == size
        grown = server.peak_rss_bytes() - baseline
        assert grown < 32 * 1024**2, f"peak RSS grew by {grown / 2**20:.0f} MiB"
        assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_every_json_body_is_read_after_the_token_check(anonymous: TestClient) -> None:
    """FastAPI reads a body parameter before any dependency; the routes that take one are
    BodyGuardRoutes, which check the token first and bound the body (app.api.bodies)."""
    routes = {
        (route.path, method.lower()): route
        for router in (datasets.router, stats.router, reports.router, scans.router)
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    with_bodies = [
        (path, method)
        for path, operations in anonymous.get("/openapi.json").json()["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation
    ]
    assert len(with_bodies) == 9
    parsed_by_fastapi = [key for key in with_bodies if routes[key].body_field is not None]
    assert len(parsed_by_fastapi) == 7
    assert all(isinstance(routes[key], BodyGuardRoute) for key in parsed_by_fastapi)

"""Hostile requests: every one gets a 4xx that names the problem, or an exact answer; never a 5xx,
never a match that should not be, and nothing changes that should not."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests import manifests
from tests.test_ingest import answers

SMALL = json.dumps(manifests.SMALL)


@pytest.fixture
def small(client: TestClient) -> TestClient:
    assert client.post("/api/v1/datasets/small/snapshots", content=SMALL).status_code == 201
    return client


def test_nul_characters_are_refused_not_sent_to_the_database(small: TestClient) -> None:
    """Postgres cannot compare text holding NUL: these were 500s there (and matched nothing on
    SQLite). No name can contain one, so a value with one is refused, a dataset name is unknown."""
    before = answers(small, "small")
    refused: list[tuple[str, str, dict[str, Any] | None, str]] = [
        ("GET", "/api/v1/datasets/small/stats?patient=%00", None, "patient.0"),
        ("GET", "/api/v1/datasets/small/stats?recording=a%00b.npz", None, "recording.0"),
        ("GET", "/api/v1/datasets/small/stats?session=s001,aaaaaaaa%00_s001", None, "session.1"),
        ("GET", "/api/v1/datasets/small/balanced?exclude_patient=%00", None, "exclude_patient.0"),
        ("GET", "/api/v1/datasets/small/balanced/index?patient=x%00", None, "patient.0"),
        (
            "POST",
            "/api/v1/datasets/small/stats",
            {"patient": ["x"] * 300 + ["\x00"]},
            "patient.300",
        ),
        ("POST", "/api/v1/datasets/small/balanced", {"recording": ["\x00"]}, "recording.0"),
        ("POST", "/api/v1/datasets/small/presence", {"missing": ["a\x00.npz"]}, "missing.0"),
        ("POST", "/api/v1/datasets", {"name": "nul", "description": "a\x00b"}, "description"),
        ("POST", "/api/v1/datasets/small/snapshots?source=%00", None, "source"),
    ]
    for method, path, body, named in refused:
        if method == "GET":
            response = small.get(path)
        elif body is None:
            response = small.post(path, content=SMALL)
        else:
            response = small.post(path, json=body)
        assert response.status_code == 422, (path, response.text)
        assert named in response.json()["detail"], response.text
        assert "NUL" in response.json()["detail"], response.text
    for path in (
        "/api/v1/datasets/%00",
        "/api/v1/datasets/a%00/stats",
        "/api/v1/datasets/%00/balanced/index",
        "/api/v1/datasets/a%00b/snapshots/1",
        "/api/v1/datasets/%00/recordings",
    ):
        response = small.get(path)
        assert response.status_code == 404, (path, response.text)
    assert small.post("/api/v1/datasets/%00/presence", json={"missing": ["x"]}).status_code == 404
    assert small.post("/api/v1/datasets/%00/snapshots", content=SMALL).status_code == 422
    assert answers(small, "small") == before
    assert [d["name"] for d in small.get("/api/v1/datasets").json()] == ["small"]

"""Hostile requests: every one gets a 4xx that names the problem, or an exact answer; never a 5xx,
never a match that should not be, and nothing changes that should not."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests import manifests, oracle
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


def load_generated(client: TestClient, seed: int = 21) -> dict[str, Any]:
    manifest = manifests.generated(seed, recordings=60)
    response = client.post("/api/v1/datasets/gen/snapshots", content=json.dumps(manifest))
    assert response.status_code == 201, response.text
    return manifest


def test_thousands_of_qualified_sessions(client: TestClient) -> None:
    """3,000 `patient_session` values: an OR of pairs was too deep an expression for SQLite (500)."""
    manifest = load_generated(client)
    names = manifests.recordings_of(manifest)
    real = sorted(
        {f"{p}_{s}" for n in names if (s := oracle.names_of(n)[2]) for p in [oracle.names_of(n)[1]]}
    )
    tricky = ["a_b_s001", "_s001", f"{oracle.names_of(names[0])[1]}_", "%_s001", "*_s00%", "_"]
    fakes = [f"p{i:06d}_s{i % 9:03d}" for i in range(3000)]
    sessions = fakes[:1500] + real[:5] + tricky + fakes[1500:]
    expected = oracle.expected_stats(manifest, set(), {"session": sessions})
    assert expected["counts"]["total"] > 0
    answer = client.post("/api/v1/datasets/gen/stats", json={"session": sessions})
    assert answer.status_code == 200, answer.text
    for field in ("counts", "seizure_ratio", "pos_weight", "recordings"):
        assert answer.json()[field] == expected[field], field
    balanced = client.post(
        "/api/v1/datasets/gen/balanced/index", json={"session": sessions, "seed": 3}
    )
    assert balanced.status_code == 200, balanced.text
    got = [(e["cache_file"], e["window_idx"]) for e in map(json.loads, balanced.text.splitlines())]
    assert got == oracle.expected_balanced(manifest, set(), {"session": sessions}, seed=3)[1]
    only_tricky = client.post("/api/v1/datasets/gen/stats", json={"session": tricky}).json()
    assert only_tricky["counts"]["total"] == 0


def test_booleans_are_not_numbers(client: TestClient) -> None:
    """JSON true was taken for 1: `{"snapshot": true}` answered about snapshot 1."""
    load_generated(client)
    for path, body, named in [
        ("/api/v1/datasets/gen/stats", {"snapshot": True}, "snapshot"),
        ("/api/v1/datasets/gen/stats", {"weighting": "effective", "beta": False}, "beta"),
        ("/api/v1/datasets/gen/balanced", {"seed": True}, "seed"),
        ("/api/v1/datasets/gen/balanced", {"full_ratio": True}, "full_ratio"),
        ("/api/v1/datasets/gen/balanced/index", {"background_ratio": False}, "background_ratio"),
        ("/api/v1/datasets", {"name": "booleans", "full_threshold": True}, "full_threshold"),
    ]:
        response = client.post(path, json=body)
        assert response.status_code == 422, (body, response.text)
        assert named in response.json()["detail"]
        assert "not a boolean" in response.json()["detail"]
    snapshot = client.get("/api/v1/datasets/gen").json()["current_snapshot"]["id"]
    assert client.post("/api/v1/datasets/gen/stats", json={"snapshot": snapshot}).status_code == 200

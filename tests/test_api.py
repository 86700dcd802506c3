"""HTTP surface: the contract's routes, dataset management, upload limits and error shapes."""

from __future__ import annotations

import functools
import gzip
import json
import zlib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.support import manifests

CONTRACT_ROUTES = {
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/api/v1/datasets"),
    ("post", "/api/v1/datasets"),
    ("get", "/api/v1/datasets/{dataset}"),
    ("post", "/api/v1/datasets/{dataset}/snapshots"),
    ("get", "/api/v1/datasets/{dataset}/snapshots"),
    ("get", "/api/v1/datasets/{dataset}/snapshots/{snapshot_id}"),
    ("get", "/api/v1/datasets/{dataset}/stats"),
    ("post", "/api/v1/datasets/{dataset}/stats"),
    ("get", "/api/v1/datasets/{dataset}/balanced"),
    ("get", "/api/v1/datasets/{dataset}/balanced/index"),
}
STATS_REQUIRED = {
    "dataset",
    "snapshot",
    "content_hash",
    "counts",
    "samples",
    "seizure_ratio",
    "sample_ratio",
    "weighting",
    "basis",
    "pos_weight",
    "recordings",
    "missing_windows",
    "warnings",
}


def test_openapi_lists_every_contract_route(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    routes = {(method, path) for path, item in spec["paths"].items() for method in item}
    assert routes >= CONTRACT_ROUTES
    stats_schema = spec["components"]["schemas"]["StatsResponse"]
    assert set(stats_schema["required"]) >= STATS_REQUIRED


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ok"


def test_readiness_reports_a_database_behind_on_migrations(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    with TestClient(create_app(Settings(database_url=url))) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert "db upgrade" in response.json()["detail"]


def test_create_list_and_get_datasets(client: TestClient) -> None:
    created = client.post("/api/v1/datasets", json={"name": "tusz-dev", "full_threshold": 0.95})
    assert created.status_code == 201
    assert created.json()["current_snapshot"] is None
    assert client.post("/api/v1/datasets", json={"name": "tusz-dev"}).status_code == 409
    client.post("/api/v1/datasets/tusz-train/snapshots", content=json.dumps(manifests.SMALL))
    listed = client.get("/api/v1/datasets").json()
    assert [d["name"] for d in listed] == ["tusz-dev", "tusz-train"]
    train = client.get("/api/v1/datasets/tusz-train").json()
    assert train["snapshots"] == 1
    assert train["current_snapshot"]["counts"]["total"] == 12
    assert train["created_at"].endswith("Z")
    dev_stats = client.get("/api/v1/datasets/tusz-dev/stats")
    assert dev_stats.status_code == 404
    assert "no snapshot" in dev_stats.json()["detail"]


@pytest.mark.parametrize("name", ["", "-x", "a/b", "a b", "x" * 129, "../etc", "ä"])
def test_invalid_dataset_names(client: TestClient, name: str) -> None:
    response = client.post("/api/v1/datasets", json={"name": name})
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


def test_threshold_of_the_dataset_checks_sample_counts(client: TestClient) -> None:
    client.post("/api/v1/datasets", json={"name": "strict", "full_threshold": 0.5})
    entry = {"cache_file": "a.npz", "window_idx": 0, "n_pos": 6, "n_samples": 10}
    as_partial = {"partial_seizure": [entry], "full_seizure": [], "no_seizure": []}
    refused = client.post("/api/v1/datasets/strict/snapshots", content=json.dumps(as_partial))
    assert refused.status_code == 422
    assert "threshold 0.5" in refused.json()["detail"]
    as_full = {"partial_seizure": [], "full_seizure": [entry], "no_seizure": []}
    assert (
        client.post("/api/v1/datasets/strict/snapshots", content=json.dumps(as_full)).status_code
        == 201
    )


def test_snapshot_listing_and_lookup(client: TestClient) -> None:
    first = client.post(
        "/api/v1/datasets/ds/snapshots?source=nightly", content=json.dumps(manifests.SMALL)
    ).json()
    second = client.post(
        "/api/v1/datasets/ds/snapshots", content=json.dumps(manifests.generated(1))
    ).json()
    listed = client.get("/api/v1/datasets/ds/snapshots").json()
    assert [s["id"] for s in listed] == [second["id"], first["id"]]
    assert [s["current"] for s in listed] == [True, False]
    one = client.get(f"/api/v1/datasets/ds/snapshots/{first['id']}").json()
    assert one["source"] == "nightly"
    assert one["content_hash"] == first["content_hash"]
    assert client.get("/api/v1/datasets/other/snapshots/1").status_code == 404
    assert client.get(f"/api/v1/datasets/ds/snapshots/{second['id'] + 100}").status_code == 404


def test_recordings_and_presence(client: TestClient) -> None:
    client.post("/api/v1/datasets/ds/snapshots", content=json.dumps(manifests.SMALL))
    result = client.post(
        "/api/v1/datasets/ds/presence",
        json={"missing": ["bbbbbbbb_s001_t001_windows.npz", "ghost.npz"]},
    ).json()
    assert result["updated"] == 1
    assert result["unknown"] == ["ghost.npz"]
    recordings = client.get("/api/v1/datasets/ds/recordings").json()
    assert [(r["patient"], r["session"], r["present"]) for r in recordings] == [
        ("aaaaaaaa", "s001", None),
        ("aaaaaaaa", "s002", None),
        ("bbbbbbbb", "s001", False),
    ]
    assert client.post("/api/v1/datasets/ds/presence", json={"absent": []}).status_code == 422


@pytest.fixture
def small_limit_client(database_url: str, tmp_path: Path, write_token: str) -> TestClient:
    settings = Settings(database_url=database_url, data_dir=tmp_path, max_upload_bytes=50_000)
    return TestClient(create_app(settings), headers={"Authorization": f"Bearer {write_token}"})


def test_body_over_the_limit_is_413_and_changes_nothing(small_limit_client: TestClient) -> None:
    client = small_limit_client
    assert (
        client.post(
            "/api/v1/datasets/ds/snapshots", content=json.dumps(manifests.SMALL)
        ).status_code
        == 201
    )
    big = json.dumps(manifests.generated(3, recordings=400)).encode()
    assert len(big) > 50_000
    response = client.post("/api/v1/datasets/ds/snapshots", content=big)
    assert response.status_code == 413
    assert "50000" in response.json()["detail"]

    def chunks() -> object:
        yield big[:1000]
        yield big[1000:]

    streamed = client.post("/api/v1/datasets/ds/snapshots", content=chunks())  # no Content-Length
    assert streamed.status_code == 413
    assert len(client.get("/api/v1/datasets/ds/snapshots").json()) == 1


@functools.cache
def gzip_bomb() -> bytes:
    """1 GiB of spaces inside a valid JSON document, gzipped to about 1 MB."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [compressor.compress(b'{"no_seizure": [')]
    block = b" " * (1024 * 1024)
    parts += [compressor.compress(block) for _ in range(1024)]
    parts.append(compressor.compress(b"]}") + compressor.flush())
    return b"".join(parts)


def test_gzip_bomb_is_refused_early(client: TestClient) -> None:
    bomb = gzip_bomb()
    assert len(bomb) < 2_000_000
    response = client.post(
        "/api/v1/datasets/ds/snapshots", content=bomb, headers={"Content-Encoding": "gzip"}
    )
    assert response.status_code == 413
    assert "decompression bomb" in response.json()["detail"]


@pytest.mark.parametrize(
    ("data", "headers", "status", "message"),
    [
        (b"", {}, 400, "empty"),
        (b"not gzip at all", {"Content-Encoding": "gzip"}, 400, "gzip"),
        (gzip.compress(b'{"a": 1}', mtime=0)[:-6], {"Content-Encoding": "gzip"}, 400, "truncated"),
        (b"{}", {"Content-Encoding": "br"}, 400, "Content-Encoding"),
    ],
)
def test_unreadable_bodies(
    client: TestClient, data: bytes, headers: dict[str, str], status: int, message: str
) -> None:
    response = client.post("/api/v1/datasets/ds/snapshots", content=data, headers=headers)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]


def test_errors_share_one_shape(client: TestClient) -> None:
    for response in (
        client.get("/api/v1/datasets/nope"),
        client.get("/no/such/route"),
        client.get("/api/v1/datasets/nope/stats?weighting=bad"),
        client.post("/api/v1/datasets", json={"nme": "x"}),
    ):
        body = response.json()
        assert set(body) == {"error", "detail"}, body
        assert 400 <= response.status_code < 500

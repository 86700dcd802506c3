"""ETags, 304s and the per-process answer cache: answers follow the current snapshot and presence."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from tests import manifests, oracle

STATS = "/api/v1/datasets/ds/stats"


def post(client: TestClient, manifest: dict[str, object]) -> int:
    response = client.post("/api/v1/datasets/ds/snapshots", content=json.dumps(manifest))
    assert response.status_code in (200, 201), response.text
    return int(response.json()["id"])


def test_etag_and_not_modified(client: TestClient) -> None:
    post(client, manifests.SMALL)
    first = client.get(STATS + "?patient=aaaaaaaa")
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "no-cache"
    again = client.get(STATS + "?patient=aaaaaaaa", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    other = client.get(STATS + "?patient=bbbbbbbb", headers={"If-None-Match": etag})
    assert other.status_code == 200
    assert other.headers["etag"] != etag


def test_equal_filters_share_an_etag(client: TestClient) -> None:
    post(client, manifests.SMALL)
    a = client.get(STATS + "?patient=bbbbbbbb,aaaaaaaa&category=seizure")
    b = client.get(
        STATS + "?patient=aaaaaaaa&patient=bbbbbbbb&category=full_seizure,partial_seizure"
    )
    assert a.headers["etag"] == b.headers["etag"]
    assert a.json() == b.json()
    posted = client.post(STATS, json={"patient": ["aaaaaaaa", "bbbbbbbb"], "category": ["seizure"]})
    assert posted.headers["etag"] == a.headers["etag"]


def test_pinned_snapshot_may_be_cached(client: TestClient) -> None:
    first = post(client, manifests.SMALL)
    pinned = client.get(f"{STATS}?snapshot={first}")
    assert pinned.headers["cache-control"] == "public, max-age=300"


def test_a_new_current_snapshot_changes_the_answer_and_etag(client: TestClient) -> None:
    post(client, manifests.SMALL)
    before = client.get(STATS)
    assert before.json()["counts"]["total"] == 12
    other = manifests.generated(6)
    post(client, other)
    after = client.get(STATS, headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200
    assert after.json()["counts"] == oracle.expected_stats(other, set())["counts"]
    balanced_after = client.get("/api/v1/datasets/ds/balanced").json()
    assert balanced_after["snapshot"] == after.json()["snapshot"]
    post(client, manifests.SMALL)  # re-import: the first snapshot is current again
    assert client.get(STATS).json() == before.json()


def test_presence_updates_change_cached_answers(client: TestClient) -> None:
    post(client, manifests.SMALL)
    before = client.get(STATS)
    balanced_before = client.get("/api/v1/datasets/ds/balanced").json()
    client.post(
        "/api/v1/datasets/ds/presence", json={"missing": ["aaaaaaaa_s002_t000_windows.npz"]}
    )
    after = client.get(STATS, headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200
    assert after.json()["missing_windows"] == 4
    balanced_after = client.get("/api/v1/datasets/ds/balanced").json()
    assert (
        balanced_after["counts"]["partial_seizure"]
        == balanced_before["counts"]["partial_seizure"] - 1
    )


def test_index_supports_etags(client: TestClient) -> None:
    post(client, manifests.SMALL)
    first = client.get("/api/v1/datasets/ds/balanced/index")
    assert first.status_code == 200
    again = client.get(
        "/api/v1/datasets/ds/balanced/index", headers={"If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304
    as_json = client.get("/api/v1/datasets/ds/balanced/index?format=json")
    assert as_json.headers["etag"] != first.headers["etag"]


def test_writes_from_another_process_are_seen(client: TestClient, database_url: str) -> None:
    """An import through another engine (as the CLI or another worker would) shows up."""
    import io
    import time

    from app.db import make_engine, make_session_factory
    from app.ingest.importer import import_manifest

    post(client, manifests.SMALL)
    assert client.get(STATS).json()["counts"]["total"] == 12
    other = manifests.generated(12)
    engine = make_engine(database_url)
    try:
        outcome = import_manifest(
            make_session_factory(engine), "ds", io.BytesIO(json.dumps(other).encode())
        )
    finally:
        engine.dispose()
    # SQLite sees it on the next request; Postgres once the NOTIFY arrives (milliseconds).
    deadline = time.monotonic() + 2
    while client.get(STATS).json()["snapshot"] != outcome.snapshot.id:
        assert time.monotonic() < deadline, "the new snapshot never became visible"
        time.sleep(0.01)
    assert client.get(STATS).json()["counts"] == oracle.expected_stats(other, set())["counts"]

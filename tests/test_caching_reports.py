"""Breakdowns, CSV exports, histograms, diffs and the index share the path of stats: ETags, 304s
and the answer cache, with presence in the key of every answer that reads it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.api import answer_path
from app.api.answer_cache import ENTRY_OVERHEAD_BYTES, Answer, AnswerCache, StreamedAnswer
from tests.support import manifests, oracle
from tests.support.uploads import load

BASE = "/api/v1/datasets/ds"
MISSING = "aaaaaaaa_s002_t000_windows.npz"


def post(client: TestClient, manifest: dict[str, Any]) -> int:
    return load(client, "ds", manifest, expect=(200, 201))


@pytest.fixture
def computed(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """The kind and snapshots of every answer computed afresh rather than served from memory."""
    calls: list[tuple[str, ...]] = []
    real = answer_path.compute_answer

    def counting(*args: Any, **kwargs: Any) -> Any:
        question = kwargs["question"]
        calls.append((question.key[0], *map(str, question.snapshot_ids)))
        return real(*args, **kwargs)

    monkeypatch.setattr(answer_path, "compute_answer", counting)
    return calls


def with_samples(client: TestClient) -> dict[str, Any]:
    manifest = manifests.generated(5, recordings=8, with_samples=True)
    post(client, manifest)
    return manifest


def routes(a: int, b: int) -> list[str]:
    return [
        f"{BASE}/breakdown?by=patient",
        f"{BASE}/breakdown?by=recording&format=csv",
        f"{BASE}/histogram?bins=5",
        f"{BASE}/snapshots/{a}/diff/{b}",
        f"{BASE}/balanced/index",
    ]


def test_every_read_answers_304_to_its_etag_and_is_computed_once(
    client: TestClient, computed: list[tuple[str, ...]]
) -> None:
    a = post(client, manifests.generated(4, recordings=20, with_samples=True))
    b = post(client, manifests.generated(5, recordings=20, with_samples=True))
    for route in routes(a, b):
        first = client.get(route)
        assert first.status_code == 200, (route, first.text)
        etag = first.headers["etag"]
        again = client.get(route, headers={"If-None-Match": etag})
        assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
        cached = client.get(route)
        assert cached.content == first.content
        assert cached.headers["etag"] == etag
        assert cached.headers["content-type"] == first.headers["content-type"]
    assert computed == [
        ("breakdown", str(b)),
        ("breakdown-csv", str(b)),
        ("histogram", str(b)),
        ("diff", str(a), str(b)),
        ("index-jsonl-gzip", str(b)),  # the test client accepts gzip
    ]


def test_cached_exports_keep_their_headers(client: TestClient) -> None:
    manifest = with_samples(client)
    route = f"{BASE}/breakdown?by=recording&format=csv"
    first, cached = client.get(route), client.get(route)
    assert len(client.app.state.answer_cache) == 1
    for name in ("x-snapshot", "x-content-hash", "x-total-groups", "content-disposition"):
        assert cached.headers[name] == first.headers[name]
    assert cached.headers["x-total-groups"] == str(len(manifests.recordings_of(manifest)))
    assert cached.headers["content-type"] == "text/csv; charset=utf-8"
    lines = cached.text.splitlines()
    assert len(lines) == 1 + len(manifests.recordings_of(manifest))


def test_get_and_post_share_an_answer(client: TestClient, computed: list[tuple[str, ...]]) -> None:
    with_samples(client)
    for route, params, body in [
        ("breakdown", "by=session&limit=3", {"by": "session", "limit": 3}),
        ("histogram", "bins=4", {"bins": 4}),
    ]:
        got = client.get(f"{BASE}/{route}?{params}")
        posted = client.post(f"{BASE}/{route}", json=body)
        assert posted.status_code == 200, posted.text
        assert posted.headers["etag"] == got.headers["etag"]
        assert posted.content == got.content
    assert [kind for kind, _ in computed] == ["breakdown", "histogram"]


def after_marking_missing(
    client: TestClient, name: str, route: str, before: httpx.Response
) -> httpx.Response:
    """The answer to `route` once `name` is marked missing: a new one, under a new tag."""
    marked = client.post(f"{BASE}/presence", json={"missing": [name]})
    assert marked.status_code == 200, marked.text
    after = client.get(route, headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200
    assert after.headers["etag"] != before.headers["etag"]
    return after


def test_presence_changes_the_etags_of_what_reads_it(client: TestClient) -> None:
    a = post(client, manifests.generated(6))
    b = post(client, manifests.SMALL)
    breakdown = client.get(f"{BASE}/breakdown?by=patient")
    diff = client.get(f"{BASE}/snapshots/{a}/diff/{b}")
    assert diff.headers["cache-control"] == "public, max-age=300"
    assert breakdown.headers["cache-control"] == "no-cache"
    assert breakdown.json()["missing_windows"] == 0
    after = after_marking_missing(client, MISSING, f"{BASE}/breakdown?by=patient", breakdown)
    expected = oracle.expected_breakdown(manifests.SMALL, {MISSING}, None, "patient")
    assert [g["missing_windows"] for g in after.json()["groups"]] == [
        g["missing_windows"] for g in expected
    ]
    assert after.json()["missing_windows"] == 4
    # A diff reads windows, never presence: its answer and tag stand.
    same = client.get(
        f"{BASE}/snapshots/{a}/diff/{b}", headers={"If-None-Match": diff.headers["etag"]}
    )
    assert same.status_code == 304


def test_presence_changes_the_histogram(client: TestClient) -> None:
    manifest = with_samples(client)
    name = manifests.recordings_of(manifest)[0]
    before = client.get(f"{BASE}/histogram?bins=5")
    after = after_marking_missing(client, name, f"{BASE}/histogram?bins=5", before)
    zero, counts = oracle.expected_histogram(manifest, {name}, None, 5)
    assert (after.json()["zero"], [b["count"] for b in after.json()["bins"]]) == (zero, counts)
    windows = sum(e["cache_file"] == name for entries in manifest.values() for e in entries)
    assert after.json()["missing_windows"] == windows > 0


def test_an_answer_larger_than_the_budget_is_sent_whole_and_not_kept(client: TestClient) -> None:
    post(client, manifests.generated(7, recordings=30))
    # Uncompressed, so that the answer sent is as large as the body measured.
    plain = {"Accept-Encoding": "identity"}
    whole = client.get(f"{BASE}/balanced/index", headers=plain)
    client.app.state.answer_cache = AnswerCache(100, max_bytes=len(whole.content) // 2)
    again = client.get(f"{BASE}/balanced/index", headers=plain)
    assert again.content == whole.content
    assert len(client.app.state.answer_cache) == 0


def test_streamed_answers_are_held_whole_only_while_they_fit() -> None:
    headers = {"X-Snapshot": "1"}
    fits = Answer(b"", "text/csv", headers).cost + 6
    cache = AnswerCache(10, max_bytes=fits)
    assert cache.size_bytes == 0

    def streamed(*chunks: bytes) -> StreamedAnswer:
        return StreamedAnswer(iter(chunks), "text/csv", headers)

    held = answer_path.held_if_it_fits(cache, streamed(b"abc", b"def"))
    assert held == Answer(b"abcdef", "text/csv", headers)
    assert held.cost == fits == 6 + len("X-Snapshot") + 1 + ENTRY_OVERHEAD_BYTES
    # One byte more: sent as the stream it was, nothing lost of what was read to find out.
    too_large = answer_path.held_if_it_fits(cache, streamed(b"abc", b"defg", b"h"))
    assert isinstance(too_large, StreamedAnswer)
    assert list(too_large.chunks) == [b"abc", b"defg", b"h"]
    assert (too_large.media_type, too_large.headers) == ("text/csv", headers)


def test_openapi_documents_not_modified(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for route in ("breakdown", "histogram", "snapshots/{a}/diff/{b}", "stats", "balanced/index"):
        assert "304" in paths[f"/api/v1/datasets/{{dataset}}/{route}"]["get"]["responses"], route


def test_a_streamed_answer_that_fits_is_framed_alike_computed_and_kept(
    client: TestClient, computed: list[tuple[str, ...]]
) -> None:
    """Held whole where it is computed, the index and the CSV export carry a Content-Length,
    on GET and on HEAD, the first time as when served from the cache."""
    post(client, manifests.SMALL)
    plain = {"Accept-Encoding": "identity"}  # so that Content-Length is the length of the body
    for path, kind in (
        (f"{BASE}/balanced/index?seed=3", "index-jsonl"),
        (f"{BASE}/breakdown?by=patient&format=csv", "breakdown-csv"),
    ):
        first = client.get(path, headers=plain)
        again, head = client.get(path, headers=plain), client.head(path, headers=plain)
        assert [call[0] for call in computed].count(kind) == 1, computed
        for response in (first, again, head):
            assert response.status_code == 200, response.text
            assert "transfer-encoding" not in response.headers, path
        assert int(first.headers["content-length"]) == len(first.content) > 0
        assert again.content == first.content
        assert again.headers["content-length"] == head.headers["content-length"]
        assert head.headers["content-length"] == first.headers["content-length"]
        assert head.content == b""

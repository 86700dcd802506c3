"""Bodies past the limits (gzip bombs, oversized manifests and JSON, with or without a length):
refused early by a real server, with flat memory."""

from __future__ import annotations

import gzip
import json
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import manifests, oracle
from tests.support.servers import live_server
from tests.support.uploads import load

LIMIT = 32 * 1024**2


def gzip_bomb(inflated_gib: int) -> bytes:
    """A valid gzip stream of `{"no_seizure": [` and then gigabytes of spaces, in a few MB.

    Full flushes make each 1 MiB block of spaces compress to the same bytes, so the stream is
    those bytes repeated; it never ends properly, but a server must refuse it long before.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    head = compressor.compress(b'{"no_seizure": [') + compressor.flush(zlib.Z_FULL_FLUSH)
    compressor.compress(b" " * 2**20)
    compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(b" " * 2**20) + compressor.flush(zlib.Z_FULL_FLUSH)
    return head + block * (1024 * inflated_gib)


@pytest.mark.e2e
@pytest.mark.slow
def test_uploads_over_the_limits_are_refused_early_with_flat_memory(
    database_url: str, tmp_path: Path, write_token: str
) -> None:
    auth = {"Authorization": f"Bearer {write_token}"}
    env = {"SEIZURE_STATS_MAX_UPLOAD_BYTES": str(LIMIT)}
    with live_server(database_url, tmp_path, env) as server:
        snapshots = f"{server.url}/api/v1/datasets/ds/snapshots"
        load(server.url, "ds", manifests.SMALL, token=write_token)
        before = httpx.get(f"{server.url}/api/v1/datasets/ds/stats").json()
        baseline_rss = server.peak_rss_bytes()

        bomb = gzip_bomb(4)
        assert len(bomb) < 5 * 1024**2  # 4 GiB inflated
        started = time.monotonic()
        refused = httpx.post(
            snapshots, content=bomb, headers=auth | {"Content-Encoding": "gzip"}, timeout=60
        )
        assert time.monotonic() - started < 10
        assert refused.status_code == 413, refused.text
        assert "decompression bomb" in refused.json()["detail"]

        # Under the bomb ratio, but over the limit once inflated: refused at the limit.
        entries = ", ".join(
            f'{{"cache_file": "a{i % 977}_windows.npz", "window_idx": {i}}}' for i in range(800_000)
        )
        big = gzip.compress(
            f'{{"partial_seizure": [], "full_seizure": [], "no_seizure": [{entries}]}}'.encode(), 1
        )
        assert len(big) < LIMIT // 4
        too_big = httpx.post(
            snapshots, content=big, headers=auth | {"Content-Encoding": "gzip"}, timeout=60
        )
        assert too_big.status_code == 413, too_big.text
        assert f"limit of {LIMIT} bytes" in too_big.json()["detail"]

        plain = b'{"no_seizure": [' + b" " * (LIMIT + 1) + b"]}"
        declared = httpx.post(snapshots, content=plain, headers=auth, timeout=60)
        assert declared.status_code == 413, declared.text

        def chunks() -> Iterator[bytes]:
            for start in range(0, len(plain), 2**20):
                yield plain[start : start + 2**20]

        streamed = httpx.post(snapshots, content=chunks(), headers=auth, timeout=60)
        assert streamed.status_code == 413, streamed.text

        grown = server.peak_rss_bytes() - baseline_rss
        assert grown < 64 * 1024**2, f"peak RSS grew by {grown / 2**20:.0f} MiB"
        assert httpx.get(f"{server.url}/api/v1/datasets/ds/stats").json() == before
        assert len(httpx.get(snapshots).json()) == 1


BODY_LIMIT = 4 * 1024**2
# Every route whose JSON body FastAPI would read whole, with a body of the right shape.
JSON_BODY_ROUTES = {
    "/api/v1/datasets/ds/presence": "missing",
    "/api/v1/datasets/ds/stats": "recording",
    "/api/v1/datasets/ds/balanced": "recording",
    "/api/v1/datasets/ds/balanced/index": "recording",
    "/api/v1/datasets/ds/breakdown": "recording",
    "/api/v1/datasets/ds/histogram": "recording",
    "/api/v1/datasets": "description",
}


def json_body(field: str, size: int, last: tuple[str, ...] = ("last.npz",)) -> bytes:
    """A valid JSON object of exactly `size` bytes: a long value, or a list of unknown names
    ending with `last`, in `field`."""
    if field == "description":
        head, tail = b'{"name": "big", "description": "', b'"}'
        return head + b"d" * (size - len(head) - len(tail)) + tail
    head, tail = f'{{"{field}": ['.encode(), b"]}"
    # 64 bytes an item: a body of a few MiB stays under the 100,000 values a filter may hold.
    item, end = (
        b'"nobody_s001_t000_windows_' + b"x" * 30 + b'.npz", ',
        ", ".join(map(json.dumps, last)).encode(),
    )
    body = head + item * ((size - len(head) - len(end) - len(tail)) // len(item)) + end
    return body + b" " * (size - len(body) - len(tail)) + tail


@pytest.mark.e2e
def test_json_bodies_past_the_limit_are_413_with_or_without_a_length(
    database_url: str, tmp_path: Path, write_token: str
) -> None:
    auth = {"Authorization": f"Bearer {write_token}", "Content-Type": "application/json"}
    env = {"SEIZURE_STATS_MAX_BODY_BYTES": str(BODY_LIMIT)}
    manifest = manifests.generated(21, recordings=60)
    with live_server(database_url, tmp_path, env) as server:
        load(server.url, "ds", manifest, token=write_token)
        before = httpx.get(f"{server.url}/api/v1/datasets/ds/stats").json()
        for path, field in JSON_BODY_ROUTES.items():
            over = json_body(field, BODY_LIMIT + 1)
            assert len(over) == BODY_LIMIT + 1
            json.loads(over)

            def pieces(body: bytes = over) -> Iterator[bytes]:
                for start in range(0, len(body), 2**20):
                    yield body[start : start + 2**20]

            declared = httpx.post(f"{server.url}{path}", content=over, headers=auth, timeout=60)
            chunked = httpx.post(f"{server.url}{path}", content=pieces(), headers=auth, timeout=60)
            for response in (declared, chunked):
                assert response.status_code == 413, (path, response.text[:200])
                assert response.json() == {
                    "error": "payload_too_large",
                    "detail": f"request body exceeds the limit of {BODY_LIMIT} bytes "
                    "(SEIZURE_STATS_MAX_BODY_BYTES)",
                }
        # At the limit exactly: answered, and exactly.
        names = manifests.recordings_of(manifest)[:9]
        at_limit = json_body("recording", BODY_LIMIT, tuple(names))
        assert len(at_limit) == BODY_LIMIT
        answered = httpx.post(
            f"{server.url}/api/v1/datasets/ds/stats", content=at_limit, headers=auth, timeout=60
        )
        assert answered.status_code == 200, answered.text[:300]
        expected = oracle.expected_stats(manifest, set(), {"recording": names})
        assert answered.json()["counts"] == expected["counts"]
        assert httpx.get(f"{server.url}/api/v1/datasets/ds/stats").json() == before
        assert [d["name"] for d in httpx.get(f"{server.url}/api/v1/datasets").json()] == ["ds"]

"""The balanced index as numpy columns (format=npz) and gzip-compressed text, each equal, entry
for entry, to an independent balanced selection over the manifest."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.api.streams import accepts_gzip
from seizure_stats.client import SeizureStatsClient, UnmatchedFilterError, UnmatchedFilterWarning
from tests.conftest import make_token
from tests.support import manifests, oracle
from tests.support.uploads import load

INDEX = "/api/v1/datasets/gen/balanced/index"


def entries_of(arrays: Any) -> list[tuple[str, int]]:
    names = [str(name) for name in arrays["cache_files"]]
    return [
        (names[recording], idx)
        for recording, idx in zip(
            arrays["recording"].tolist(), arrays["window_idx"].tolist(), strict=True
        )
    ]


def lines_of(body: bytes) -> list[tuple[str, int]]:
    return [(e["cache_file"], e["window_idx"]) for e in map(json.loads, body.splitlines())]


@pytest.fixture
def loaded(client: TestClient) -> tuple[dict[str, Any], set[str]]:
    manifest = manifests.generated(23, recordings=90)
    missing = set(manifests.recordings_of(manifest)[:7])
    load(client, "gen", manifest, missing)
    return manifest, missing


def test_npz_columns_equal_the_selection(
    client: TestClient, loaded: tuple[dict[str, Any], set[str]]
) -> None:
    manifest, missing = loaded
    filters = {"exclude_patient": [oracle.names_of(manifests.recordings_of(manifest)[20])[1]]}
    _, expected = oracle.expected_balanced(manifest, missing, filters, seed=7)
    response = client.get(INDEX, params={**filters, "seed": 7, "format": "npz"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-npz"
    assert "content-encoding" not in response.headers
    with np.load(io.BytesIO(response.content), allow_pickle=False) as arrays:
        assert arrays["recording"].dtype == np.int32
        assert arrays["window_idx"].dtype == np.int32
        names = arrays["cache_files"].tolist()
        assert names == sorted(set(names))  # each name once, sorted
        assert len(arrays["recording"]) == len(expected)
        assert entries_of(arrays) == expected
    posted = client.post(INDEX, params={"format": "npz"}, json={**filters, "seed": 7})
    assert posted.content == response.content
    typo = client.get(INDEX, params={"patient": "nobody", "format": "npz"})
    assert typo.status_code == 422  # nothing to balance around, and the likely cause named
    assert typo.json()["detail"] == (
        "the subset has no partial_seizure windows to balance around; unmatched_filter: "
        "patient: no recording of snapshot "
        f"{response.headers['x-snapshot']} matches 'nobody'"
    )
    named = client.get(INDEX, params={"exclude_patient": "nobody", "format": "npz"})
    assert named.headers["x-unmatched-filter"] == '{"exclude_patient":["nobody"]}'
    strict = client.get(INDEX, params={"exclude_patient": "nobody", "format": "npz", "strict": 1})
    assert strict.status_code == 422
    assert "nobody" in strict.json()["detail"]


def test_gzip_when_accepted_identity_otherwise(
    client: TestClient, loaded: tuple[dict[str, Any], set[str]]
) -> None:
    manifest, missing = loaded
    _, expected = oracle.expected_balanced(manifest, missing)
    plain = client.get(INDEX, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.headers["vary"] == "Accept-Encoding"
    assert lines_of(plain.content) == expected
    for attempt in range(2):  # computed, then served from the cache
        # Read the body as sent (the test client would inflate it): a real gzip stream.
        with client.stream("GET", INDEX, headers={"Accept-Encoding": "gzip"}) as zipped:
            assert zipped.headers["content-encoding"] == "gzip", attempt
            assert zipped.headers["vary"] == "Accept-Encoding"
            raw = b"".join(zipped.iter_raw())
        assert gzip.decompress(raw) == plain.content
        assert len(raw) < len(plain.content) / 3
    # Each encoding is a representation of its own: its own ETag, and 304 for its own only.
    tag = client.get(INDEX, headers={"Accept-Encoding": "gzip"}).headers["etag"]
    assert tag != plain.headers["etag"]
    again = client.get(INDEX, headers={"Accept-Encoding": "gzip", "If-None-Match": tag})
    assert again.status_code == 304
    other = client.get(INDEX, headers={"Accept-Encoding": "identity", "If-None-Match": tag})
    assert other.status_code == 200
    as_array = client.get(INDEX, params={"format": "json"}, headers={"Accept-Encoding": "gzip"})
    assert [(e["cache_file"], e["window_idx"]) for e in as_array.json()] == expected


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        ("gzip", True),
        ("gzip, deflate, br, zstd", True),
        ("br;q=1.0, GZIP;q=0.5", True),
        ("*", True),
        ("gzip;q=0", False),
        ("gzip;q=0.0, br", False),
        ("identity", False),
        ("", False),
        ("gzip;q=nonsense", False),
        ("*, gzip;q=0", False),
        ("gzip;q=0.2, *;q=0", True),
        ("br, *;q=0", False),
    ],
)
def test_accept_encoding_is_read_as_rfc_9110_says(header: str, accepted: bool) -> None:
    assert accepts_gzip(header) is accepted


@pytest.mark.e2e
def test_the_client_gets_the_same_index_both_ways(
    live_server: str, database_url: str, tmp_path: Path
) -> None:
    manifest = manifests.generated(29, recordings=80)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    names = manifests.recordings_of(manifest)
    token = make_token(database_url, "index-writer", "write")
    with SeizureStatsClient(live_server, token=token, retries=0) as client:
        client.import_manifest("gen", path)
        _, expected = oracle.expected_balanced(manifest, set(), seed=3)
        streamed = [(e.cache_file, e.window_idx) for e in client.balanced_index("gen", seed=3)]
        assert streamed == expected
        assert entries_of(client.balanced_index_arrays("gen", seed=3)) == expected
        # A filter too long for a URL goes in a POST body, the format still in the query.
        long_filter = names[:30] + [f"other_{i}" for i in range(3000)]
        _, kept = oracle.expected_balanced(manifest, set(), {"recording": long_filter})
        with pytest.raises(UnmatchedFilterError, match="other_0"):
            client.balanced_index_arrays("gen", recording=long_filter)
        with pytest.warns(UnmatchedFilterWarning, match="3000 filter value"):
            arrays = client.balanced_index_arrays("gen", recording=long_filter, strict=False)
        with pytest.warns(UnmatchedFilterWarning, match='"other_0"'):
            listed = list(client.balanced_index("gen", recording=long_filter, strict=False))
        assert [(e.cache_file, e.window_idx) for e in listed] == kept
        assert entries_of(arrays) == kept

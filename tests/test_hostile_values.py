"""Values the database cannot hold (NUL, lone surrogates, numbers past 64 bits): a 4xx naming
them, never a 500, and nothing changes."""

from __future__ import annotations

import gzip
import html
import json
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.scan.npz import storable_reason
from tests.support import manifests
from tests.support.uploads import load
from tests.test_ingest import answers

SMALL = json.dumps(manifests.SMALL)


@pytest.fixture
def small(client: TestClient) -> TestClient:
    load(client, "small", manifests.SMALL)
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


SURROGATE = "must not contain a lone surrogate (half of a UTF-16 pair, not a character)"


def post_raw_json(client: TestClient, path: str, body: str) -> Any:
    """`body` as written: JSON escapes such as \\ud800 reach the server untouched."""
    return client.post(path, content=body, headers={"Content-Type": "application/json"})


def test_lone_surrogates_in_json_bodies_are_refused_by_name(small: TestClient) -> None:
    """Python's JSON reader turns "\\ud800" into a string no database driver can encode: a 500."""
    before = answers(small, "small")
    cases = [
        (route, field, value, got)
        for route in ("stats", "balanced", "balanced/index", "breakdown", "histogram")
        for field, value, got in [
            ("patient", r'["\ud800"]', r"'\ud800'"),
            ("exclude_patient", r'["\udfff"]', r"'\udfff'"),
            ("session", r'["s001", "x\ud83d"]', r"'x\ud83d'"),
            ("recording", r'"a\udc00b.npz"', r"'a\udc00b.npz'"),
        ]
    ]
    for route, field, value, got in cases:
        response = post_raw_json(
            small, f"/api/v1/datasets/small/{route}", f'{{"{field}": {value}}}'
        )
        assert response.status_code == 422, (route, field, response.text)
        index = 1 if field == "session" else 0
        assert response.json() == {
            "error": "invalid_request",
            "detail": f"{field}.{index}: Value error, {SURROGATE} (got {got})",
        }, (route, field)
    for field in ("present", "missing"):
        response = post_raw_json(
            small, "/api/v1/datasets/small/presence", f'{{"{field}": ["ok", "\\ud800.npz"]}}'
        )
        assert response.status_code == 422, response.text
        assert response.json()["detail"] == (
            f"{field}.1: Value error, {SURROGATE} (got '\\ud800.npz')"
        )
    described = post_raw_json(small, "/api/v1/datasets", '{"name": "d", "description": "\\ud800"}')
    assert described.status_code == 422, described.text
    assert described.json()["detail"].startswith("description: ")
    # A surrogate pair is one character, and fine.
    paired = post_raw_json(small, "/api/v1/datasets/small/stats", '{"patient": ["\\ud83d\\ude00"]}')
    assert paired.status_code == 200, paired.text
    assert paired.json()["counts"]["total"] == 0
    assert answers(small, "small") == before


def manifest_with_name(name_json: str) -> bytes:
    """A manifest whose one window's cache_file is `name_json`, written as raw JSON text."""
    return (
        '{"partial_seizure": [{"cache_file": "ok_windows.npz", "window_idx": 0}], '
        f'"full_seizure": [], "no_seizure": [{{"cache_file": "{name_json}", "window_idx": 3}}]}}'
    ).encode()


@pytest.mark.parametrize(
    ("name_json", "escape"),
    [
        (r"a\ud800_windows.npz", r"\ud800"),
        (r"a\uDBFF_windows.npz", r"\uDBFF"),
        (r"a\udc00_windows.npz", r"\udc00"),
        (r"a\ud800\u0041_windows.npz", r"\ud800"),
        (r"\ude00\ud83d_windows.npz", r"\ude00"),
        (r"\\\ud800_windows.npz", r"\ud800"),
    ],
)
def test_a_manifest_name_with_a_lone_surrogate_is_refused_naming_the_entry(
    small: TestClient, name_json: str, escape: str
) -> None:
    """The JSON parser stored "a\\ud800" as "a?" (and "\\ud800\\u0041" as one wrong character)."""
    before = answers(small, "small")
    for encoding in ("identity", "gzip"):
        body = manifest_with_name(name_json)
        headers = {}
        if encoding == "gzip":
            body, headers = gzip.compress(body), {"Content-Encoding": "gzip"}
        response = small.post("/api/v1/datasets/small/snapshots", content=body, headers=headers)
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "invalid_manifest"
        assert response.json()["detail"] == (
            f"no_seizure[0].cache_file: contains the lone surrogate escape {escape} "
            "(half of a UTF-16 pair, not a character)"
        )
    assert answers(small, "small") == before


def test_escapes_that_are_not_lone_surrogates_keep_their_meaning(small: TestClient) -> None:
    names = {
        r"\ud83d\ude00_s001_t000_windows.npz": "\U0001f600_s001_t000_windows.npz",
        r"\uD83D\uDE00x_windows.npz": "\U0001f600x_windows.npz",
        r"caf\u00e9_windows.npz": "caf\u00e9_windows.npz",
    }
    for i, (written, stored) in enumerate(names.items()):
        response = small.post(
            f"/api/v1/datasets/e{i}/snapshots", content=manifest_with_name(written)
        )
        assert response.status_code == 201, response.text
        recordings = small.get(f"/api/v1/datasets/e{i}/recordings").json()
        assert sorted(r["cache_file"] for r in recordings) == sorted([stored, "ok_windows.npz"])
    # An escaped backslash before "ud800" is text, not an escape: here, an unknown key.
    text_key = (
        '{"partial_seizure": [{"cache_file": "ok_windows.npz", "window_idx": 0, '
        '"\\\\ud800": 1}], "full_seizure": [], "no_seizure": []}'
    )
    refused = small.post("/api/v1/datasets/k/snapshots", content=text_key)
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"].startswith("partial_seizure[0]: unknown key '\\\\ud800'")


BIG = str(2**63 + 5)


def test_dashboard_numbers_outside_the_contract_are_a_422_page(small: TestClient) -> None:
    """`²` passed str.isdigit() and then failed int(); an id past the integer column failed in
    the database."""
    for path, named in [
        ("/datasets/small?snapshot=%C2%B2", "snapshot"),
        ("/datasets/small?snapshot=%D9%A3", "snapshot"),
        ("/datasets/small?snapshot=abc", "snapshot"),
        (f"/datasets/small?snapshot={BIG}", "snapshot"),
        (f"/datasets/small?snapshot={2**31}", "snapshot"),
        ("/datasets/small?snapshot=0", "snapshot"),
        ("/datasets/small?offset=%C2%B2", "offset"),
        ("/datasets/small?offset=-1", "offset"),
        (f"/datasets/small?offset={BIG}", "offset"),
        (f"/datasets/small/snapshots/{BIG}/diff/1", "a"),
        (f"/datasets/small/snapshots/1/diff/{2**31}", "b"),
        ("/datasets/small/snapshots/%C2%B2/diff/1", "a"),
        (f"/datasets/small/diff?a={BIG}&b=1", "a"),
        ("/datasets/small/diff?a=1&b=%D9%A3", "b"),
    ]:
        response = small.get(path, follow_redirects=False)
        assert response.status_code == 422, (path, response.text[:300])
        assert response.headers["content-type"].startswith("text/html"), path
        detail = re.search(r'<p id="error-detail">(.*?)</p>', response.text)
        assert detail is not None, path
        assert html.unescape(detail.group(1)).startswith(f"{named}: "), (path, detail.group(1))
    assert small.get(f"/datasets/small?snapshot={2**31 - 1}").status_code == 404
    current = small.get("/api/v1/datasets/small").json()["current_snapshot"]["id"]
    assert small.get(f"/datasets/small?snapshot={current}&offset=0").status_code == 200
    assert small.get(f"/datasets/small/snapshots/{current}/diff/{current}").status_code == 200
    assert small.get("/datasets/small?snapshot=&offset=").status_code == 200


def test_api_ids_outside_the_contract_are_refused_by_name(small: TestClient) -> None:
    for path, named in [
        (f"/api/v1/datasets/small/snapshots/{BIG}/scan-issues", "path.snapshot_id"),
        (f"/api/v1/datasets/small/snapshots/{2**31}/scan-issues", "path.snapshot_id"),
        (f"/api/v1/datasets/small/snapshots/{BIG}/diff/1", "path.a"),
        (f"/api/v1/datasets/small/snapshots/1/diff/{2**31}", "path.b"),
        ("/api/v1/datasets/small/scans/a%00b", "path.scan_id"),
        ("/api/v1/datasets/small/scans/" + "x" * 65, "path.scan_id"),
    ]:
        response = small.get(path)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["error"] == "invalid_request"
        assert response.json()["detail"].startswith(f"{named}: "), response.text
    assert small.get("/api/v1/datasets/small/scans/nightly-1").status_code == 404


@pytest.mark.parametrize(
    ("size", "mtime_ns", "named"),
    [
        (2**63, 1, "files.0.size"),
        (1, 2**63, "files.0.mtime_ns"),
        (1, -(2**63) - 1, "files.0.mtime_ns"),
        (-1, 1, "files.0.size"),
    ],
)
def test_scan_file_numbers_past_64_bits_are_refused(
    small: TestClient, size: int, mtime_ns: int, named: str
) -> None:
    entry = {"cache_file": "a_s001_t000_windows.npz", "status": "ok", "n_samples": 10}
    part = {"scan_id": "s1", "files": [entry | {"size": size, "mtime_ns": mtime_ns, "n_pos": [3]}]}
    response = small.post("/api/v1/datasets/scanned/scan-parts", content=json.dumps(part))
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(f"scan part: {named}: "), response.text
    edge = {"size": 2**63 - 1, "mtime_ns": -(2**63), "n_pos": [3]}
    accepted = small.post(
        "/api/v1/datasets/scanned/scan-parts",
        content=json.dumps({"scan_id": "s2", "files": [entry | edge]}),
    )
    assert accepted.status_code == 200, accepted.text


def test_a_scan_file_reason_with_nul_is_refused(small: TestClient) -> None:
    """Postgres cannot store text holding NUL: a scanner's reason with one was a 500."""
    good = {"cache_file": "a_s001_t000_windows.npz", "size": 1, "mtime_ns": 1, "status": "ok"}
    bad = {"cache_file": "b_windows.npz", "size": 1, "mtime_ns": 1, "status": "unreadable"}
    part = {
        "scan_id": "s1",
        "files": [good | {"n_samples": 10, "n_pos": [3]}, bad | {"reason": "x\x00"}],
    }
    response = small.post("/api/v1/datasets/scanned/scan-parts", content=json.dumps(part))
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == (
        "scan part: files.1.reason: Value error, must not contain NUL characters (1 problem(s))"
    )


def test_the_scanner_writes_reasons_the_service_accepts(small: TestClient) -> None:
    """What a failed read says comes from the file or the OS: NUL and undecodable names are
    escaped, and it is cut at the 500 characters a reason may have."""
    reason = storable_reason("ValueError: bad \x00 in a\udcff.npz " + "x" * 600)
    assert reason == ("ValueError: bad \\x00 in a\\udcff.npz " + "x" * 600)[:500]
    bad = {"cache_file": "b_windows.npz", "size": 1, "mtime_ns": 1, "status": "unreadable"}
    good = {"cache_file": "a_s001_t000_windows.npz", "size": 1, "mtime_ns": 1, "status": "ok"}
    files = [good | {"n_samples": 10, "n_pos": [3]}, bad | {"reason": reason}]
    response = small.post(
        "/api/v1/datasets/scanned/scan-parts", content=json.dumps({"scan_id": "s", "files": files})
    )
    assert response.status_code == 200, response.text
    assert response.json()["issues"][0]["reason"] == reason

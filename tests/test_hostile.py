"""Hostile requests: every one gets a 4xx that names the problem, or an exact answer; never a 5xx,
never a match that should not be, and nothing changes that should not."""

from __future__ import annotations

import asyncio
import gzip
import html
import json
import re
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.scan.npz import storable_reason
from app.schemas import questions as schemas
from app.schemas.scans import ScanPartIn
from tests.conftest import make_token
from tests.support import manifests, oracle
from tests.support.servers import live_server
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


# -- hostile queries -------------------------------------------------------------------------

STATS = "/api/v1/datasets/gen/stats"
BALANCED = "/api/v1/datasets/gen/balanced"
INDEX = "/api/v1/datasets/gen/balanced/index"

# (path and query, what the 422 must name)
REFUSED_QUERIES: list[tuple[str, str]] = [
    (f"{STATS}?limit=3", "'limit'"),
    (f"{STATS}?Patient=x", "'Patient'"),
    (f"{STATS}?patient[]=x", "'patient[]'"),
    (f"{STATS}?__proto__=1", "'__proto__'"),
    (f"{STATS}?snapshot_id=1", "'snapshot_id'"),
    (f"{STATS}?format=json", "'format'"),
    (f"{STATS}?seed=1", "'seed'"),
    (f"{BALANCED}?basis=window", "'basis'"),
    (f"{INDEX}?formats=json", "'formats'"),
    (f"{STATS}?weighting=SQRT", "weighting"),
    (f"{STATS}?weighting=", "weighting"),
    (f"{STATS}?weighting=sqrt%27%20OR%201%3D1", "weighting"),
    (f"{STATS}?basis=Window", "basis"),
    (f"{STATS}?category=Seizure", "category"),
    (f"{STATS}?category=partial", "category"),
    (f"{STATS}?category=seizure,no_seizure%27--", "category"),
    (f"{STATS}?category=" + "&category=".join(["seizure"] * 5), "category"),
    (f"{STATS}?beta=abc", "beta"),
    (f"{STATS}?beta=", "beta"),
    (f"{STATS}?beta=1", "beta"),
    (f"{STATS}?beta=0.99999999999999999", "beta"),
    (f"{STATS}?beta=1e309", "beta"),
    (f"{STATS}?beta=-1e-300", "beta"),
    (f"{STATS}?beta=inf", "beta"),
    (f"{STATS}?beta=nan", "beta"),
    (f"{STATS}?beta=0x1p-3", "beta"),
    (f"{STATS}?snapshot=-1", "snapshot"),
    (f"{STATS}?snapshot=1e3", "snapshot"),
    (f"{STATS}?snapshot=" + "9" * 5000, "snapshot"),
    (f"{BALANCED}?seed=-1", "seed"),
    (f"{BALANCED}?seed=1.5", "seed"),
    (f"{BALANCED}?seed={2**63}", "seed"),
    (f"{BALANCED}?seed=" + "9" * 5000, "seed"),
    (f"{BALANCED}?full_ratio=-0.1", "full_ratio"),
    (f"{BALANCED}?full_ratio=inf", "full_ratio"),
    (f"{BALANCED}?full_ratio=nan", "full_ratio"),
    (f"{BALANCED}?background_ratio=1e7", "background_ratio"),
    (f"{INDEX}?format=xml", "format"),
    (f"{INDEX}?format=json&format=jsonl&weighting=x", "weighting"),
]
REFUSED_BODIES: list[tuple[str, Any, str]] = [
    (STATS, {"patients": ["x"]}, "patients"),
    (STATS, {"patient": "x", "limit": 3}, "limit"),
    (STATS, {"patient": {"$ne": 1}}, "patient"),
    (STATS, {"patient": [1, 2]}, "patient.0"),
    (STATS, {"patient": [["x"]]}, "patient.0"),
    (STATS, {"patient": [None]}, "patient.0"),
    (STATS, {"category": ["seizure", "SEIZURE"]}, "category.1"),
    (STATS, {"weighting": None}, "weighting"),
    (STATS, {"beta": 1}, "beta"),
    (STATS, {"beta": "0.5; DROP TABLE windows"}, "beta"),
    (STATS, {"beta": 1e308}, "beta"),
    (STATS, {"snapshot": True}, "snapshot"),
    (BALANCED, {"seed": False}, "seed"),
    (STATS, ["patient"], "body"),
    (STATS, "patient=x", "body"),
    (STATS, None, "body"),
    (STATS, {"recording": [f"r{i}" for i in range(100_001)]}, "at most 100000"),
    (BALANCED, {"seed": 2**64}, "seed"),
    (BALANCED, {"seed": -1}, "seed"),
    (BALANCED, {"full_ratio": "NaN"}, "full_ratio"),
    (BALANCED, {"background_ratio": 1e300}, "background_ratio"),
    (INDEX, {"format": "json"}, "format"),
]


def assert_refused(response: Any, named: str) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_request", body
    assert named in body["detail"], body


def test_unknown_parameters_and_values_are_refused_by_name(client: TestClient) -> None:
    load_generated(client)
    before = answers(client, "gen")
    for query, named in REFUSED_QUERIES:
        assert_refused(client.get(query), named)
    for path, body, named in REFUSED_BODIES:
        assert_refused(client.post(path, json=body), named)
    assert answers(client, "gen") == before


# Values that look like SQL, patterns or near misses: each is a name no recording has.
NEAR_MISSES = [
    "' OR 1=1 --",
    "' OR '1'='1",
    '" OR ""="',
    "x'); DROP TABLE windows; --",
    "1; SELECT pg_sleep(5)",
    "x;drop=1",
    "%",
    "_",
    "*",
    "?",
    "\\",
    "[a-z]*",
    ".*",
    "$ne",
    "null",
    "NULL",
    "undefined",
    "\u0430\u0430\u0430",  # Cyrillic lookalikes
    "\ufeff",
    "\U0001f600",
    "x" * 10_000,
]


def near_misses_of(value: str) -> list[str]:
    """Wildcard and case variants of a real name: none of them may match it."""
    variants = [
        value.upper() if value != value.upper() else value.lower(),
        value[:-1] + "%",
        value[:-1] + "_",
        "%" + value[1:],
        value + "%",
        value[:-1],
        value + "'",
        value + "\\",
        value.replace("_", "%"),
        value.replace("_", "_%"),
    ]
    return [v for v in variants if v != value]


def test_sql_patterns_and_near_misses_match_nothing(client: TestClient) -> None:
    manifest = load_generated(client)
    names = manifests.recordings_of(manifest)
    tusz = [n for n in names if oracle.names_of(n)[2]]
    patient = oracle.names_of(tusz[0])[1]
    stem, _, session = oracle.names_of(tusz[0])
    assert session is not None
    everything = oracle.expected_stats(manifest, set(), {})["counts"]
    cases: dict[str, list[str]] = {
        "patient": NEAR_MISSES + near_misses_of(patient),
        "session": NEAR_MISSES + near_misses_of(session) + near_misses_of(f"{patient}_{session}"),
        "recording": NEAR_MISSES + near_misses_of(tusz[0]) + near_misses_of(stem),
    }
    tried = 0
    for field, values in cases.items():
        for value in values:
            if "," in value:
                continue
            tried += 1
            got = client.get(STATS, params={field: value})
            assert got.status_code == 200, (field, value, got.text)
            assert got.json()["counts"]["total"] == 0, (field, value)
            posted = client.post(STATS, json={field: [value]}).json()
            assert posted["counts"]["total"] == 0, (field, value)
            excluded = client.get(STATS, params={"exclude_patient": value}).json()
            assert excluded["counts"] == everything, value
        # All of them at once, with one real value among them: exactly that value's windows.
        real = {"patient": patient, "session": session, "recording": stem}[field]
        mixed = [v for v in values if "," not in v] + [real]
        expected = oracle.expected_stats(manifest, set(), {field: mixed})
        answer = client.post(STATS, json={field: mixed}).json()
        assert answer["counts"] == expected["counts"]
        assert answer["counts"]["total"] > 0
    assert tried >= 70


def test_thousands_of_filter_values_in_a_url_and_in_a_body(client: TestClient) -> None:
    manifest = load_generated(client)
    names = manifests.recordings_of(manifest)
    wanted = [f"no{i}" for i in range(2500)] + names[3:9]
    expected = oracle.expected_stats(manifest, set(), {"recording": wanted})
    assert expected["counts"]["total"] > 0
    by_get = client.get(STATS, params=[("recording", n) for n in wanted])
    by_commas = client.get(STATS, params={"recording": ",".join(wanted)})
    by_post = client.post(STATS, json={"recording": wanted})
    for response in (by_get, by_commas, by_post):
        assert response.status_code == 200, response.text
        assert response.json()["counts"] == expected["counts"]
        assert response.json()["pos_weight"] == expected["pos_weight"]
    patients = [f"nobody{i}" for i in range(100_000)]
    everyone = client.post(STATS, json={"exclude_patient": patients}).json()
    assert everyone["counts"] == oracle.expected_stats(manifest, set(), {})["counts"]
    nobody = client.post(STATS, json={"patient": patients}).json()
    assert nobody["counts"]["total"] == 0
    index = client.post(INDEX, json={"recording": wanted, "seed": 9})
    got = [(e["cache_file"], e["window_idx"]) for e in map(json.loads, index.text.splitlines())]
    assert got == oracle.expected_balanced(manifest, set(), {"recording": wanted}, seed=9)[1]


@pytest.mark.parametrize("beta", [0.0, 5e-324, 1e-300, 0.5, 0.999999, 1 - 2**-53])
def test_absurd_beta_gives_the_exact_effective_weight(client: TestClient, beta: float) -> None:
    manifest = load_generated(client)
    answer = client.get(STATS, params={"weighting": "effective", "beta": repr(beta)})
    assert answer.status_code == 200, answer.text
    expected = oracle.expected_stats(manifest, set(), {}, weighting="effective", beta=beta)
    assert answer.json()["pos_weight"] == expected["pos_weight"]
    assert answer.json()["beta"] == beta
    balanced = client.get(BALANCED, params={"weighting": "effective", "beta": repr(beta)})
    assert balanced.status_code == 200, balanced.text


@pytest.mark.parametrize(
    ("full_ratio", "background_ratio", "seed"),
    [
        (0, 0, 0),
        (1_000_000, 1_000_000, 2**63 - 1),
        (5e-324, 1e-300, 1),
        (0.9999999999999999, 999_999.99, 123456789012345678),
    ],
)
def test_absurd_ratios_and_seeds_give_the_exact_selection(
    client: TestClient, full_ratio: float, background_ratio: float, seed: int
) -> None:
    manifest = load_generated(client)
    params = {
        "full_ratio": repr(full_ratio),
        "background_ratio": repr(background_ratio),
        "seed": seed,
    }
    counts, order = oracle.expected_balanced(
        manifest, set(), full_ratio=full_ratio, background_ratio=background_ratio, seed=seed
    )
    answer = client.get(BALANCED, params=params)
    assert answer.status_code == 200, answer.text
    assert answer.json()["counts"]["total"] == sum(counts.values())
    index = client.get(INDEX, params=params)
    assert [
        (e["cache_file"], e["window_idx"]) for e in map(json.loads, index.text.splitlines())
    ] == order


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


# -- against a real server: memory and the HTTP layer ----------------------------------------

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
    database_url: str, tmp_path: Path
) -> None:
    token = make_token(database_url, "hostile-writer", "write")
    auth = {"Authorization": f"Bearer {token}"}
    env = {"SEIZURE_STATS_MAX_UPLOAD_BYTES": str(LIMIT)}
    with live_server(database_url, tmp_path, env) as server:
        snapshots = f"{server.url}/api/v1/datasets/ds/snapshots"
        assert httpx.post(snapshots, content=SMALL, headers=auth).status_code == 201
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


@pytest.mark.e2e
def test_long_urls_against_a_real_server(database_url: str, tmp_path: Path) -> None:
    token = make_token(database_url, "hostile-writer", "write")
    manifest = manifests.generated(21, recordings=60)
    with live_server(database_url, tmp_path) as server:
        loaded = httpx.post(
            f"{server.url}/api/v1/datasets/gen/snapshots",
            content=json.dumps(manifest),
            headers={"Authorization": f"Bearer {token}"},
        )
        assert loaded.status_code == 201
        wanted = [f"no{i}" for i in range(2500)] + manifests.recordings_of(manifest)[:7]
        query = "&".join(f"recording={name}" for name in wanted)
        assert len(query) > 40_000
        answer = httpx.get(f"{server.url}{STATS}?{query}")
        assert answer.status_code == 200, answer.text
        assert (
            answer.json()["counts"]
            == oracle.expected_stats(manifest, set(), {"recording": wanted})["counts"]
        )

        # Past what the HTTP layer reads in a request line: a 4xx, and the server carries on.
        huge = "&".join(f"recording=no{i}" for i in range(10_000))
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(
                f"GET {STATS}?{huge} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
            )
            reply = sock.recv(4096)
        assert reply.startswith(b"HTTP/1.1 4"), reply[:100]
        assert httpx.get(f"{server.url}/healthz").status_code == 200


# -- inputs the database cannot hold: a 4xx naming them, never a 500 -------------------------

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
    database_url: str, tmp_path: Path
) -> None:
    token = make_token(database_url, "body-writer", "write")
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    env = {"SEIZURE_STATS_MAX_BODY_BYTES": str(BODY_LIMIT)}
    manifest = manifests.generated(21, recordings=60)
    with live_server(database_url, tmp_path, env) as server:
        loaded = httpx.post(
            f"{server.url}/api/v1/datasets/ds/snapshots", content=json.dumps(manifest), headers=auth
        )
        assert loaded.status_code == 201
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


def test_large_bodies_are_parsed_off_the_event_loop(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 20 MB scan part parsed on the event loop stalled every other request (/healthz for about
    0.5 s); so did a large JSON body. Both are parsed, and validated, in a worker thread."""
    from app.api import bodies, scans

    assert client.post("/api/v1/datasets/ds/snapshots", content=SMALL).status_code == 201
    on_the_loop: list[str] = []
    parsed_in_threads: list[str] = []

    def loop_running() -> bool:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False
        return True

    real_loads, real_part = json.loads, ScanPartIn.model_validate_json
    real_split, real_load = schemas.split_values, bodies.load_json

    def spy_loads(text: Any, *args: Any, **kwargs: Any) -> Any:
        if len(text) > 2**20 and loop_running():
            on_the_loop.append(f"json.loads of {len(text)} bytes")
        return real_loads(text, *args, **kwargs)

    def spy_part(data: Any, *args: Any, **kwargs: Any) -> ScanPartIn:
        if loop_running():
            on_the_loop.append(f"scan part of {len(data)} bytes")
        return real_part(data, *args, **kwargs)

    def spy_split(value: object) -> object:
        if isinstance(value, list) and len(value) > 1000 and loop_running():
            on_the_loop.append(f"a filter of {len(value)} values validated")
        return real_split(value)

    def spy_load(document: Any) -> Any:
        (on_the_loop if loop_running() else parsed_in_threads).append(type(document).__name__)
        return real_load(document)

    monkeypatch.setattr(json, "loads", spy_loads)
    monkeypatch.setattr(ScanPartIn, "model_validate_json", spy_part)
    monkeypatch.setattr(schemas, "split_values", spy_split)
    monkeypatch.setattr(bodies, "load_json", spy_load)
    monkeypatch.setattr(scans, "load_json", spy_load)
    files = [
        {"cache_file": f"f{i}_windows.npz", "size": 1, "mtime_ns": 1, "status": "ok"}
        | {"n_samples": 15360, "n_pos": [0, 15360, 7]}
        for i in range(4)
    ]
    part = json.dumps({"scan_id": "big", "files": files, "other_files": ["x" * 100] * 200_000})
    assert len(part) > 20 * 10**6
    pushed = client.post("/api/v1/datasets/parts/scan-parts", content=part)
    assert pushed.status_code == 200, pushed.text[:300]
    names = [f"nobody{i:06d}_s001_t000_windows.npz" for i in range(90_000)]
    for path in ("stats", "balanced", "breakdown", "histogram", "presence"):
        field = "missing" if path == "presence" else "recording"
        response = client.post(f"/api/v1/datasets/ds/{path}", json={field: names})
        # Nothing to balance around, no sample counts: refused, after parsing all the same.
        refused = path in ("balanced", "histogram")
        assert response.status_code == (422 if refused else 200), response.text[:300]
    assert on_the_loop == []
    assert len(parsed_in_threads) == 6


def longest_pause_of_another_thread(work: Callable[[], object]) -> tuple[float, float]:
    """How long `work` took, and the longest a thread ticking every millisecond was held up."""
    longest = 0.0
    done = threading.Event()

    def tick() -> None:
        nonlocal longest
        last = time.perf_counter()
        while not done.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            longest, last = max(longest, now - last), now

    ticker = threading.Thread(target=tick)
    ticker.start()
    time.sleep(0.05)
    started = time.perf_counter()
    work()
    took = time.perf_counter() - started
    done.set()
    ticker.join()
    return took, longest


def test_json_is_parsed_in_slices_that_let_other_threads_run() -> None:
    """A C parser holds the GIL from the first byte to the last: in a worker thread, it still
    stalled the event loop. The body parser hands the GIL over between slices."""
    from app.api.bodies import NotJsonError, load_json

    names = [f"p{i:07d}_s001_t000_windows.npz" for i in range(1_000_000)]
    document = json.dumps({"missing": names, "n": [1.5, -2, 2**63 - 1, None, True]}).encode()
    assert load_json(document) == json.loads(document)
    # What yajl would read otherwise is read as json.loads reads it.
    for different in [
        rb'{"a": ["\ud800", "\ud800\u0041", "\ud83d\ude00"]}',
        b'{"a": 18446744073709551616}',
    ]:
        assert load_json(different) == json.loads(different)
    took, paused = longest_pause_of_another_thread(lambda: load_json(document))
    assert paused < took / 4, f"another thread waited {paused:.3f} s of {took:.3f} s"
    _, paused_whole = longest_pause_of_another_thread(lambda: json.loads(document))
    assert paused_whole > 2 * paused
    for bad, reason in [
        (b'{"a": 1} x', "trailing garbage"),
        (b'{"a": NaN}', "invalid char"),
        (b'{"a": [1, 2', "premature EOF"),
        (b"", "premature EOF"),
        (b'{"a": "\xff"}', "invalid"),
        # Past 64 bits json.loads reads it instead (see load_json), and refuses this many digits.
        (b'{"a": ' + b"9" * 5000 + b"}", "limit \\(4300 digits\\)"),
        (b'{"a": 1e999}', "overflow"),
    ]:
        with pytest.raises(NotJsonError, match=reason):
            load_json(bad)


def test_long_filters_are_keyed_off_the_event_loop(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Normalising and hashing a filter of 100,000 names, for its cache key and ETag, took about
    0.1 s: on the event loop, every other request waited that long. Short filters stay there."""
    from app.api import heavy

    assert client.post("/api/v1/datasets/ds/snapshots", content=SMALL).status_code == 201
    where: list[tuple[int, bool]] = []
    real = heavy.make_question

    def spy(kind: str, dataset: str, state: Any, query: Any) -> Any:
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        where.append((len(query.recording), on_loop))
        return real(kind, dataset, state, query)

    monkeypatch.setattr(heavy, "make_question", spy)
    names = [f"r{i:06d}_windows.npz" for i in range(5_000)]
    for route in ("stats", "balanced", "balanced/index"):
        for recording in (names, names[:3]):
            response = client.post(f"/api/v1/datasets/ds/{route}", json={"recording": recording})
            assert response.status_code == (422 if route != "stats" else 200), response.text
    assert where[::2] == [(5_000, False)] * 3
    assert where[1::2] == [(3, True)] * 3

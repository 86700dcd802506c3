"""Hostile filter values: SQL, patterns, near misses and thousands of names match exactly what
they name, in a body, in a URL and against a real server."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.support import manifests, oracle
from tests.support.servers import live_server
from tests.support.uploads import load

STATS = "/api/v1/datasets/gen/stats"
BALANCED = "/api/v1/datasets/gen/balanced"
INDEX = "/api/v1/datasets/gen/balanced/index"


def load_generated(client: TestClient, seed: int = 21) -> dict[str, Any]:
    manifest = manifests.generated(seed, recordings=60)
    load(client, "gen", manifest)
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


@pytest.mark.e2e
def test_long_urls_against_a_real_server(
    database_url: str, tmp_path: Path, write_token: str
) -> None:
    manifest = manifests.generated(21, recordings=60)
    with live_server(database_url, tmp_path) as server:
        load(server.url, "gen", manifest, token=write_token)
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

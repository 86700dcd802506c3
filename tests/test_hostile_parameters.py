"""Hostile query parameters and bodies: unknown names and values out of range are refused by
name; absurd but valid numbers give the exact answer."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support import oracle
from tests.test_hostile_filters import BALANCED, INDEX, STATS, load_generated
from tests.test_ingest import answers

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

"""Balanced selection: counts, ratio and the ordered index equal an independent implementation."""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from seizure_stats.balance import NothingToBalanceError, select_balanced
from tests.support import manifests, oracle
from tests.support.uploads import load


def index_of(client: TestClient, dataset: str, params: Any = None) -> list[tuple[str, int]]:
    response = client.get(f"/api/v1/datasets/{dataset}/balanced/index", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [
        (entry["cache_file"], entry["window_idx"])
        for entry in map(json.loads, response.text.splitlines())
    ]


def check(
    client: TestClient,
    dataset: str,
    manifest: dict[str, Any],
    missing: set[str],
    filters: dict[str, list[str]],
    options: dict[str, Any],
) -> None:
    expected_counts, expected_index = oracle.expected_balanced(
        manifest, missing, filters, **options
    )
    params = [(k, v) for k, values in filters.items() for v in values]
    params += [(k, str(v)) for k, v in options.items()]
    answer = client.get(f"/api/v1/datasets/{dataset}/balanced", params=params).json()
    partial, full, background = (expected_counts[c] for c in oracle.CATEGORIES)
    total = partial + full + background
    assert answer["counts"] == {
        "partial_seizure": partial,
        "full_seizure": full,
        "no_seizure": background,
        "seizure": partial + full,
        "total": total,
    }
    ratio = (partial + full) / total if total else 0.0
    assert answer["seizure_ratio"] == ratio
    assert answer["pos_weight"] == oracle.sqrt_weight(ratio)
    assert index_of(client, dataset, params) == expected_index


def test_whole_dataset_default_parameters(client: TestClient) -> None:
    manifest = manifests.generated(21, recordings=60)
    load(client, "gen", manifest, set())
    check(client, "gen", manifest, set(), {}, {})


@pytest.mark.parametrize("seed", [4, 5])
def test_filtered_subsets_with_missing_files(client: TestClient, seed: int) -> None:
    rng = random.Random(seed)
    manifest = manifests.generated(seed, recordings=50)
    names = manifests.recordings_of(manifest)
    missing = set(rng.sample(names, 8))
    load(client, "gen", manifest, missing)
    patients = sorted({oracle.names_of(n)[1] for n in names})
    for _ in range(6):
        filters = {"exclude_patient": rng.sample(patients, 2)} if rng.random() < 0.5 else {}
        if rng.random() < 0.5:
            filters["recording"] = rng.sample(names, 30)
        options = {
            "full_ratio": rng.choice([0.0, 0.3, 1.0, 7.5]),
            "background_ratio": rng.choice([0.5, 2.5, 40.0]),
            "seed": rng.randrange(10_000),
        }
        try:
            oracle.expected_balanced(manifest, missing, filters, **options)
        except ValueError:
            continue
        check(client, "gen", manifest, missing, filters, options)


@pytest.mark.parametrize("seed", [6, 7])
def test_subsets_with_nothing_missing_in_a_dataset_with_missing_files(
    client: TestClient, seed: int
) -> None:
    """Subsets none of whose windows are missing (their counts follow from the totals, no list
    is read) beside subsets that have some (the lists are read), in one snapshot: every answer
    equals the step-by-step selection."""
    rng = random.Random(seed)
    manifest = manifests.generated(seed, recordings=50)
    names = manifests.recordings_of(manifest)
    missing = set(rng.sample(names, 6))
    load(client, "gen", manifest, missing)
    present = [name for name in names if name not in missing]
    patients_of_missing = sorted({oracle.names_of(n)[1] for n in missing})
    nothing_missing: list[dict[str, list[str]]] = [
        {"recording": rng.sample(present, 25)},
        {"exclude_patient": patients_of_missing},
        {"exclude_recording": sorted(missing)},
        {"exclude_recording": sorted(missing), "category": ["partial_seizure", "no_seizure"]},
    ]
    some_missing: list[dict[str, list[str]]] = [{}, {"recording": sorted(missing) + present[:5]}]
    for filters in nothing_missing + some_missing:
        for options in [
            {},
            {"full_ratio": 1.0, "background_ratio": 40.0, "seed": rng.randrange(10_000)},
            {"full_ratio": 0.0, "background_ratio": 0.5, "seed": rng.randrange(10_000)},
        ]:
            counts, _ = oracle.expected_balanced(manifest, missing, filters, **options)
            params = [(k, v) for k, values in filters.items() for v in values]
            params += [(k, str(v)) for k, v in options.items()]
            answer = client.get("/api/v1/datasets/gen/balanced", params=params).json()
            assert answer["counts"] == oracle.counts_of(counts), (filters, options)
            if filters in nothing_missing:
                assert answer["missing_skipped"] == 0


def test_missing_skipped_counts_drawn_entries_whose_file_is_missing(client: TestClient) -> None:
    missing = {"bbbbbbbb_s001_t001_windows.npz"}
    load(client, "small", manifests.SMALL, missing)
    answer = client.get(
        "/api/v1/datasets/small/balanced", params={"full_ratio": 1, "background_ratio": 10}
    ).json()
    # partial: 3 (none missing); full: want 3, 2 exist, 1 is missing; background: all 7, 2 missing
    assert answer["counts"]["partial_seizure"] == 3
    assert answer["counts"]["full_seizure"] == 1
    assert answer["counts"]["no_seizure"] == 5
    assert answer["missing_skipped"] == 3


def test_no_partial_windows_is_a_clear_error(client: TestClient) -> None:
    load(client, "small", manifests.SMALL, set())
    response = client.get("/api/v1/datasets/small/balanced?category=no_seizure")
    assert response.status_code == 422
    assert "partial_seizure" in response.json()["detail"]
    response = client.get("/api/v1/datasets/small/balanced/index?patient=nobody")
    assert response.status_code == 422


def test_post_and_json_array_forms(client: TestClient) -> None:
    manifest = manifests.generated(9)
    load(client, "gen", manifest, set())
    names = manifests.recordings_of(manifest)
    filters = {"recording": names[:20] + [f"other_{i}" for i in range(3000)]}
    _, expected_index = oracle.expected_balanced(manifest, set(), filters)
    posted = client.post("/api/v1/datasets/gen/balanced/index", json=filters)
    assert [
        (e["cache_file"], e["window_idx"]) for e in map(json.loads, posted.text.splitlines())
    ] == expected_index
    as_array = client.get("/api/v1/datasets/gen/balanced/index?format=json").json()
    _, whole_index = oracle.expected_balanced(manifest, set())
    assert [(e["cache_file"], e["window_idx"]) for e in as_array] == whole_index
    counts = client.post("/api/v1/datasets/gen/balanced", json=filters).json()["counts"]
    assert counts["total"] == len(expected_index)


def test_pure_selection_draws_like_numpy_does() -> None:
    present = np.ones(10, dtype=bool)
    selection = select_balanced(
        np.ones(4, dtype=bool), present, present, full_ratio=0.5, background_ratio=1.0, seed=3
    )
    rng = np.random.default_rng(3)
    full_picks = rng.choice(10, size=2, replace=False)
    background_picks = rng.choice(10, size=4, replace=False)
    order = np.arange(10)
    rng.shuffle(order)
    kept = [(0, i) for i in range(4)] + [(1, int(p)) for p in full_picks]
    kept += [(2, int(p)) for p in background_picks]
    expected = [kept[i] for i in order]
    got = list(zip(selection.categories.tolist(), selection.positions.tolist(), strict=True))
    assert got == expected
    with pytest.raises(NothingToBalanceError):
        select_balanced(np.ones(0, dtype=bool), present, present)

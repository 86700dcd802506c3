"""Snapshot diffs equal a brute-force comparison of the two manifests."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support import manifests, oracle
from tests.support.uploads import load

CATEGORIES = oracle.CATEGORIES


def edited(manifest: dict[str, Any], seed: int) -> dict[str, Any]:
    """A later scan: some windows gone, some new (also in a new recording), some relabelled."""
    rng = random.Random(seed)
    new = copy.deepcopy(manifest)
    for category in CATEGORIES:
        entries = new[category]
        for _ in range(rng.randrange(1, 6)):
            entries.pop(rng.randrange(len(entries)))
    gone = rng.choice(manifests.recordings_of(new))
    for category in CATEGORIES:
        new[category] = [e for e in new[category] if e["cache_file"] != gone]
    for idx in range(rng.randrange(2, 9)):
        new[rng.choice(CATEGORIES)].append(
            {"cache_file": "zzzzzzzz_s001_t000.npz", "window_idx": idx}
        )
    existing = new["no_seizure"][0]["cache_file"]
    new["full_seizure"].append({"cache_file": existing, "window_idx": 5000})
    for _ in range(rng.randrange(3, 12)):
        source, target = rng.sample(list(CATEGORIES), 2)
        if new[source]:
            new[target].append(new[source].pop(rng.randrange(len(new[source]))))
    return new


def check(answer: dict[str, Any], old: dict[str, Any], new: dict[str, Any]) -> None:
    expected = oracle.expected_diff(old, new)
    assert answer["added"] == sum(expected["added"].values())
    assert answer["removed"] == sum(expected["removed"].values())
    assert answer["changed"] == sum(expected["moves"].values())
    old_total = sum(len(old[c]) for c in CATEGORIES)
    assert answer["unchanged"] == old_total - answer["removed"] - answer["changed"]
    by_category = {c["category"]: c for c in answer["categories"]}
    for category in CATEGORIES:
        row = by_category[category]
        assert row["a"] == len(old[category])
        assert row["b"] == len(new[category])
        assert row["added"] == expected["added"][category]
        assert row["removed"] == expected["removed"][category]
        moves = expected["moves"]
        assert row["changed_in"] == sum(n for (_, to), n in moves.items() if to == category)
        assert row["changed_out"] == sum(n for (fr, _), n in moves.items() if fr == category)
        assert (
            row["a"] + row["added"] - row["removed"] + row["changed_in"] - row["changed_out"]
            == (row["b"])
        )
    assert {(m["from_category"], m["to_category"]): m["windows"] for m in answer["moves"]} == (
        expected["moves"]
    )
    recordings = expected["recordings"]
    assert answer["recordings_total"] == len(recordings)
    assert [r["recording"] for r in answer["recordings"]] == sorted(recordings)
    for row in answer["recordings"]:
        name = row["recording"]
        assert [row["added"], row["removed"], row["changed"]] == recordings[name]
        assert row["windows_a"] == sum(e["cache_file"] == name for c in CATEGORIES for e in old[c])
        assert row["windows_b"] == sum(e["cache_file"] == name for c in CATEGORIES for e in new[c])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_diff_matches_brute_force_both_ways(client: TestClient, seed: int) -> None:
    old = manifests.generated(seed, recordings=40)
    new = edited(old, seed)
    a = load(client, "gen", old, set())
    b = load(client, "gen", new)
    forward = client.get(f"/api/v1/datasets/gen/snapshots/{a}/diff/{b}").json()
    check(forward, old, new)
    assert (forward["a"], forward["b"]) == (a, b)
    assert forward["added"] > 0
    assert forward["removed"] > 0
    assert forward["changed"] > 0
    backward = client.get(f"/api/v1/datasets/gen/snapshots/{b}/diff/{a}").json()
    check(backward, new, old)
    assert (backward["added"], backward["removed"]) == (forward["removed"], forward["added"])


def test_same_snapshot_has_no_changes(client: TestClient) -> None:
    a = load(client, "small", manifests.SMALL, set())
    answer = client.get(f"/api/v1/datasets/small/snapshots/{a}/diff/{a}").json()
    assert (answer["added"], answer["removed"], answer["changed"]) == (0, 0, 0)
    assert answer["unchanged"] == 12
    assert answer["recordings"] == []
    assert answer["moves"] == []
    assert answer["truncated"] is False


def test_recording_list_is_cut_at_the_limit(client: TestClient) -> None:
    old = manifests.generated(7, recordings=30)
    new = {c: [] for c in CATEGORIES}
    a = load(client, "gen", old, set())
    new["no_seizure"] = [{"cache_file": "other_s001_t000.npz", "window_idx": 0}]
    b = load(client, "gen", new)
    answer = client.get(f"/api/v1/datasets/gen/snapshots/{a}/diff/{b}?limit=5").json()
    assert answer["recordings_total"] == 31
    assert answer["truncated"] is True
    assert [r["recording"] for r in answer["recordings"]] == sorted(
        [*manifests.recordings_of(old), "other_s001_t000.npz"]
    )[:5]
    assert answer["removed"] == sum(len(old[c]) for c in CATEGORIES)
    assert answer["added"] == 1
    assert answer["unchanged"] == 0


def test_diff_refuses_unknown_snapshots(client: TestClient) -> None:
    a = load(client, "small", manifests.SMALL, set())
    other = load(client, "other", manifests.generated(2, recordings=5), set())
    assert client.get(f"/api/v1/datasets/small/snapshots/{a}/diff/{other}").status_code == 404
    assert client.get(f"/api/v1/datasets/small/snapshots/{a}/diff/999").status_code == 404
    assert client.get(f"/api/v1/datasets/small/snapshots/{a}/diff/{a}?x=1").status_code == 422

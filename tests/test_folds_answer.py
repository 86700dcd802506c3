"""The folds answer: every fold's numbers against a brute-force count, folds against sklearn."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.model_selection import StratifiedGroupKFold

import app.api.folds
from seizure_stats.balance import NothingToBalanceError, kept_when_all_present, select_balanced
from seizure_stats.schemas.folds import BalancedPart, FoldPart
from tests.support import manifests, oracle
from tests.support.oracle import names_of
from tests.support.uploads import load
from tests.test_folds import manifest_folds

FOLDS = "/api/v1/datasets/cv/folds"
CATEGORIES = ("partial_seizure", "full_seizure", "no_seizure")


def patients_of(manifest: oracle.Manifest) -> list[str]:
    return sorted({names_of(name)[1] for name in manifests.recordings_of(manifest)})


def missing_recordings_of(manifest: oracle.Manifest, patients: set[str]) -> set[str]:
    return {name for name in manifests.recordings_of(manifest) if names_of(name)[1] in patients}


def expected_part(
    manifest: oracle.Manifest, missing: set[str], filters: dict[str, list[str]]
) -> dict[str, Any]:
    """A part's numbers by brute force over the windows (warnings aside)."""
    expected = oracle.expected_stats(manifest, missing, filters)
    return {name: expected[name] for name in FoldPart.model_fields if name != "warnings"}


def expected_balanced_part(
    manifest: oracle.Manifest, missing: set[str], filters: dict[str, list[str]]
) -> dict[str, Any]:
    counts = oracle.counts_of(oracle.expected_balanced(manifest, missing, filters)[0])
    seizure, total = counts["seizure"], counts["total"]
    return {
        "counts": counts,
        "seizure_ratio": seizure / total if total else 0.0,
        "pos_weight": oracle.sqrt_weight(seizure / total if total else 0.0),
    }


def check_against_brute_force(
    client: TestClient,
    manifest: oracle.Manifest,
    missing: set[str],
    k: int,
    seed: int,
    stratify: str,
) -> dict[str, Any]:
    response = client.get(FOLDS, params={"k": k, "seed": seed, "stratify": stratify})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["k"], answer["seed"], answer["stratify"]) == (k, seed, stratify)
    assert answer["patients"] == len(patients_of(manifest))
    expected_folds = manifest_folds(manifest, k, seed, stratify)
    assert [set(fold["patients"]) for fold in answer["folds"]] == expected_folds
    for index, fold in enumerate(answer["folds"]):
        assert fold["fold"] == index
        assert fold["patients"] == sorted(fold["patients"])
        test_filter = {"patient": fold["patients"]}
        train_filter = {"exclude_patient": fold["patients"]}
        for part, filters in (("test", test_filter), ("train", train_filter)):
            got = {name: value for name, value in fold[part].items() if name != "warnings"}
            assert got == expected_part(manifest, missing, filters), (index, part)
            # The same answer, warnings included, as /stats gives for that subset.
            stats = client.post("/api/v1/datasets/cv/stats", json=filters).json()
            assert fold[part] == {name: stats[name] for name in FoldPart.model_fields}
        balanced = fold["balanced_train"]
        expected = expected_balanced_part(manifest, missing, train_filter)
        assert {name: balanced[name] for name in expected} == expected, index
        asked = client.post("/api/v1/datasets/cv/balanced", json=train_filter).json()
        assert balanced == {name: asked[name] for name in BalancedPart.model_fields}
    for part in ("test", "train"):
        ratios = [fold[part]["seizure_ratio"] for fold in answer["folds"]]
        assert answer["spread"][f"{part}_seizure_ratio"] == {"min": min(ratios), "max": max(ratios)}
    return answer


@pytest.mark.parametrize("stratify", ["category", "seizure"])
def test_every_number_of_every_fold_equals_a_brute_force_count(
    client: TestClient, stratify: str
) -> None:
    manifest = manifests.generated(23, recordings=120, with_samples=True)
    load(client, "cv", manifest)
    for k, seed in ((2, 0), (5, 0), (7, 3)):
        answer = check_against_brute_force(client, manifest, set(), k, seed, stratify)
        assert answer["warnings"] == []
        assert all(fold["train"]["missing_windows"] == 0 for fold in answer["folds"])


def test_counts_follow_presence_and_the_folds_do_not_move(client: TestClient) -> None:
    manifest = manifests.generated(31, recordings=140)
    load(client, "cv", manifest)
    before = client.get(FOLDS, params={"k": 4, "seed": 9}).json()
    # Every recording of one patient missing: that patient's fold trains on present recordings
    # only (its selection is counted), every other fold's training part needs the real one.
    one = before["folds"][1]["patients"][0]
    missing = missing_recordings_of(manifest, {one})
    marked = client.post("/api/v1/datasets/cv/presence", json={"missing": sorted(missing)})
    assert marked.status_code == 200
    answer = check_against_brute_force(client, manifest, missing, 4, 9, "category")
    assert [fold["patients"] for fold in answer["folds"]] == [
        fold["patients"] for fold in before["folds"]
    ]
    assert answer["folds"][1]["train"]["missing_windows"] == 0
    assert answer["folds"][1]["test"]["missing_windows"] > 0
    assert all(answer["folds"][f]["train"]["missing_windows"] > 0 for f in (0, 2, 3))
    assert any(answer["folds"][f]["balanced_train"]["missing_skipped"] > 0 for f in (0, 2, 3))
    # Many missing, in every fold: each training part is selected over its present entries.
    some = set(manifests.recordings_of(manifest)[::3])
    client.post("/api/v1/datasets/cv/presence", json={"missing": sorted(some)})
    check_against_brute_force(client, manifest, missing | some, 4, 9, "category")


@pytest.mark.parametrize("seed", range(40))
def test_with_nothing_missing_the_kept_counts_follow_from_the_list_lengths(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_partial, n_full, n_background = (int(n) for n in rng.integers(0, 400, size=3))
    n_partial = max(1, n_partial if seed % 5 else int(rng.integers(1, 4)))
    full_ratio, background_ratio = (float(r) for r in rng.choice([0, 0.1, 0.3, 1.7, 2.5, 9], 2))
    selection = select_balanced(
        np.ones(n_partial, dtype=bool),
        np.ones(n_full if seed % 7 else 0, dtype=bool),
        np.ones(n_background, dtype=bool),
        full_ratio=full_ratio,
        background_ratio=background_ratio,
        seed=seed,
    )
    assert (
        kept_when_all_present(
            n_partial,
            n_full if seed % 7 else 0,
            n_background,
            full_ratio=full_ratio,
            background_ratio=background_ratio,
        )
        == selection.kept_per_category
    )
    assert selection.missing_skipped == 0
    with pytest.raises(NothingToBalanceError):
        kept_when_all_present(0, n_full, n_background)


def test_a_training_part_without_partial_windows_has_no_balanced_selection(
    client: TestClient,
) -> None:
    # All partial windows belong to patient aaaaaaaa: the fold holding it trains on none.
    load(client, "cv", manifests.SMALL)
    answer = client.get(FOLDS, params={"k": 2}).json()
    held = next(f for f in answer["folds"] if "aaaaaaaa" in f["patients"])
    other = next(f for f in answer["folds"] if "aaaaaaaa" not in f["patients"])
    assert held["balanced_train"] is None
    assert other["balanced_train"] is not None
    assert answer["warnings"] == [
        f"fold_without_partial: fold {held['fold']}: its training part has no partial_seizure "
        "window, so there is no balanced selection of it"
    ]


def test_sklearns_warning_of_a_class_smaller_than_k_travels_with_the_answer(
    client: TestClient,
) -> None:
    manifest: oracle.Manifest = {c: [] for c in CATEGORIES}
    for patient in range(6):
        name = f"p{patient:07d}_s001_t000_windows.npz"
        manifest["no_seizure"] += [{"cache_file": name, "window_idx": i} for i in range(4)]
        manifest["partial_seizure"].append({"cache_file": name, "window_idx": 4})
    manifest["full_seizure"].append(
        {"cache_file": "p0000002_s001_t000_windows.npz", "window_idx": 5}
    )
    load(client, "cv", manifest)
    groups = [names_of(e["cache_file"])[1] for c in CATEGORIES for e in manifest[c]]
    labels = [c for c in CATEGORIES for _ in manifest[c]]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        list(StratifiedGroupKFold(3, shuffle=True, random_state=0).split(labels, labels, groups))
    assert len(caught) == 1
    answer = check_against_brute_force(client, manifest, set(), 3, 0, "category")
    assert answer["warnings"] == [
        "fold_sparse_class: the least populated class has only 1 window, fewer than k=3: some "
        "folds have none of it"
    ]


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"k": 1}, "k: Input should be greater than or equal to 2 (got '1')"),
        ({"k": 3}, "k=3 is greater than the number of patients (2)"),
        (
            {"stratify": "patient"},
            "stratify: Input should be 'category' or 'seizure' (got 'patient')",
        ),
        ({"seed": -1}, "seed: Input should be greater than or equal to 0 (got '-1')"),
        (
            {"folds": 3},
            "unknown query parameter 'folds'; allowed: background_ratio, balanced_seed, beta, "
            "full_ratio, k, seed, snapshot, stratify, weighting",
        ),
    ],
)
def test_impossible_folds_are_refused_naming_the_problem(
    client: TestClient, params: dict[str, Any], detail: str
) -> None:
    load(client, "cv", manifests.SMALL)
    response = client.get(FOLDS, params=params)
    assert response.status_code == 422
    assert response.json() == {"error": "invalid_request", "detail": detail}


def test_unknown_datasets_and_snapshots_are_404(client: TestClient) -> None:
    first = load(client, "cv", manifests.SMALL)
    missing = client.get("/api/v1/datasets/nope/folds", params={"k": 2})
    assert missing.status_code == 404
    assert missing.json()["detail"] == "dataset 'nope' does not exist"
    pinned = client.get(FOLDS, params={"k": 2, "snapshot": first + 5})
    assert pinned.status_code == 404
    assert pinned.json()["detail"] == f"dataset 'cv' has no snapshot {first + 5}"
    answer = client.get(FOLDS, params={"k": 2, "snapshot": first}).json()
    assert answer["snapshot"] == first
    assert answer["dataset"] == "cv"
    stats = client.get("/api/v1/datasets/cv/stats").json()
    assert answer["content_hash"] == stats["content_hash"]


def test_a_repeated_question_is_served_from_memory_with_etag_and_304(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    load(client, "cv", manifests.generated(5, recordings=60))
    computed = []
    compute = app.api.folds.compute_folds

    def counting(*args: Any) -> Any:
        computed.append(args[-1])
        return compute(*args)

    monkeypatch.setattr(app.api.folds, "compute_folds", counting)
    first = client.get(FOLDS, params={"k": 3, "seed": 1})
    assert first.headers["cache-control"] == "no-cache"
    etag = first.headers["etag"]
    again = client.get(FOLDS, params={"seed": 1, "k": 3})
    assert (again.content, again.headers["etag"]) == (first.content, etag)
    assert len(computed) == 1
    unchanged = client.get(FOLDS, params={"k": 3, "seed": 1}, headers={"If-None-Match": etag})
    assert (unchanged.status_code, unchanged.content) == (304, b"")
    other = client.get(FOLDS, params={"k": 3, "seed": 2}, headers={"If-None-Match": etag})
    assert other.status_code == 200
    assert other.headers["etag"] != etag
    assert len(computed) == 2
    # Presence moves the answer: the tag no longer matches, and it is computed afresh.
    name = manifests.recordings_of(manifests.generated(5, recordings=60))[0]
    client.post("/api/v1/datasets/cv/presence", json={"missing": [name]})
    after = client.get(FOLDS, params={"k": 3, "seed": 1}, headers={"If-None-Match": etag})
    assert after.status_code == 200
    assert len(computed) == 3
    assert after.json()["folds"][0]["patients"] == first.json()["folds"][0]["patients"]

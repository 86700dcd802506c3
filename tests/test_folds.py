"""Fold assignment against scikit-learn's StratifiedGroupKFold itself, on window-level data."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.model_selection import StratifiedGroupKFold
from sqlalchemy.orm import Session, sessionmaker

from app import catalog
from app.errors import InvalidRequestError
from app.folds import FoldError, assign_folds
from app.queries.folds import FoldCache, snapshot_folds
from tests.support import manifests
from tests.support.oracle import names_of
from tests.support.uploads import load

CLASSES = ("full_seizure", "no_seizure", "partial_seizure")  # sorted, as sklearn sees them


def sklearn_folds(counts: np.ndarray[Any, Any], k: int, seed: int) -> tuple[list[int], list[str]]:
    """Each group's test fold per sklearn, run over one row per window (in a scrambled order)."""
    groups, labels = [], []
    for group, row in enumerate(counts):
        for label, count in zip(CLASSES, row, strict=False):
            groups += [f"patient{group:06d}"] * int(count)
            labels += [label] * int(count)
    scramble = np.random.default_rng(seed + 7).permutation(len(groups))
    groups_arr, labels_arr = np.array(groups)[scramble], np.array(labels)[scramble]
    fold_of = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        for fold, (_, test) in enumerate(splitter.split(labels_arr, labels_arr, groups_arr)):
            for name in set(groups_arr[test]):
                fold_of[name] = fold
    return [fold_of[f"patient{g:06d}"] for g in range(len(counts))], [
        str(w.message) for w in caught
    ]


def random_counts(rng: np.random.Generator, patients: int, shape: str) -> np.ndarray[Any, Any]:
    if shape == "ties":  # few distinct rows: many groups of equal spread
        palette = rng.integers(0, 4, size=(3, 3))
        counts = palette[rng.integers(0, 3, size=patients)]
    elif shape == "single":  # every patient has one category only
        counts = np.zeros((patients, 3), dtype=np.int64)
        counts[np.arange(patients), rng.integers(0, 3, size=patients)] = rng.integers(
            1, 30, size=patients
        )
    else:
        counts = rng.integers(0, 40, size=(patients, 3)) * (rng.random((patients, 3)) < 0.7)
    counts[counts.sum(axis=1) == 0, 1] = 1
    return counts


@pytest.mark.parametrize("shape", ["mixed", "ties", "single"])
@pytest.mark.parametrize("k", range(2, 11))
def test_folds_equal_sklearns(shape: str, k: int) -> None:
    rng = np.random.default_rng(k * 31 + len(shape))
    for seed in (0, 1, 42, 2**32 - 1):
        counts = random_counts(rng, int(rng.integers(k, 60)), shape)
        expected, sklearn_warnings = sklearn_folds(counts, k, seed)
        assignment = assign_folds(counts, k, seed)
        assert assignment.fold_of_group.tolist() == expected
        assert bool(assignment.warnings) == bool(sklearn_warnings)


def test_two_classes_seizure_or_not() -> None:
    rng = np.random.default_rng(5)
    counts = random_counts(rng, 40, "mixed")
    binary = np.stack([counts[:, 1], counts[:, 0] + counts[:, 2]], axis=1)  # False, True
    groups = np.repeat([f"p{g:03d}" for g in range(40)], binary.sum(axis=1))
    labels = np.concatenate([[False] * n + [True] * s for n, s in binary])
    splitter = StratifiedGroupKFold(n_splits=4, shuffle=True, random_state=3)
    expected = {}
    for fold, (_, test) in enumerate(splitter.split(labels, labels, groups)):
        expected |= dict.fromkeys(groups[test].tolist(), fold)
    folds = assign_folds(binary, 4, 3).fold_of_group.tolist()
    assert folds == [expected[f"p{g:03d}"] for g in range(40)]


def test_a_class_no_window_has_is_ignored_as_sklearn_ignores_it() -> None:
    counts = np.array([[0, 5, 1], [0, 3, 0], [0, 2, 2], [0, 9, 1]])
    assert assign_folds(counts, 2, 0).fold_of_group.tolist() == sklearn_folds(counts, 2, 0)[0]


def test_many_patients() -> None:
    rng = np.random.default_rng(17_857)
    counts = random_counts(rng, 17_857, "mixed") // 8 + np.array([0, 1, 0])
    expected, _ = sklearn_folds(counts, 5, 0)
    assert assign_folds(counts, 5, 0).fold_of_group.tolist() == expected


@pytest.mark.parametrize(
    ("counts", "k", "seed", "message"),
    [
        ([[1, 1, 1]] * 3, 1, 0, "k must be at least 2"),
        ([[1, 1, 1]] * 3, 4, 0, "greater than the number of windows of every class"),
        ([[5, 5, 5]] * 3, 4, 0, "greater than the number of patients (3)"),
        ([[1, 1, 1]] * 3, 2, -1, "seed must be between"),
        ([[1, 1, 1], [0, 0, 0]], 2, 0, "at least one window"),
    ],
)
def test_impossible_folds_are_refused(
    counts: list[list[int]], k: int, seed: int, message: str
) -> None:
    with pytest.raises(FoldError, match=message.replace("(", r"\(").replace(")", r"\)")):
        assign_folds(counts, k, seed)


def test_a_class_smaller_than_k_is_warned_of_as_sklearn_warns() -> None:
    counts = np.array([[0, 5, 1], [1, 3, 0], [0, 2, 2], [0, 9, 1], [0, 4, 0]])
    assignment = assign_folds(counts, 3, 0)
    expected, sklearn_warnings = sklearn_folds(counts, 3, 0)
    assert assignment.fold_of_group.tolist() == expected
    assert len(sklearn_warnings) == 1
    assert assignment.warnings == [
        "the least populated class has only 1 window, fewer than k=3: some folds have none of it"
    ]


def manifest_folds(manifest: dict[str, Any], k: int, seed: int, stratify: str) -> list[set[str]]:
    """sklearn's test folds, as sets of patients, over every window of the manifest."""
    groups, labels = [], []
    for category, entries in manifest.items():
        for entry in entries:
            groups.append(names_of(entry["cache_file"])[1])
            labels.append(category if stratify == "category" else category != "no_seizure")
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    groups_arr = np.array(groups)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [
            set(groups_arr[test].tolist())
            for _, test in splitter.split(labels, np.array(labels), groups_arr)
        ]


@pytest.mark.parametrize("stratify", ["category", "seizure"])
def test_a_snapshots_folds_equal_sklearns_over_its_windows(
    client: TestClient, factory: sessionmaker[Session], stratify: str
) -> None:
    manifest = manifests.generated(11, recordings=160)
    load(client, "cv", manifest)
    cache = FoldCache()
    with factory() as session:
        snapshot = catalog.dataset_snapshot(session, "cv", None)[1]
        for k, seed in ((2, 0), (3, 1), (5, 0), (5, 42), (7, 3)):
            folds = snapshot_folds(session, snapshot, k, seed, stratify, cache)  # type: ignore[arg-type]
            assert [set(patients) for patients in folds.patients] == manifest_folds(
                manifest, k, seed, stratify
            )
    # Presence plays no part: a missing recording moves no patient.
    some = sorted(manifests.recordings_of(manifest))[:10]
    assert client.post("/api/v1/datasets/cv/presence", json={"missing": some}).status_code == 200
    with factory() as session:
        snapshot = catalog.dataset_snapshot(session, "cv", None)[1]
        again = snapshot_folds(session, snapshot, 5, 42, stratify, FoldCache())  # type: ignore[arg-type]
    assert [set(p) for p in again.patients] == manifest_folds(manifest, 5, 42, stratify)
    assert cache.get((snapshot.content_hash, 5, 42, stratify)) is not None


def test_folds_of_a_snapshot_refuse_what_cannot_be(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    load(client, "small", manifests.SMALL)
    with factory() as session:
        snapshot = catalog.dataset_snapshot(session, "small", None)[1]
        with pytest.raises(
            InvalidRequestError, match=r"k=3 is greater than the number of patients \(2\)"
        ):
            snapshot_folds(session, snapshot, 3, 0)
        folds = snapshot_folds(session, snapshot, 2, 0)
        assert sorted(len(p) for p in folds.patients) == [1, 1]
        with pytest.raises(InvalidRequestError, match="fold 2 is out of range for k=2: 0 to 1"):
            folds.test_patients(2)


def many_patients_manifest(patients: int, seed: int) -> dict[str, list[dict[str, Any]]]:
    """One recording a patient, 1 to 6 windows each; about a third of them with seizures."""
    rng = np.random.default_rng(seed)
    manifest: dict[str, list[dict[str, Any]]] = {
        "partial_seizure": [],
        "full_seizure": [],
        "no_seizure": [],
    }
    for number in range(patients):
        name = f"q{number:07d}_s001_t000_windows.npz"
        seizures = rng.random() < 0.35
        for idx in range(int(rng.integers(1, 7))):
            roll = rng.random()
            category = (
                "partial_seizure"
                if seizures and roll < 0.3
                else "full_seizure"
                if seizures and roll < 0.5
                else "no_seizure"
            )
            manifest[category].append({"cache_file": name, "window_idx": idx})
    return manifest


def test_a_snapshot_of_17857_patients_has_sklearns_folds(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    manifest = many_patients_manifest(17_857, seed=3)
    load(client, "many", manifest)
    with factory() as session:
        snapshot = catalog.dataset_snapshot(session, "many", None)[1]
        folds = snapshot_folds(session, snapshot, 10, 7, "category", FoldCache())
    assert sum(len(patients) for patients in folds.patients) == 17_857
    assert [set(patients) for patients in folds.patients] == manifest_folds(
        manifest, 10, 7, "category"
    )

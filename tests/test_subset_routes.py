"""A subset's totals come by two routes (app.queries.subset_counts): by complement, from the
snapshot's stored totals, and by its rows. Both give the brute-force counts, on SQLite and
Postgres, with recordings missing; and the stored totals are the manifest summed by hand."""

from __future__ import annotations

import random
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from app.models import Snapshot
from app.queries.balanced import load_subset_lists
from app.queries.subset import Subset
from app.queries.subset_counts import SumReader, by_complement, by_rows
from seizure_stats.labels import Category
from seizure_stats.schemas.questions import BalancedQuery, StatsQuery
from tests.support import manifests, oracle
from tests.support.uploads import load
from tests.test_stats import assert_matches

MASK_BITS = {"partial_seizure": 1, "full_seizure": 2, "no_seizure": 4}
PREFIX = {"partial_seizure": "partial", "full_seizure": "full", "no_seizure": "no_seizure"}


def totals_by_hand(manifest: oracle.Manifest) -> dict[str, dict[str, int]]:
    """Each recording's categories as a mask; per mask, its recordings and their sums."""
    per_recording: dict[str, dict[str, int]] = {}
    for category, entries in manifest.items():
        for entry in entries:
            sums = per_recording.setdefault(entry["cache_file"], {"mask": 0})
            sums["mask"] |= MASK_BITS[category]
            for kind, value in (
                ("windows", 1),
                ("pos", entry.get("n_pos", 0)),
                ("samples", entry.get("n_samples", 0)),
            ):
                key = f"{PREFIX[category]}_{kind}"
                sums[key] = sums.get(key, 0) + value
    columns = [f"{p}_{k}" for p in PREFIX.values() for k in ("windows", "pos", "samples")]
    totals: dict[str, dict[str, int]] = {}
    for sums in per_recording.values():
        row = totals.setdefault(str(sums["mask"]), dict.fromkeys(["recordings", *columns], 0))
        row["recordings"] += 1
        for column in columns:
            row[column] += sums.get(column, 0)
    return totals


def stored_totals(factory: sessionmaker[Session], snapshot_id: int) -> Any:
    with factory() as session:
        return session.scalars(
            select(Snapshot.rollup_totals).where(Snapshot.id == snapshot_id)
        ).one()


@pytest.mark.parametrize("with_samples", [False, True])
def test_stored_totals_are_the_manifest_summed_by_mask(
    client: TestClient, factory: sessionmaker[Session], with_samples: bool
) -> None:
    manifest = manifests.generated(5, recordings=60, with_samples=with_samples)
    snapshot_id = load(client, "gen", manifest)
    assert stored_totals(factory, snapshot_id) == totals_by_hand(manifest)


@pytest.mark.parametrize("seed", [1, 2])
def test_both_routes_give_the_oracle_counts(
    client: TestClient, factory: sessionmaker[Session], seed: int
) -> None:
    rng = random.Random(seed)
    manifest = manifests.generated(seed, recordings=60, with_samples=True)
    names = manifests.recordings_of(manifest)
    missing = set(rng.sample(names, 8))
    snapshot_id = load(client, "gen", manifest, missing)
    patients = sorted({oracle.names_of(n)[1] for n in names})
    categories = ["partial_seizure", "full_seizure", "no_seizure", "seizure"]
    questions: list[dict[str, list[str]]] = [{}, {"category": ["seizure"]}]
    for _ in range(20):
        filters: dict[str, list[str]] = {}
        if rng.random() < 0.6:
            filters["exclude_patient"] = rng.sample(patients, rng.randint(1, 4))
        if rng.random() < 0.5:
            # Some left out twice over: by their patient and by their name.
            filters["exclude_recording"] = [*rng.sample(names, 5), "never_seen.npz"]
        if rng.random() < 0.5:
            filters["category"] = rng.sample(categories, rng.randint(1, 2))
        questions.append(filters)
    with factory() as session:
        snapshot = session.get_one(Snapshot, snapshot_id)
        for filters in questions:
            for by_category in (False, True):
                query = StatsQuery(**filters)
                chosen = Subset.of(session, snapshot, query)
                reader = SumReader(chosen.categories, by_category)
                assert snapshot.rollup_totals is not None
                complement = by_complement(session, chosen, snapshot.rollup_totals, reader)
                assert complement == by_rows(session, chosen, reader), filters
    for filters in questions:
        params = [(key, value) for key, values in filters.items() for value in values]
        answer = client.get("/api/v1/datasets/gen/stats", params=params).json()
        assert_matches(answer, oracle.expected_stats(manifest, missing, filters))


def test_the_training_part_of_a_fold_is_the_same_by_either_route(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    manifest = manifests.generated(8, recordings=80)
    names = manifests.recordings_of(manifest)
    snapshot_id = load(client, "gen", manifest, set(names[::7]))
    with factory() as session:
        snapshot = session.get_one(Snapshot, snapshot_id)
        assert snapshot.rollup_totals is not None
        for fold in ("0/5", "3/5", "1/3"):
            chosen = Subset.of(session, snapshot, StatsQuery(exclude_fold=[fold]))
            assert chosen.folds.leave_out
            reader = SumReader(chosen.categories, True)
            complement = by_complement(session, chosen, snapshot.rollup_totals, reader)
            assert complement == by_rows(session, chosen, reader)


def test_a_whole_snapshot_question_starts_from_the_stored_totals(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    """Counts that no longer follow from the rows prove which route answered: the stored
    totals, for the whole snapshot and for exclusions; the rows, for a named patient."""
    manifest = manifests.generated(3, recordings=30)
    snapshot_id = load(client, "gen", manifest)
    patient = oracle.names_of(manifests.recordings_of(manifest)[0])[1]
    totals = stored_totals(factory, snapshot_id)
    totals["4"]["no_seizure_windows"] += 1000
    with factory.begin() as session:
        session.execute(
            update(Snapshot).where(Snapshot.id == snapshot_id).values(rollup_totals=totals)
        )

    def total(params: dict[str, str]) -> int:
        answer = client.get("/api/v1/datasets/gen/stats", params=params).json()
        return int(answer["counts"]["total"])

    assert total({}) == oracle.expected_stats(manifest, set())["counts"]["total"] + 1000
    left_out = {"exclude_patient": patient}
    expected = oracle.expected_stats(manifest, set(), {"exclude_patient": [patient]})
    assert total(left_out) == expected["counts"]["total"] + 1000
    kept = oracle.expected_stats(manifest, set(), {"patient": [patient]})
    assert total({"patient": patient}) == kept["counts"]["total"]


def test_the_balanced_lists_are_the_same_by_either_route(
    client: TestClient, factory: sessionmaker[Session]
) -> None:
    """Without names, the balanced counts' lists and presence come by complement; with them, from
    every chosen recording's row. Pinned to an older snapshot, with recordings that only a later
    one holds left out and missing (their ids lie past the older snapshot's lists)."""
    rng = random.Random(3)
    older = manifests.generated(3, recordings=60)
    later = manifests.generated(4, recordings=30)
    for category, entries in older.items():
        later[category] = entries + later[category]
    names, only_later = manifests.recordings_of(older), manifests.recordings_of(later)
    only_later = [name for name in only_later if name not in set(names)]
    snapshot_id = load(client, "gen", older)
    load(client, "gen", later, {*rng.sample(names, 8), *only_later[:5]})
    patients = sorted({oracle.names_of(n)[1] for n in names})
    questions: list[dict[str, list[str]]] = [
        {},
        {"category": ["seizure"]},
        {"exclude_recording": [*rng.sample(names, 4), *only_later[5:8]]},
        {"exclude_patient": rng.sample(patients, 3), "category": ["no_seizure"]},
        {"exclude_fold": ["1/4"]},
    ]
    with factory() as session:
        snapshot = session.get_one(Snapshot, snapshot_id)
        for filters in questions:
            query = BalancedQuery(**filters)
            by_rows_ = load_subset_lists(session, snapshot, query, with_names=True)
            by_complement_ = load_subset_lists(session, snapshot, query, with_names=False)
            assert by_complement_.names == {}
            for category in Category:
                rows, complement = by_rows_.lists[category], by_complement_.lists[category]
                assert rows.recording_ids.tolist() == complement.recording_ids.tolist(), filters
                assert rows.window_idx.tolist() == complement.window_idx.tolist(), filters
                assert (
                    by_rows_.presence_flags(category).tolist()
                    == by_complement_.presence_flags(category).tolist()
                ), filters
            flags = [f for c in Category for f in by_complement_.presence_flags(c).tolist()]
            assert flags, filters
            if not filters:
                assert False in flags  # the missing recordings are among them

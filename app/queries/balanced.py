"""Balanced selection over a stored subset: loads the category lists, runs seizure_stats.balance
on them; its counts, when nothing of the subset is missing, from the subset's totals alone."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select, union_all
from sqlalchemy.orm import Session

from app.errors import InvalidRequestError
from app.models import Dataset, Recording, Snapshot, SnapshotColumns
from app.queries.stats import make_counts, subset_warnings, window_weight
from app.queries.subset import Subset, answer_source, is_present
from app.queries.subset_counts import count_subset, left_out_ids
from app.queries.unmatched import UnmatchedValues, checked_filters
from seizure_stats.balance import (
    BalancedSelection,
    NothingToBalanceError,
    kept_when_all_present,
    select_balanced,
)
from seizure_stats.labels import Category
from seizure_stats.schemas.questions import BalancedQuery, BalancedResponse, SubsetFilter


@dataclass(frozen=True)
class CategoryList:
    """One category's entries of the subset in manifest order (missing recordings included)."""

    recording_ids: np.ndarray[Any, np.dtype[np.int32]]
    window_idx: np.ndarray[Any, np.dtype[np.int32]]


@dataclass(frozen=True)
class SubsetLists:
    lists: dict[Category, CategoryList]
    present: np.ndarray[Any, np.dtype[np.bool_]]  # indexed by recording id
    names: dict[int, str]  # the chosen recordings' cache files; empty unless asked for
    warnings: tuple[str, ...] = ()  # of the folds the filter names

    def presence_flags(self, category: Category) -> np.ndarray[Any, np.dtype[np.bool_]]:
        flags: np.ndarray[Any, np.dtype[np.bool_]] = self.present[
            self.lists[category].recording_ids
        ]
        return flags


Mask = np.ndarray[Any, np.dtype[np.bool_]]


def load_subset_lists(
    session: Session, snapshot: Snapshot, subset: SubsetFilter, *, with_names: bool = True
) -> SubsetLists:
    """The three ordered category lists of the subset, and presence of their recordings.

    The lists come from the snapshot's packed columns; the filter is applied in numpy through
    a mask of the subset's recordings, since every filter selects whole recordings. Without
    names, a filter that only leaves recordings out gets its masks by complement, as its
    counts do (app.queries.subset_counts): everything but the recordings it leaves out and
    those known missing, found through indexes instead of a row per recording.
    """
    chosen_subset = Subset.of(session, snapshot, subset)
    wanted = [Category.from_key(key) for key in subset.selected_categories()]
    stored = session.scalars(
        select(SnapshotColumns).where(
            SnapshotColumns.snapshot_id == snapshot.id,
            SnapshotColumns.category.in_([int(category) for category in wanted]),
        )
    )
    packed = {
        Category(columns.category): (
            np.frombuffer(columns.recording_ids, dtype="<i4"),
            np.frombuffer(columns.window_idx, dtype="<i4"),
        )
        for columns in stored
    }
    names: dict[int, str] = {}
    if with_names or chosen_subset.keeps_named_recordings():
        chosen, present, names = masks_from_rows(session, chosen_subset)
    else:
        largest = max((int(ids.max()) for ids, _ in packed.values() if ids.size), default=0)
        chosen, present = masks_by_complement(session, chosen_subset, largest + 2)

    lists: dict[Category, CategoryList] = {}
    for category in Category:
        if category not in packed:
            empty = np.empty(0, dtype=np.int32)
            lists[category] = CategoryList(empty, empty)
            continue
        recording_ids, window_idx = packed[category]
        keep = chosen.take(recording_ids, mode="clip")
        lists[category] = CategoryList(recording_ids[keep], window_idx[keep])
    return SubsetLists(lists, present, names, chosen_subset.folds.warnings)


def masks_from_rows(session: Session, chosen_subset: Subset) -> tuple[Mask, Mask, dict[int, str]]:
    """(chosen, present) by recording id, and the chosen recordings' names, from their rows."""
    recordings = session.execute(
        chosen_subset.rollups(Recording.id, Recording.cache_file, is_present().label("present"))
    ).all()
    # One slot past the largest chosen id stays False: ids beyond it (recordings the filter
    # leaves out) are clipped onto it, so the mask needs no size from elsewhere.
    size = max((row.id for row in recordings), default=0) + 2
    chosen = np.zeros(size, dtype=bool)
    present = np.zeros(size, dtype=bool)
    for row in recordings:
        chosen[row.id] = True
        present[row.id] = bool(row.present)
    return chosen, present, {row.id: row.cache_file for row in recordings}


def masks_by_complement(session: Session, chosen_subset: Subset, size: int) -> tuple[Mask, Mask]:
    """(chosen, present) by recording id, `size` slots (past every id of the snapshot's lists),
    for a filter that keeps no named recordings: all but what it leaves out, and all but the
    recordings known missing. Ids of the dataset's other snapshots may be past `size`."""
    chosen = np.ones(size, dtype=bool)
    present = np.ones(size, dtype=bool)
    left_out = left_out_ids(chosen_subset)
    if left_out:
        ids = union_all(*left_out) if len(left_out) > 1 else left_out[0]
        chosen[within(session.scalars(ids), size)] = False
    missing = select(Recording.id).where(chosen_subset.known_missing())
    present[within(session.scalars(missing), size)] = False
    return chosen, present


def within(ids: Iterable[int], size: int) -> np.ndarray[Any, np.dtype[np.int64]]:
    """The ids below `size`, as an array to index a mask with (the others name no entry)."""
    found = np.fromiter(ids, dtype=np.int64)
    return found[found < size]


def run_selection(
    lists: SubsetLists, query: BalancedQuery, unmatched: UnmatchedValues
) -> BalancedSelection:
    """The balanced selection; a 422 when there is nothing to balance around."""
    try:
        return select_balanced(
            lists.presence_flags(Category.PARTIAL_SEIZURE),
            lists.presence_flags(Category.FULL_SEIZURE),
            lists.presence_flags(Category.NO_SEIZURE),
            full_ratio=query.full_ratio,
            background_ratio=query.background_ratio,
            seed=query.seed,
        )
    except NothingToBalanceError as exc:
        raise nothing_to_balance(exc, unmatched) from None


def nothing_to_balance(exc: NothingToBalanceError, unmatched: UnmatchedValues) -> Exception:
    """The 422 of a subset with no partial window, naming the filter values that matched
    nothing when there are any (they are the likely cause)."""
    cause = "".join(f"; {warning}" for warning in unmatched.warnings())
    return InvalidRequestError(f"{exc}{cause}")


def compute_balanced(
    session: Session, dataset: Dataset, snapshot: Snapshot, query: BalancedQuery
) -> BalancedResponse:
    """Counts, ratio and pos_weight of what the balanced training dataset would keep."""
    unmatched = checked_filters(session, snapshot, query, strict=query.strict)
    kept, skipped, fold_warnings = kept_counts(session, snapshot, query, unmatched)
    counts = make_counts(*kept)
    seizure_ratio, weight = window_weight(counts, query.weighting, query.beta)
    return BalancedResponse(
        **answer_source(dataset, snapshot),
        counts=counts,
        seizure_ratio=seizure_ratio,
        weighting=query.weighting,
        pos_weight=weight,
        missing_skipped=skipped,
        full_ratio=query.full_ratio,
        background_ratio=query.background_ratio,
        seed=query.seed,
        **unmatched.report(subset_warnings(counts, skipped) + list(fold_warnings)),
    )


def kept_counts(
    session: Session, snapshot: Snapshot, query: BalancedQuery, unmatched: UnmatchedValues
) -> tuple[tuple[int, int, int], int, tuple[str, ...]]:
    """What the selection keeps of each category, the entries it skips as missing, and the
    warnings of the folds the filter names.

    When no recording of the subset is missing, the kept counts follow from the subset's
    totals alone (`kept_when_all_present`): one pass over its rollups, no list read. Otherwise
    the selection runs over the category lists, since which entries it draws decides how many
    of them are missing.
    """
    totals = count_subset(session, snapshot, query)
    if totals.missing_windows == 0:
        windows = totals.windows
        try:
            kept = kept_when_all_present(
                windows["partial_seizure"],
                windows["full_seizure"],
                windows["no_seizure"],
                full_ratio=query.full_ratio,
                background_ratio=query.background_ratio,
            )
        except NothingToBalanceError as exc:
            raise nothing_to_balance(exc, unmatched) from None
        return kept, 0, totals.warnings
    lists = load_subset_lists(session, snapshot, query, with_names=False)
    selection = run_selection(lists, query, unmatched)
    return selection.kept_per_category, selection.missing_skipped, lists.warnings


def balanced_index(
    session: Session, dataset: Dataset, snapshot: Snapshot, query: BalancedQuery
) -> Iterator[tuple[str, int]]:
    """The kept (cache_file, window_idx) entries in dataset order."""
    return checked_index(session, snapshot, query)[1]


def checked_index(
    session: Session, snapshot: Snapshot, query: BalancedQuery
) -> tuple[UnmatchedValues, Iterator[tuple[str, int]]]:
    """The kept entries, and the filter values that match nothing (refused when strict)."""
    unmatched = checked_filters(session, snapshot, query, strict=query.strict)
    lists = load_subset_lists(session, snapshot, query)
    entries = iter_entries(
        *kept_entries(lists, run_selection(lists, query, unmatched)), lists.names
    )
    return unmatched, entries


@dataclass(frozen=True)
class IndexArrays:
    """The kept entries as columns: each cache file named once (sorted), and per entry, in
    dataset order, the position of its file in `cache_files` and its window index."""

    cache_files: list[str]
    recording: np.ndarray[Any, np.dtype[np.int32]]
    window_idx: np.ndarray[Any, np.dtype[np.int32]]


def checked_index_arrays(
    session: Session, snapshot: Snapshot, query: BalancedQuery
) -> tuple[UnmatchedValues, IndexArrays]:
    """The same entries as checked_index, as integer columns and one list of names."""
    unmatched = checked_filters(session, snapshot, query, strict=query.strict)
    lists = load_subset_lists(session, snapshot, query)
    recording_ids, window_idx = kept_entries(lists, run_selection(lists, query, unmatched))
    ids, position_of_id = np.unique(recording_ids, return_inverse=True)
    names = [lists.names[int(recording_id)] for recording_id in ids]
    by_name = sorted(range(len(names)), key=names.__getitem__)
    rank = np.empty(len(names), dtype=np.int32)
    rank[by_name] = np.arange(len(names), dtype=np.int32)
    recording = rank[position_of_id].astype(np.int32, copy=False)
    return unmatched, IndexArrays([names[i] for i in by_name], recording, window_idx)


def kept_entries(
    lists: SubsetLists, selection: BalancedSelection
) -> tuple[np.ndarray[Any, np.dtype[np.int32]], np.ndarray[Any, np.dtype[np.int32]]]:
    """(recording ids, window indexes) of the kept entries in dataset order: 8 bytes an entry,
    all an index being sent holds on to (the subset's lists and the selection can go)."""
    recording_ids = np.empty(selection.positions.size, dtype=np.int32)
    window_idx = np.empty(selection.positions.size, dtype=np.int32)
    for category, entry in lists.lists.items():
        chosen = selection.categories == int(category)
        recording_ids[chosen] = entry.recording_ids[selection.positions[chosen]]
        window_idx[chosen] = entry.window_idx[selection.positions[chosen]]
    return recording_ids, window_idx


# Entries become Python objects a chunk at a time: lists of every id and index of a large
# selection took ~150 MB a request (2M windows), for as long as its index was being sent.
ENTRY_CHUNK = 10_000


def iter_entries(
    recording_ids: np.ndarray[Any, np.dtype[np.int32]],
    window_idx: np.ndarray[Any, np.dtype[np.int32]],
    names: dict[int, str],
) -> Iterator[tuple[str, int]]:
    for start in range(0, recording_ids.size, ENTRY_CHUNK):
        chunk = slice(start, start + ENTRY_CHUNK)
        for recording_id, idx in zip(
            recording_ids[chunk].tolist(), window_idx[chunk].tolist(), strict=True
        ):
            yield names[recording_id], idx

"""Balanced selection over a stored subset: loads the category lists, runs app.balance on them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.balance import BalancedSelection, NothingToBalanceError, select_balanced
from app.errors import InvalidRequestError
from app.filters import recording_clause
from app.labels import Category, Weighting, pos_weight, ratio
from app.models import Dataset, Recording, Snapshot, Window
from app.schemas import BalancedQuery, BalancedResponse, SubsetFilter
from app.stats import make_counts, subset_warnings


@dataclass(frozen=True)
class CategoryList:
    """One category's entries of the subset in manifest order (missing recordings included)."""

    recording_ids: np.ndarray[Any, np.dtype[np.int64]]
    window_idx: np.ndarray[Any, np.dtype[np.int64]]


@dataclass(frozen=True)
class SubsetLists:
    lists: dict[Category, CategoryList]
    present: dict[int, bool]
    names: dict[int, str]

    def presence_flags(self, category: Category) -> np.ndarray[Any, np.dtype[np.bool_]]:
        ids = self.lists[category].recording_ids
        return np.fromiter((self.present[i] for i in ids.tolist()), dtype=bool, count=ids.size)


def load_subset_lists(
    session: Session, dataset: Dataset, snapshot: Snapshot, subset: SubsetFilter
) -> SubsetLists:
    """The three ordered category lists of the subset, and presence of their recordings."""
    clause = recording_clause(subset, session.get_bind().dialect.name)
    recordings = session.execute(
        select(Recording.id, Recording.cache_file, Recording.present).where(
            Recording.dataset_id == dataset.id, clause
        )
    ).all()
    present = {row.id: row.present is not False for row in recordings}
    names = {row.id: row.cache_file for row in recordings}
    chosen = set(subset.selected_categories())
    lists: dict[Category, CategoryList] = {}
    for category in Category:
        if category.key not in chosen:
            empty = np.empty(0, dtype=np.int64)
            lists[category] = CategoryList(empty, empty)
            continue
        rows = session.execute(
            select(Window.recording_id, Window.window_idx)
            .join(Recording, Recording.id == Window.recording_id)
            .where(Window.snapshot_id == snapshot.id, Window.category == int(category), clause)
            .order_by(Window.position)
        ).all()
        columns = np.array(rows, dtype=np.int64).reshape(-1, 2)
        lists[category] = CategoryList(columns[:, 0].copy(), columns[:, 1].copy())
    return SubsetLists(lists, present, names)


def run_selection(lists: SubsetLists, query: BalancedQuery) -> BalancedSelection:
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
        raise InvalidRequestError(
            f"{exc}: balanced selection needs at least one partial_seizure window in the subset"
        ) from None


def compute_balanced(
    session: Session, dataset: Dataset, snapshot: Snapshot, query: BalancedQuery
) -> BalancedResponse:
    """Counts, ratio and pos_weight of what the balanced training dataset would keep."""
    selection = run_selection(load_subset_lists(session, dataset, snapshot, query), query)
    partial, full, background = selection.kept_per_category
    counts = make_counts(partial, full, background)
    seizure_ratio = ratio(counts.seizure, counts.total)
    weight = pos_weight(
        seizure_ratio,
        Weighting(query.weighting),
        n_positive=counts.seizure,
        n_negative=counts.no_seizure,
        beta=query.beta,
    )
    return BalancedResponse(
        dataset=dataset.name,
        snapshot=snapshot.id,
        content_hash=snapshot.content_hash,
        counts=counts,
        seizure_ratio=seizure_ratio,
        weighting=query.weighting,
        pos_weight=weight,
        missing_skipped=selection.missing_skipped,
        full_ratio=query.full_ratio,
        background_ratio=query.background_ratio,
        seed=query.seed,
        warnings=subset_warnings(counts, selection.missing_skipped),
    )


def balanced_index(
    session: Session, dataset: Dataset, snapshot: Snapshot, query: BalancedQuery
) -> Iterator[tuple[str, int]]:
    """The kept (cache_file, window_idx) entries in dataset order."""
    lists = load_subset_lists(session, dataset, snapshot, query)
    return iter_entries(lists, run_selection(lists, query))


def iter_entries(lists: SubsetLists, selection: BalancedSelection) -> Iterator[tuple[str, int]]:
    by_category = {
        category: (entry.recording_ids.tolist(), entry.window_idx.tolist())
        for category, entry in lists.lists.items()
    }
    for code, position in zip(
        selection.categories.tolist(), selection.positions.tolist(), strict=True
    ):
        recording_ids, window_idx = by_category[Category(code)]
        yield lists.names[recording_ids[position]], window_idx[position]

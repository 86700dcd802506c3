"""A subset's totals by category, split by presence: what stats, breakdown, histogram and the
balanced counts start from.

Two routes to the same numbers:

- **By complement**, when the filter only leaves recordings out (exclusions, the training part
  of a fold, a choice of categories, or nothing at all) and the snapshot has its stored totals
  (app.storage.rollup_totals). The subset is the snapshot minus the recordings left out, so
  its missing part is the rows of its missing recordings, and its present part is the
  snapshot's totals minus those rows and the rows of everything left out. Both sets are found
  through indexes (a partial one of the missing recordings, and the (dataset, name) ones): the
  cost follows what the filter names and what is missing, not how many recordings it holds.
- **By rows** otherwise: one pass over the subset's rollup rows, grouped by presence. A filter
  that keeps named recordings (a patient, a session, 50 recordings, a test fold) reads only
  those rows, through the same indexes.

The tests hold both routes to the brute-force oracle, and to each other on the same subsets.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from app.models import ROLLUP_PREFIX, Recording, RecordingRollup, Snapshot
from app.queries.filters import excluded_ids, in_values, one_of
from app.queries.subset import Subset, added, is_present, rollup_column
from app.storage.rollup_totals import KINDS, MASK_BITS, RollupTotals
from seizure_stats.schemas.questions import CATEGORY_NAMES, SubsetFilter


@dataclass(frozen=True)
class SubsetCounts:
    """Counts of a subset by category (zero where not chosen), split by recording presence."""

    windows: dict[str, int]
    positive_samples: dict[str, int]
    samples: dict[str, int]
    missing_by_category: dict[str, int]  # windows of missing recordings
    recordings_by_category: dict[str, int]  # present recordings with windows; only when asked
    recordings: int
    missing_windows: int
    missing_recordings: int
    warnings: tuple[str, ...] = ()  # of the folds the filter names


@dataclass(frozen=True)
class Sums:
    """Sums over a set of rollup rows, for the chosen categories. `recordings` counts the rows
    with windows in a chosen category; `by_category`, when asked, those with windows in each."""

    by_kind: dict[str, dict[str, int]]  # kind -> category -> sum
    recordings: int
    by_category: dict[str, int]

    def minus(self, other: Sums) -> Sums:
        return Sums(
            {
                k: {c: n - other.by_kind[k][c] for c, n in v.items()}
                for k, v in self.by_kind.items()
            },
            self.recordings - other.recordings,
            {c: n - other.by_category[c] for c, n in self.by_category.items()},
        )


def count_subset(
    session: Session,
    snapshot: Snapshot,
    subset: SubsetFilter,
    *,
    recordings_by_category: bool = False,
) -> SubsetCounts:
    """The subset's totals by category, split by presence (see the module's docstring)."""
    chosen = Subset.of(session, snapshot, subset)
    reader = SumReader(chosen.categories, recordings_by_category)
    if snapshot.rollup_totals is not None and not chosen.keeps_named_recordings():
        present, missing = by_complement(session, chosen, snapshot.rollup_totals, reader)
    else:
        present, missing = by_rows(session, chosen, reader)
    windows = dict.fromkeys(CATEGORY_NAMES, 0) | present.by_kind["windows"]
    return SubsetCounts(
        windows,
        dict.fromkeys(CATEGORY_NAMES, 0) | present.by_kind["pos"],
        dict.fromkeys(CATEGORY_NAMES, 0) | present.by_kind["samples"],
        dict.fromkeys(CATEGORY_NAMES, 0) | missing.by_kind["windows"],
        present.by_category,
        present.recordings,
        sum(missing.by_kind["windows"].values()),
        missing.recordings,
        chosen.folds.warnings,
    )


@dataclass(frozen=True)
class SumReader:
    """The SQL sums of the chosen categories' columns, and `Sums` read back from a result row
    or from stored totals."""

    categories: tuple[str, ...]
    by_category: bool

    def columns(self) -> list[ColumnElement[Any]]:
        return list(sum_columns(self.categories, self.by_category))

    def of_row(self, row: Any) -> Sums:
        """Sums from a row of `columns()` (none over no rows: NULL)."""
        return Sums(
            {k: {c: int(row[f"{c}_{k}"] or 0) for c in self.categories} for k in KINDS},
            int(row["recordings"] or 0),
            {c: int(row[f"{c}_rec"] or 0) for c in self.categories} if self.by_category else {},
        )

    def none(self) -> Sums:
        by_category = dict.fromkeys(self.categories, 0) if self.by_category else {}
        return Sums({k: dict.fromkeys(self.categories, 0) for k in KINDS}, 0, by_category)

    def of_totals(self, totals: RollupTotals) -> Sums:
        """Sums over every row of the snapshot, from its totals by mask."""
        chosen_bits = sum(MASK_BITS[c] for c in self.categories)
        by_mask = [(int(mask), sums) for mask, sums in totals.items()]
        return Sums(
            {
                k: {
                    c: sum(sums[f"{ROLLUP_PREFIX[c]}_{k}"] for _, sums in by_mask)
                    for c in self.categories
                }
                for k in KINDS
            },
            sum(sums["recordings"] for mask, sums in by_mask if mask & chosen_bits),
            {
                c: sum(sums["recordings"] for mask, sums in by_mask if mask & MASK_BITS[c])
                for c in self.categories
            }
            if self.by_category
            else {},
        )


@functools.cache
def sum_columns(categories: tuple[str, ...], by_category: bool) -> tuple[ColumnElement[Any], ...]:
    """The sums SumReader reads, built once per choice of categories (a few dozen at most): SQL
    expressions never change once built, and building these afresh was a fifth of the Python
    work of a first answer."""
    selected = added(rollup_column(c, "windows") for c in categories)
    columns: list[ColumnElement[Any]] = [
        func.sum(case((selected > 0, 1), else_=0)).label("recordings"),
        *(
            func.sum(rollup_column(c, kind)).label(f"{c}_{kind}")
            for c in categories
            for kind in KINDS
        ),
    ]
    if by_category:
        columns += [
            func.sum(case((rollup_column(c, "windows") > 0, 1), else_=0)).label(f"{c}_rec")
            for c in categories
        ]
    return tuple(columns)


def by_rows(session: Session, chosen: Subset, reader: SumReader) -> tuple[Sums, Sums]:
    """(present, missing) from one pass over the subset's rows, grouped by presence."""
    present = is_present().label("present")
    sums = {True: reader.none(), False: reader.none()}
    query = chosen.rollups(present, *reader.columns()).group_by(present)
    for row in session.execute(query).mappings():
        sums[bool(row["present"])] = reader.of_row(row)
    return sums[True], sums[False]


def by_complement(
    session: Session, chosen: Subset, totals: RollupTotals, reader: SumReader
) -> tuple[Sums, Sums]:
    """(present, missing) as the snapshot's totals minus the rows of the missing recordings
    and of those left out: for a filter that keeps no named recordings."""
    missing = missing_rows(session, chosen, reader)
    present = reader.of_totals(totals).minus(missing)
    left_out = left_out_ids(chosen)
    if left_out:
        rows = snapshot_rows(chosen.snapshot_id, reader).where(one_of(left_out))
        present = present.minus(reader.of_row(session.execute(rows).mappings().one()))
    return present, missing


def missing_rows(session: Session, chosen: Subset, reader: SumReader) -> Sums:
    """`reader`'s sums over the subset's missing recordings: no rows to read in the usual case
    that nothing of the dataset is missing, which one index probe tells."""
    # Asked apart, so that nothing missing costs one probe of a tiny index and no join.
    if session.scalar(select(Recording.id).where(chosen.known_missing()).limit(1)) is None:
        return reader.none()
    rows = chosen.rollups(*reader.columns()).where(chosen.known_missing())
    return reader.of_row(session.execute(rows).mappings().one())


def left_out_ids(chosen: Subset) -> list[Select[Any]]:
    """SELECTs of the ids of the recordings the filter leaves out: its exclusions and the
    patients of the test folds it excludes."""
    ids = excluded_ids(chosen.filter, chosen.dataset_id, chosen.dialect)
    if chosen.folds.leave_out:
        patients = in_values(Recording.patient, chosen.folds.leave_out, chosen.dialect)
        ids.append(select(Recording.id).where(Recording.dataset_id == chosen.dataset_id, patients))
    return ids


def snapshot_rows(snapshot_id: int, reader: SumReader) -> Select[Any]:
    """`reader`'s sums over the snapshot's rollup rows, whatever their presence: the caller
    adds which recordings."""
    return (
        select(*reader.columns())
        .select_from(RecordingRollup)
        .join(Recording, Recording.id == RecordingRollup.recording_id)
        .where(RecordingRollup.snapshot_id == snapshot_id)
    )

"""The subset a question is about: the rollups of a snapshot's recordings that a filter selects.

Every question (stats, breakdown, histogram, balanced) builds its queries from a `Subset`, which
guarantees:

- **Rows.** `Subset.rollups` reads one rollup row per recording of the snapshot that the filter
  selects, through `Subset.where` alone: `filters.recording_clause` and the patients of the
  cross-validation folds the filter names (`folds.fold_narrowing`, resolved once in
  `Subset.of`). Every filter is recording-level, so no other condition widens or narrows the
  subset. `Subset.windows` reads the same recordings' windows of the chosen categories (the
  windows read model, for what the rollups do not sum).
- **Presence.** A recording counts unless it is known to be missing from the volume (`present`
  NULL, never checked, counts as present): `is_present()` is that rule, and the only place it
  is written. Rollup reads keep the missing recordings' rows, so each question can count their
  windows apart; window reads leave them out.
- **Categories.** Choosing categories never removes a row: it chooses the rollup columns that
  `rollup_column` names and `selected_windows` adds up.
- **Shape.** Each read is one `SELECT ... FROM recording_rollups JOIN recordings WHERE ...` (or
  `windows JOIN recordings`) to which the caller adds its columns, GROUP BY and ORDER BY, so
  the database plans a single join whatever the question.

`subset_counts.count_subset` is the subset's totals, split by presence.

Where later work plugs in: a recording-level filter goes to `filters` and reaches every question
through `Subset`; a narrowing that is not a filter (a cross-validation fold) becomes a field of
`Subset` added to both reads' WHERE; a faster route to the same totals belongs in
`subset_counts.count_subset`, whose answers must not change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

from sqlalchemy import Select, and_, case, func, literal, literal_column, select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from app.models import (
    MISSING_PREDICATE,
    ROLLUP_PREFIX,
    Dataset,
    Recording,
    RecordingRollup,
    Snapshot,
    Window,
)
from app.queries.filters import RECORDING_FILTERS, recording_clause
from app.queries.folds import NO_FOLDS, FoldNarrowing, fold_narrowing
from seizure_stats.labels import Category
from seizure_stats.schemas.questions import SubsetFilter


def rollup_column(category: str, kind: str) -> ColumnElement[Any]:
    """The rollup column of one category and kind (`windows`, `pos` or `samples`)."""
    column: ColumnElement[Any] = getattr(RecordingRollup, f"{ROLLUP_PREFIX[category]}_{kind}")
    return column


def is_present() -> ColumnElement[bool]:
    """Whether a recording counts: unless known missing (never checked counts as present)."""
    # A literal, not a bound parameter: every use then renders the same SQL, so a statement
    # carries one expression for presence however many sums test it.
    return func.coalesce(Recording.present, true())


def is_known_missing() -> ColumnElement[bool]:
    """The recordings known to be missing, as the partial index on them is written (the same
    set as `not is_present()`), so the database finds them through it."""
    return literal_column(MISSING_PREDICATE)


def when_present(value: ColumnElement[Any]) -> ColumnElement[Any]:
    """`value` for a present recording's row, 0 for a missing one's."""
    return case((is_present(), value), else_=0)


def when_missing(value: ColumnElement[Any]) -> ColumnElement[Any]:
    """`value` for a missing recording's row, 0 for a present one's."""
    return case((is_present(), 0), else_=value)


def added(columns: Iterable[ColumnElement[Any]]) -> ColumnElement[Any]:
    """`a + b + ...` of SQL expressions, 0 for none."""
    total: ColumnElement[Any] | None = None
    for column in columns:
        total = column if total is None else total + column
    return literal(0) if total is None else total


class AnswerSource(TypedDict):
    """What every answer says it is about, so a training run can log where its numbers came
    from: the dataset, the snapshot, and that snapshot's content hash."""

    dataset: str
    snapshot: int
    content_hash: str


def answer_source(dataset: Dataset, snapshot: Snapshot) -> AnswerSource:
    return {"dataset": dataset.name, "snapshot": snapshot.id, "content_hash": snapshot.content_hash}


@dataclass(frozen=True)
class Subset:
    """One snapshot's recordings that one filter selects, as the starting point of a query."""

    snapshot_id: int
    dataset_id: int
    filter: SubsetFilter
    dialect: str
    folds: FoldNarrowing = NO_FOLDS

    @classmethod
    def of(cls, session: Session, snapshot: Snapshot, subset: SubsetFilter) -> Subset:
        dialect = session.get_bind().dialect.name
        folds = fold_narrowing(session, snapshot, subset)
        return cls(snapshot.id, snapshot.dataset_id, subset, dialect, folds)

    def where(self) -> ColumnElement[bool]:
        """The one condition on `recordings` every read of the subset carries."""
        clauses = [
            recording_clause(self.filter, self.dataset_id, self.dialect),
            self.folds.clause(self.dialect),
        ]
        if self.keeps_named_recordings():
            # A snapshot's recordings are all of its dataset, so naming the dataset changes no
            # answer; it lets the database find the named rows through the (dataset, name)
            # indexes instead of reading every rollup of the snapshot (one patient at 143k
            # recordings: from 30 ms to under 1 ms). Not otherwise: for the whole snapshot it
            # turns SQLite to reading recordings first, 1.7x slower for a sum by patient.
            clauses.insert(0, Recording.dataset_id == self.dataset_id)
        return and_(*clauses)

    def known_missing(self) -> ColumnElement[bool]:
        """The dataset's recordings known to be missing, found through their partial index."""
        return and_(Recording.dataset_id == self.dataset_id, is_known_missing())

    def keeps_named_recordings(self) -> bool:
        """Whether the filter keeps only recordings it names: a patient, session or recording,
        or the patients of a test fold."""
        named = any(self.filter.values_of(s) for s in RECORDING_FILTERS if not s.exclude)
        return named or self.folds.keep is not None

    @property
    def categories(self) -> tuple[str, ...]:
        return self.filter.selected_categories()

    def selected_windows(self) -> ColumnElement[Any]:
        """A rollup row's windows in the chosen categories."""
        return added(rollup_column(c, "windows") for c in self.categories)

    def rollups(self, *columns: Any) -> Select[Any]:
        """SELECT `columns` over the subset's rollup rows, missing recordings' rows included."""
        return (
            select(*columns)
            .select_from(RecordingRollup)
            .join(Recording, Recording.id == RecordingRollup.recording_id)
            .where(RecordingRollup.snapshot_id == self.snapshot_id)
            .where(self.where())
        )

    def windows(self, *columns: Any, categories: Sequence[str]) -> Select[Any]:
        """SELECT `columns` over the present recordings' windows in these categories."""
        codes = [int(Category.from_key(c)) for c in categories]
        return (
            select(*columns)
            .select_from(Window)
            .join(Recording, Recording.id == Window.recording_id)
            .where(Window.snapshot_id == self.snapshot_id, Window.category.in_(codes))
            .where(is_present())
            .where(self.where())
        )

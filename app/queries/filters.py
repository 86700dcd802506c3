"""Filters -> SQL over the recordings table. Filters are declared in
seizure_stats.schemas.filters; here, what each kind of value (a patient, a session, a recording)
matches.

Values are always bound parameters, never spliced into SQL. On Postgres a list of values is
always one array parameter; on SQLite a long one is one JSON array, so thousands of recordings
cost one bind instead of hitting the driver's parameter limit.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ARRAY,
    Select,
    String,
    and_,
    any_,
    bindparam,
    false,
    func,
    not_,
    select,
    true,
    union_all,
)
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import ColumnElement

from app.models import Recording
from seizure_stats.schemas.filters import FILTERS, FilterSpec, SubsetFilter

Column = ColumnElement[Any] | InstrumentedAttribute[Any]
# Up to this many values SQLite gets them inline, one parameter each; past it, one JSON array.
SQLITE_INLINE_VALUES = 200
# From this many values in one filter, normalising and hashing it takes milliseconds (done in a
# worker thread, not on the event loop), and its query leaves garbage worth collecting at once.
LONG_FILTER_VALUES = 200


@dataclass(frozen=True)
class NameLookup:
    """The recordings whose `column` equals one of `values`.

    `patients`, when set, are the patients those recordings must be of, implied by the values
    themselves: saying so lets the (dataset, patient) index find them where `column` is an
    expression no index holds.
    """

    column: Column
    values: list[str]
    patients: list[str] | None = None

    def condition(self, dialect: str) -> ColumnElement[bool]:
        matched = in_values(self.column, self.values, dialect)
        if self.patients is None:
            return matched
        return and_(in_values(Recording.patient, self.patients, dialect), matched)


def in_values(column: Column, values: Sequence[str], dialect: str) -> ColumnElement[bool]:
    """`column IN values`, with the long-list form chosen per dialect."""
    if not values:
        return false()
    if dialect == "postgresql":
        # One array parameter however many values: the statement's text stays the same, so
        # psycopg prepares it and Postgres plans it once, where 50 names inlined were parsed
        # and planned afresh on every first answer.
        return column == any_(bindparam(None, list(values), type_=ARRAY(String)))
    if len(values) <= SQLITE_INLINE_VALUES:
        return column.in_(list(values))
    table = func.json_each(bindparam(None, json.dumps(list(values)), type_=String))
    return column.in_(select(table.table_valued("value").c.value))


def _patient(values: list[str]) -> list[NameLookup]:
    return [NameLookup(Recording.patient, values)]


def _session(values: list[str]) -> list[NameLookup]:
    """`s018` matches that session of every patient; `aaaaagxr_s018` one patient's session.

    A patient never contains `_` (it is the part of the stem before the first one), so
    `patient || '_' || session` equals `aaaaagxr_s018` exactly when both parts match. One IN over
    that expression keeps thousands of qualified sessions to one clause: an OR of pairs was too
    deep an expression for SQLite past a thousand of them. The patients before the `_` are the
    only ones such a value can match, which is what lets an index find them.
    """
    bare = [v for v in values if "_" not in v]
    qualified = [v for v in values if "_" in v]
    lookups = []
    if bare:
        lookups.append(NameLookup(Recording.session, bare))
    if qualified:
        patients = sorted({v.split("_", 1)[0] for v in qualified})
        lookups.append(NameLookup(Recording.patient + "_" + Recording.session, qualified, patients))
    return lookups


def _recording(values: list[str]) -> list[NameLookup]:
    return [NameLookup(Recording.cache_file, values), NameLookup(Recording.stem, values)]


# What a value of each recording-level target is compared with: a value matches a recording
# when one of its lookups does. The filter's clause (filter_clause) and the check for values
# that name nothing (app.queries.unmatched) are both made from these, so the two cannot
# disagree. Categories are a window-level filter, applied by the subset query
# (SubsetFilter.selected_categories).
NAME_COLUMNS: dict[str, Callable[[list[str]], list[NameLookup]]] = {
    "patient": _patient,
    "session": _session,
    "recording": _recording,
}
RECORDING_FILTERS: tuple[FilterSpec, ...] = tuple(s for s in FILTERS if s.target in NAME_COLUMNS)
EXCLUDING_FILTERS: tuple[FilterSpec, ...] = tuple(s for s in RECORDING_FILTERS if s.exclude)


def matching_ids(
    target: str, values: list[str], dataset_id: int, dialect: str
) -> list[Select[Any]]:
    """SELECTs of the ids of the dataset's recordings a target's values match, one per lookup,
    each served by a (dataset, column) index. Their union is what the values match: as one
    `id IN (... UNION ALL ...)` the database reads only those rows, where an OR across columns
    had SQLite read every rollup of the snapshot (50 recordings at 143k: 48 ms against 0.4 ms).
    """
    return [
        select(Recording.id).where(Recording.dataset_id == dataset_id, lookup.condition(dialect))
        for lookup in NAME_COLUMNS[target](values)
    ]


def one_of(selects: Sequence[Select[Any]]) -> ColumnElement[bool]:
    """`recordings.id IN` the union of these SELECTs of ids (none: nothing)."""
    if not selects:
        return false()
    return Recording.id.in_(selects[0] if len(selects) == 1 else union_all(*selects))


def filter_clause(
    spec: FilterSpec, values: list[str], dataset_id: int, dialect: str
) -> ColumnElement[bool]:
    matched = one_of(matching_ids(spec.target, values, dataset_id, dialect))
    return not_(matched) if spec.exclude else matched


def recording_clause(subset: SubsetFilter, dataset_id: int, dialect: str) -> ColumnElement[bool]:
    """One WHERE clause over `recordings` for every recording-level filter that is set."""
    clauses = [
        filter_clause(spec, values, dataset_id, dialect)
        for spec in RECORDING_FILTERS
        if (values := subset.values_of(spec))
    ]
    return and_(true(), *clauses)


def excluded_ids(subset: SubsetFilter, dataset_id: int, dialect: str) -> list[Select[Any]]:
    """SELECTs of the ids of the recordings the filter's exclusions leave out (their union)."""
    return [
        ids
        for spec in EXCLUDING_FILTERS
        if (values := subset.values_of(spec))
        for ids in matching_ids(spec.target, values, dataset_id, dialect)
    ]


def release_filter_garbage(subset: SubsetFilter) -> None:
    """Free, now, what a query built from long value lists left behind.

    SQL expressions are reference cycles, so their array parameters (megabytes for 100,000
    names) outlive the request until a full collection, which comes rarely: 100 such questions
    grew a server by 240 MiB before one ran. The cycles are young, so the two young generations
    suffice (~10 ms, against ~150 ms for a full collection).
    """
    if has_long_values(subset):
        gc.collect(1)


def has_long_values(subset: SubsetFilter) -> bool:
    """Whether a filter lists more than LONG_FILTER_VALUES values in one filter."""
    return any(len(subset.values_of(spec)) > LONG_FILTER_VALUES for spec in FILTERS)


def describe(subset: SubsetFilter) -> str:
    """The filter in plain English, e.g. for the dashboard and logs. The fold settings only
    with folds: without them they shape nothing."""
    parts = [
        f"{spec.selects}: {', '.join(values)}"
        for spec in FILTERS
        if (values := subset.values_of(spec)) and (spec.many or subset.has_folds())
    ]
    return "; ".join(parts) or "all windows"

"""Filters -> SQL over the recordings table. Filters are declared in
seizure_stats.schemas.filters; here, what each kind of value (a patient, a session, a recording)
matches.

Values are always bound parameters, never spliced into SQL. Long value lists travel as one
parameter (a JSON array on SQLite, an array on Postgres), so thousands of recordings cost one
bind instead of hitting the driver's parameter limit.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ARRAY, String, and_, any_, bindparam, false, func, not_, or_, select, true
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import ColumnElement

from app.models import Recording
from seizure_stats.schemas.filters import FILTERS, FilterSpec, SubsetFilter

Column = ColumnElement[Any] | InstrumentedAttribute[Any]
# Past this many values a list goes to the database as one array parameter.
INLINE_VALUES = 200
# A column a filter's values are compared with, and the values compared with it.
NameColumn = tuple[Column, list[str]]


def in_values(column: Column, values: Sequence[str], dialect: str) -> ColumnElement[bool]:
    """`column IN values`, with the long-list form chosen per dialect."""
    if not values:
        return false()
    if len(values) <= INLINE_VALUES:
        return column.in_(list(values))
    if dialect == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(String)))
    table = func.json_each(bindparam(None, json.dumps(list(values)), type_=String))
    return column.in_(select(table.table_valued("value").c.value))


def _patient(values: list[str]) -> list[NameColumn]:
    return [(Recording.patient, values)]


def _session(values: list[str]) -> list[NameColumn]:
    """`s018` matches that session of every patient; `aaaaagxr_s018` one patient's session.

    A patient never contains `_` (it is the part of the stem before the first one), so
    `patient || '_' || session` equals `aaaaagxr_s018` exactly when both parts match. One IN over
    that expression keeps thousands of qualified sessions to one clause: an OR of pairs was too
    deep an expression for SQLite past a thousand of them.
    """
    bare = [v for v in values if "_" not in v]
    qualified = [v for v in values if "_" in v]
    patient_session = Recording.patient + "_" + Recording.session
    return [
        (column, part)
        for column, part in ((Recording.session, bare), (patient_session, qualified))
        if part
    ]


def _recording(values: list[str]) -> list[NameColumn]:
    return [(Recording.cache_file, values), (Recording.stem, values)]


# What a value of each recording-level target is compared with: (column, values) pairs, a value
# matching a recording when one of its pairs' columns equals it. The filter's clause
# (filter_clause) and the check for values that name nothing (app.queries.unmatched) are both
# made from these, so the two cannot disagree. Categories are a window-level filter, applied by
# the subset query (SubsetFilter.selected_categories).
NAME_COLUMNS: dict[str, Callable[[list[str]], list[NameColumn]]] = {
    "patient": _patient,
    "session": _session,
    "recording": _recording,
}


def _matching(target: str) -> Callable[[list[str], str], ColumnElement[bool]]:
    def matches(values: list[str], dialect: str) -> ColumnElement[bool]:
        pairs = NAME_COLUMNS[target](values)
        return or_(false(), *(in_values(column, part, dialect) for column, part in pairs))

    return matches


# What a value of each recording-level target matches, as SQL over `recordings`.
MATCHES: dict[str, Callable[[list[str], str], ColumnElement[bool]]] = {
    target: _matching(target) for target in NAME_COLUMNS
}
RECORDING_FILTERS: tuple[FilterSpec, ...] = tuple(s for s in FILTERS if s.target in MATCHES)


def filter_clause(spec: FilterSpec, values: list[str], dialect: str) -> ColumnElement[bool]:
    matched = MATCHES[spec.target](values, dialect)
    return not_(matched) if spec.exclude else matched


def recording_clause(subset: SubsetFilter, dialect: str) -> ColumnElement[bool]:
    """One WHERE clause over `recordings` for every recording-level filter that is set."""
    clauses = [
        filter_clause(spec, values, dialect)
        for spec in RECORDING_FILTERS
        if (values := subset.values_of(spec))
    ]
    return and_(true(), *clauses)


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
    """Whether a filter lists more values than are inlined: work on it costs milliseconds."""
    return any(len(subset.values_of(spec)) > INLINE_VALUES for spec in FILTERS)


def describe(subset: SubsetFilter) -> str:
    """The filter in plain English, e.g. for the dashboard and logs. The fold settings only
    with folds: without them they shape nothing."""
    parts = [
        f"{spec.selects}: {', '.join(values)}"
        for spec in FILTERS
        if (values := subset.values_of(spec)) and (spec.many or subset.has_folds())
    ]
    return "; ".join(parts) or "all windows"

"""Breakdowns: a subset's exact counts per patient, session, recording or category.

The same subset as `stats` (one WHERE clause from `filters`, categories as column choices,
missing recordings excluded and counted apart), summed in the database from the
per-recording rollups with one GROUP BY: the cost follows the number of recordings.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, Select, case, cast, func, literal, select
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.elements import ColumnElement

from app.models import Dataset, Recording, Snapshot
from app.queries.stats import make_counts, sample_counts
from app.queries.subset import (
    Subset,
    added,
    answer_source,
    rollup_column,
    when_missing,
    when_present,
)
from app.queries.subset_counts import SubsetCounts, count_subset
from app.queries.unmatched import checked_filters
from app.storage.rollup_totals import KINDS
from seizure_stats.labels import ratio
from seizure_stats.schemas.questions import CATEGORY_NAMES, CategoryName
from seizure_stats.schemas.reports import (
    DEFAULT_BREAKDOWN_LIMIT,
    BreakdownGroup,
    BreakdownQuery,
    BreakdownResponse,
)

SQLColumn = ColumnElement[Any] | InstrumentedAttribute[Any]


@dataclass(frozen=True)
class _Grouping:
    """What a breakdown groups by: the GROUP BY columns and the key they make."""

    columns: tuple[SQLColumn, ...]
    key: ColumnElement[str]


def _grouping(by: str, dialect: str) -> _Grouping:
    if by == "patient":
        return _Grouping((Recording.patient,), _bytewise(Recording.patient, dialect))
    if by == "session":
        # The key is the value the session filter takes back: `patient_session`.
        key = case(
            (Recording.session.is_(None), Recording.patient),
            else_=Recording.patient + "_" + Recording.session,
        )
        return _Grouping((Recording.patient, Recording.session), _bytewise(key, dialect))
    return _Grouping(
        (Recording.cache_file, Recording.patient, Recording.session),
        _bytewise(Recording.cache_file, dialect),
    )


def _bytewise(column: SQLColumn, dialect: str) -> ColumnElement[str]:
    # Names sort by code point on every backend (SQLite's default); a Postgres locale would not.
    if dialect == "postgresql":
        return column.collate("C")
    return column.expression if isinstance(column, InstrumentedAttribute) else column


def compute_breakdown(
    session: Session,
    dataset: Dataset,
    snapshot: Snapshot,
    query: BreakdownQuery,
    *,
    unpaged: bool = False,
) -> BreakdownResponse:
    """The subset's groups with exact counts, sorted and paged, plus the subset's totals.

    Without a `limit` in the query, a page holds DEFAULT_BREAKDOWN_LIMIT groups, or every
    group when `unpaged` (exports).
    """
    unmatched = checked_filters(session, snapshot, query, strict=query.strict)
    subset = count_subset(session, snapshot, query, recordings_by_category=query.by == "category")
    w = subset.windows
    totals = make_counts(w["partial_seizure"], w["full_seizure"], w["no_seizure"])
    limit = query.limit
    if limit is None and not unpaged:
        limit = DEFAULT_BREAKDOWN_LIMIT
    if query.by == "category":
        everything = _category_groups(subset, snapshot, totals.total)
        groups = _sort_in_memory(everything, query.sort, query.order)
        total_groups = len(groups)
        groups = groups[query.offset :][:limit]
    else:
        grouped = _grouped_select(session, snapshot, query)
        count_query = select(func.count()).select_from(grouped.subquery())
        total_groups = int(session.scalar(count_query) or 0)
        dialect = session.get_bind().dialect.name
        page = _ordered(grouped, query, dialect).offset(query.offset)
        if limit is not None:
            page = page.limit(limit)
        groups = [
            _group_from_row(row, query.by, snapshot, totals.total)
            for row in session.execute(page).mappings()
        ]
    return BreakdownResponse(
        **answer_source(dataset, snapshot),
        by=query.by,
        sort=query.sort,
        order=query.order,
        limit=limit,
        offset=query.offset,
        total_groups=total_groups,
        totals=totals,
        missing_windows=subset.missing_windows,
        groups=groups,
        **unmatched.report(list(subset.warnings)),
    )


def _grouped_select(session: Session, snapshot: Snapshot, query: BreakdownQuery) -> Select[Any]:
    subset = Subset.of(session, snapshot, query)
    grouping = _grouping(query.by, subset.dialect)
    selected = subset.selected_windows()
    sums = [
        func.sum(when_present(rollup_column(c, kind))).label(f"{c}_{kind}")
        for c in subset.categories
        for kind in KINDS
    ]
    return (
        subset.rollups(
            *grouping.columns,
            grouping.key.label("key"),
            *sums,
            func.sum(when_present(case((selected > 0, 1), else_=0))).label("recordings"),
            func.sum(when_missing(selected)).label("missing_windows"),
        )
        .group_by(*grouping.columns)
        .having(func.sum(selected) > 0)
    )


def _ordered(grouped: Select[Any], query: BreakdownQuery, dialect: str) -> Select[Any]:
    """ORDER BY the whitelisted sort field, then the key, so pages never overlap."""
    key = _grouping(query.by, dialect).key
    categories = query.selected_categories()

    def present_sum(names: tuple[str, ...]) -> ColumnElement[Any]:
        return added(
            func.sum(when_present(rollup_column(name, "windows")))
            for name in names
            if name in categories
        )

    seizure = present_sum(("partial_seizure", "full_seizure"))
    everything = present_sum(CATEGORY_NAMES)
    expressions: dict[str, ColumnElement[Any]] = {
        "key": key,
        "total": everything,
        "share": everything,
        "seizure": seizure,
        "partial_seizure": present_sum(("partial_seizure",)),
        "full_seizure": present_sum(("full_seizure",)),
        "no_seizure": present_sum(("no_seizure",)),
        "seizure_ratio": func.coalesce(
            cast(seizure, Float) / func.nullif(everything, 0), literal(0.0, Float)
        ),
        "recordings": grouped.selected_columns.recordings,
        "missing_windows": grouped.selected_columns.missing_windows,
    }
    chosen = expressions[query.sort]
    first = chosen.desc() if query.order == "desc" else chosen.asc()
    tie_break = key.desc() if query.order == "desc" and query.sort == "key" else key.asc()
    return grouped.order_by(first, tie_break)


def _group_from_row(row: Any, by: str, snapshot: Snapshot, subset_total: int) -> BreakdownGroup:
    values = {(c, kind): int(row.get(f"{c}_{kind}") or 0) for c in CATEGORY_NAMES for kind in KINDS}
    counts = make_counts(
        values["partial_seizure", "windows"],
        values["full_seizure", "windows"],
        values["no_seizure", "windows"],
    )
    samples, sample_ratio = sample_counts(
        snapshot,
        sum(values[c, "pos"] for c in CATEGORY_NAMES),
        sum(values[c, "samples"] for c in CATEGORY_NAMES),
    )
    return BreakdownGroup(
        key=row["key"],
        patient=row["patient"],
        session=row["session"] if by in ("session", "recording") else None,
        recording=row["cache_file"] if by == "recording" else None,
        counts=counts,
        seizure_ratio=ratio(counts.seizure, counts.total),
        share=ratio(counts.total, subset_total),
        samples=samples,
        sample_ratio=sample_ratio,
        recordings=int(row["recordings"] or 0),
        missing_windows=int(row["missing_windows"] or 0),
    )


def _category_groups(
    subset: SubsetCounts, snapshot: Snapshot, subset_total: int
) -> list[BreakdownGroup]:
    """One group per selected category that has windows, from the subset's totals."""
    groups = []
    for c, recordings in subset.recordings_by_category.items():
        windows, missing = subset.windows[c], subset.missing_by_category[c]
        if windows == 0 and missing == 0:
            continue
        counts = make_counts(
            windows if c == "partial_seizure" else 0,
            windows if c == "full_seizure" else 0,
            windows if c == "no_seizure" else 0,
        )
        samples, sample_ratio = sample_counts(
            snapshot, subset.positive_samples[c], subset.samples[c]
        )
        groups.append(
            BreakdownGroup(
                key=c,
                category=typing.cast(CategoryName, c),
                counts=counts,
                seizure_ratio=ratio(counts.seizure, counts.total),
                share=ratio(counts.total, subset_total),
                samples=samples,
                sample_ratio=sample_ratio,
                recordings=recordings,
                missing_windows=missing,
            )
        )
    return groups


def _sort_in_memory(groups: list[BreakdownGroup], sort: str, order: str) -> list[BreakdownGroup]:
    """The category breakdown has at most three rows: sorted here, by the same rules as SQL."""

    def value(group: BreakdownGroup) -> Any:
        if sort == "key":
            return group.key
        if sort in ("total", "share"):
            return group.counts.total
        if sort in ("seizure", "partial_seizure", "full_seizure", "no_seizure"):
            return getattr(group.counts, sort)
        if sort == "seizure_ratio":
            return group.seizure_ratio
        return getattr(group, sort)

    by_key = sorted(groups, key=lambda g: g.key)
    return sorted(by_key, key=value, reverse=order == "desc")

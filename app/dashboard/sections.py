"""What the dataset page's sections show besides the subset's stats: the composition, the
breakdown (searchable, paged), the histogram split by category, and the files a scan skipped."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy.orm import Session

from app import catalog
from app.dashboard.charts import full_per_bin, histogram_chart
from app.models import Dataset, Snapshot
from app.queries.breakdown import compute_breakdown
from app.queries.histogram import compute_histogram
from app.queries.stats import compute_stats
from app.scan.status import snapshot_scan_issues
from seizure_stats.schemas.questions import FILTER_FIELDS, StatsQuery, SubsetFilter
from seizure_stats.schemas.reports import (
    MAX_BREAKDOWN_LIMIT,
    BreakdownQuery,
    BreakdownResponse,
    HistogramQuery,
)

# Page links shown on either side of the current page, besides the first and the last.
PAGES_AROUND = 2


def composition_context(
    session: Session, dataset: Dataset, snapshot: Snapshot, subset: dict[str, Any]
) -> dict[str, Any]:
    """The whole snapshot: its manifest counts, what is present, and how many patients.

    When the subset is the whole snapshot its answers are these: asked again, they doubled the
    time of the page's most common view (a second of a 10M-window snapshot).
    """
    whole = StatsQuery(snapshot=snapshot.id)
    everything = subset.get("stats")
    if everything is None or subset.get("stats_query") != whole:
        everything = compute_stats(session, dataset, snapshot, whole)
    by_patient = BreakdownQuery(snapshot=snapshot.id, limit=1)
    grouping = {*FILTER_FIELDS, "by"}
    asked: BreakdownQuery | None = subset.get("breakdown_query")
    breakdown: BreakdownResponse | None = subset.get("breakdown")
    if (
        breakdown is None
        or asked is None
        or subset.get("searched")
        or asked.model_dump(include=grouping) != by_patient.model_dump(include=grouping)
    ):
        breakdown = compute_breakdown(session, dataset, snapshot, by_patient)
    return {
        "manifest": catalog.snapshot_out(snapshot, dataset).counts,
        "stats": everything,
        "patients": breakdown.total_groups,
    }


def search_breakdown(
    session: Session, dataset: Dataset, snapshot: Snapshot, query: BreakdownQuery, prefix: str
) -> BreakdownResponse:
    """The breakdown's page, of only the groups whose key starts with `prefix` (any case).

    The API has no such filter: the groups are computed in the database, in the chosen order,
    and the ones that match are paged here.
    """
    prefix = prefix.strip().casefold()
    if not prefix:
        return compute_breakdown(session, dataset, snapshot, query)
    every = query.model_copy(update={"limit": MAX_BREAKDOWN_LIMIT, "offset": 0})
    answer = compute_breakdown(session, dataset, snapshot, every)
    found = [group for group in answer.groups if group.key.casefold().startswith(prefix)]
    limit = query.limit or len(found)
    return answer.model_copy(
        update={
            "groups": found[query.offset : query.offset + limit],
            "total_groups": len(found),
            "limit": query.limit,
            "offset": query.offset,
        }
    )


def hidden_fields(query_string: str, *dropped: str) -> list[tuple[str, str]]:
    """A page's query string as (name, value) pairs for a form's hidden inputs, less `dropped`:
    a form of its own (search, balanced selection) keeps the rest of what the page was asked."""
    return [(k, v) for k, v in parse_qsl(query_string.lstrip("?")) if k not in dropped]


def page_links(total: int, limit: int, offset: int) -> list[tuple[int, int | None]]:
    """(page number, its offset) for the pager: the first, the last and those around the current
    one; a None offset is a gap."""
    pages = -(-total // limit)
    current = offset // limit + 1
    shown = sorted({1, pages} | set(range(current - PAGES_AROUND, current + PAGES_AROUND + 1)))
    links: list[tuple[int, int | None]] = []
    for number in (n for n in shown if 1 <= n <= pages):
        if links and number - links[-1][0] > 1:
            links.append((0, None))
        links.append((number, (number - 1) * limit))
    return links


def histogram_context(
    session: Session,
    dataset: Dataset,
    snapshot: Snapshot,
    subset: SubsetFilter,
    bins: int,
    full_windows: int,
) -> dict[str, Any]:
    """The subset's histogram, each bin split into its partial and full-seizure windows.

    `full_windows` (the subset's full-seizure count) places them; only if it does not fit are
    the full-seizure windows binned on their own, which reads them all a second time.
    """
    if not snapshot.has_sample_counts:
        return {"histogram": None, "chart": None}
    filters = subset.model_dump(include=set(FILTER_FIELDS))
    query = HistogramQuery.model_validate(filters | {"bins": bins})
    histogram = compute_histogram(session, dataset, snapshot, query)
    full = full_per_bin(histogram, dataset.full_threshold, full_windows)
    if full is None:
        only_full = query.model_copy(update={"category": ["full_seizure"]})
        full = [b.count for b in compute_histogram(session, dataset, snapshot, only_full).bins]
    return {"histogram": histogram, "chart": histogram_chart(histogram, full)}


def scan_issues_context(session: Session, dataset: Dataset, snapshot: Snapshot) -> dict[str, Any]:
    issues = snapshot_scan_issues(session, dataset, snapshot)
    url = f"/api/v1/datasets/{dataset.name}/snapshots/{snapshot.id}/scan-issues"
    return {"scan_issues": issues, "scan_issues_url": url}

"""Dashboard pages. Thin like the API routers: read the query, ask the core, render a template."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from app import catalog
from app.api.deps import ReadAccess, ReadSessionDep
from app.dashboard import snippets
from app.dashboard.balanced import BALANCED_OPTIONS, balanced_context
from app.dashboard.diff_rates import rate_change
from app.dashboard.folds import FOLD_OPTIONS, folds_context
from app.dashboard.sections import (
    composition_context,
    histogram_context,
    page_links,
    scan_issues_context,
    search_breakdown,
)
from app.dashboard.templating import templates_of
from app.errors import AppError, InvalidRequestError
from app.models import Dataset, Snapshot
from app.queries.diff import diff_snapshots
from app.queries.filters import describe
from app.queries.stats import compute_stats
from seizure_stats.schemas.filters import FILTERS, FOLD_FILTERS, FOLD_SETTINGS, NAME_FILTERS
from seizure_stats.schemas.questions import BASES, WEIGHTINGS, SnapshotId, StatsQuery, StatsResponse
from seizure_stats.schemas.reports import (
    BREAKDOWN_SORTS,
    GROUP_BY,
    BreakdownQuery,
    Offset,
)

# Pages show what the API would: closed too when reads need a token.
router = APIRouter(include_in_schema=False, dependencies=[ReadAccess])
PAGE_SIZE = 25
HISTOGRAM_BINS = 20
# The filters typed in as names (the form's text boxes); categories are ticked.
TEXT_FILTERS: tuple[str, ...] = tuple(spec.name for spec in NAME_FILTERS)
# One-value settings chosen from a list (what the folds are stratified by): the form's selects.
CHOICE_SETTINGS = tuple(spec for spec in FILTERS if spec.choices and not spec.many)
SETTING_FILTERS: tuple[str, ...] = tuple(spec.name for spec in CHOICE_SETTINGS)
# The page's own parameters, besides the filters: kept across sorting and paging links.
OPTIONS: tuple[str, ...] = (
    "snapshot",
    "weighting",
    "basis",
    "beta",
    "by",
    "sort",
    "order",
    "offset",
)
OPTIONS += ("find", *BALANCED_OPTIONS, *FOLD_OPTIONS)
SNAPSHOT_ID: TypeAdapter[int] = TypeAdapter(SnapshotId)
OFFSET: TypeAdapter[int] = TypeAdapter(Offset)


def parse_number(adapter: TypeAdapter[int], name: str, raw: str) -> int:
    """A number from the address, checked by the API's own type: a 422 page naming it otherwise
    (`²` passes str.isdigit() and then fails int(); a huge id, the database)."""
    try:
        return adapter.validate_python(raw)
    except ValidationError as exc:
        problem = exc.errors()[0].get("msg", "invalid")
        raise InvalidRequestError(f"{name}: {problem} (got {raw[:80]!r})") from None


def comma_separated(values: list[str]) -> list[str]:
    """`category=a,b` as the API reads it: each value split at its commas. An empty part is kept,
    for the query model to refuse by name."""
    return [part.strip() for value in values for part in value.split(",")]


@dataclass
class PageState:
    """What the dataset page was asked: the raw form values (to show them back) and options."""

    values: dict[str, str] = field(default_factory=dict)
    categories: list[str] = field(default_factory=list)
    snapshot_id: int | None = None  # None: the current snapshot
    offset: int = 0

    @classmethod
    def from_request(cls, request: Request) -> PageState:
        params = request.query_params
        values = {name: ", ".join(params.getlist(name)) for name in TEXT_FILTERS}
        values |= {name: params.get(name, "") for name in (*SETTING_FILTERS, *OPTIONS)}
        snapshot, offset = values["snapshot"], values["offset"]
        return cls(
            values=values,
            categories=comma_separated(params.getlist("category")),
            snapshot_id=parse_number(SNAPSHOT_ID, "snapshot", snapshot) if snapshot else None,
            offset=parse_number(OFFSET, "offset", offset) if offset else 0,
        )

    def filter_data(self) -> dict[str, Any]:
        # The form sends every box, a blank one too: that one is no filter. Anything else goes
        # to the query models, which refuse an empty value inside a list (`a,,b`).
        data: dict[str, Any] = {
            name: value for name in TEXT_FILTERS if (value := self.values[name]).strip()
        }
        data |= {name: value for name in SETTING_FILTERS if (value := self.values[name])}
        # The form always sends its selects: without a fold they are no part of the question,
        # which then stays the one the page's other parts ask (and answer once).
        if not any(spec.name in data for spec in FOLD_FILTERS):
            for spec in FOLD_SETTINGS:
                data.pop(spec.name, None)
        data["category"] = self.categories
        return data

    def stats_query(self, snapshot_id: int) -> StatsQuery:
        data = self.filter_data() | {"snapshot": snapshot_id}
        for name in ("weighting", "basis", "beta"):
            if self.values[name]:
                data[name] = self.values[name]
        return StatsQuery.model_validate(data)

    def breakdown_query(self, snapshot_id: int) -> BreakdownQuery:
        by = self.values["by"] if self.values["by"] in GROUP_BY else "patient"
        sort = self.values["sort"] if self.values["sort"] in BREAKDOWN_SORTS else "seizure"
        order = self.values["order"] if self.values["order"] in ("asc", "desc") else "desc"
        return BreakdownQuery.model_validate(
            self.filter_data()
            | {"snapshot": snapshot_id, "by": by, "sort": sort, "order": order}
            | {"limit": PAGE_SIZE, "offset": self.offset}
        )

    def link(self, **changes: str | int | None) -> str:
        """This page's query string with some parameters changed (None drops one)."""
        pairs: list[tuple[str, str]] = []
        merged: dict[str, Any] = dict(self.values) | changes
        for name in (*TEXT_FILTERS, *SETTING_FILTERS):
            if merged[name]:
                pairs.append((name, str(merged[name])))
        pairs += [("category", c) for c in self.categories]
        pairs += [(n, str(merged[n])) for n in OPTIONS if merged.get(n) not in (None, "")]
        return "?" + urlencode(pairs) if pairs else "?"


@router.get("/", response_class=HTMLResponse)
def datasets_page(request: Request, session: ReadSessionDep) -> HTMLResponse:
    rows = []
    for dataset in catalog.list_datasets(session):
        summary = catalog.dataset_out(session, dataset)
        stats = None
        if dataset.current_snapshot_id is not None:
            snapshot = catalog.get_snapshot(session, dataset, dataset.current_snapshot_id)
            stats = compute_stats(session, dataset, snapshot, StatsQuery())
        rows.append({"dataset": summary, "stats": stats})
    return templates_of(request).TemplateResponse(request, "index.html", {"rows": rows})


def error_page(request: Request, exc: AppError) -> HTMLResponse:
    """An HTML answer for a page that cannot be shown (the API answers JSON instead)."""
    return templates_of(request).TemplateResponse(
        request, "error.html", {"error": exc}, status_code=exc.status_code
    )


@router.get("/datasets/{name}", response_class=HTMLResponse)
def dataset_page(name: str, request: Request, session: ReadSessionDep) -> HTMLResponse:
    try:
        return _dataset_page(name, request, session)
    except AppError as exc:
        return error_page(request, exc)


def _dataset_page(name: str, request: Request, session: Session) -> HTMLResponse:
    dataset = catalog.get_dataset(session, name)
    state = PageState.from_request(request)
    snapshots = catalog.list_snapshots(session, dataset)
    context: dict[str, Any] = {
        "dataset": dataset,
        "state": state,
        "snapshots": [catalog.snapshot_out(s, dataset) for s in snapshots],
        "name_filters": NAME_FILTERS,
        "choice_settings": CHOICE_SETTINGS,
        "weightings": WEIGHTINGS,
        "bases": BASES,
    }
    if not snapshots:
        return templates_of(request).TemplateResponse(request, "dataset.html", context)
    snapshot = _chosen_snapshot(session, dataset, snapshots, state)
    context |= _subset_context(request, session, dataset, snapshot, state)
    composition = composition_context(session, dataset, snapshot, context)
    context |= {"snapshot": snapshot, "composition": composition}
    context |= scan_issues_context(session, dataset, snapshot)
    context |= balanced_context(
        session, dataset, snapshot, state.filter_data(), state.values, state.link(offset=None)
    )
    context |= folds_context(session, dataset, snapshot, state.values)
    return templates_of(request).TemplateResponse(request, "dataset.html", context)


def _chosen_snapshot(
    session: Session, dataset: Dataset, snapshots: list[Snapshot], state: PageState
) -> Snapshot:
    if state.snapshot_id is not None:
        return catalog.get_snapshot(session, dataset, state.snapshot_id)
    return catalog.resolve_snapshot(session, dataset, None)


def _subset_context(
    request: Request, session: Session, dataset: Dataset, snapshot: Snapshot, state: PageState
) -> dict[str, Any]:
    """The chosen subset's stats, breakdown and histogram, or the reason it has none.

    A wrong option (weighting, basis, β) spoils only the numbers it shapes: the stats. The
    breakdown and histogram depend on the filter alone and are shown all the same.
    """
    context: dict[str, Any] = {"errors": [], "field_errors": {}}
    try:
        breakdown_query = state.breakdown_query(snapshot.id)
    except ValidationError as exc:
        context["errors"] = [_problem(error) for error in exc.errors()]
        return context
    context["description"] = describe(breakdown_query)
    query: StatsQuery | None = None
    try:
        query = state.stats_query(snapshot.id)
    except ValidationError as exc:
        context["field_errors"] = {str(e["loc"][0]): e.get("msg", "invalid") for e in exc.errors()}
    stats: StatsResponse | None = None
    if query is not None:
        try:
            stats = compute_stats(session, dataset, snapshot, query)
        except AppError as exc:
            context["errors"].append(exc.detail)
    prefix = state.values["find"]
    breakdown = search_breakdown(session, dataset, snapshot, breakdown_query, prefix)
    pages = page_links(breakdown.total_groups, PAGE_SIZE, breakdown.offset)
    full_windows = breakdown.totals.full_seizure
    context |= histogram_context(
        session, dataset, snapshot, breakdown_query, HISTOGRAM_BINS, full_windows
    )
    context |= {
        "stats": stats,
        "stats_query": query,
        "breakdown_query": breakdown_query,
        "searched": bool(prefix.strip()),
        "breakdown": breakdown,
        "pages": pages,
        "csv_url": _api_url(dataset, "breakdown", breakdown_query, format="csv"),
    }
    if query is not None:
        base_url = str(request.base_url).rstrip("/")
        context |= {
            "curl": snippets.curl_snippet(base_url, dataset.name, query),
            "python": snippets.python_snippet(base_url, dataset.name, query),
            "stats_url": _api_url(dataset, "stats", query),
        }
    return context


def _api_url(dataset: Dataset, endpoint: str, query: Any, **extra: str) -> str:
    data = query.model_dump(exclude_defaults=True, exclude={"limit", "offset"})
    pairs = [
        (key, str(item))
        for key, value in data.items()
        for item in (value if isinstance(value, list) else [value])
    ]
    pairs += list(extra.items())
    suffix = "?" + urlencode(pairs) if pairs else ""
    return f"/api/v1/datasets/{dataset.name}/{endpoint}{suffix}"


def _problem(error: Any) -> str:
    where = ".".join(str(part) for part in error.get("loc", ())) or "form"
    return f"{where}: {error.get('msg', 'invalid')}"


@router.get("/datasets/{name}/snapshots/{a}/diff/{b}", response_class=HTMLResponse)
def diff_page(name: str, a: str, b: str, request: Request, session: ReadSessionDep) -> HTMLResponse:
    try:
        old_id, new_id = parse_number(SNAPSHOT_ID, "a", a), parse_number(SNAPSHOT_ID, "b", b)
        dataset = catalog.get_dataset(session, name)
        old = catalog.get_snapshot(session, dataset, old_id)
        new = catalog.get_snapshot(session, dataset, new_id)
        diff = diff_snapshots(session, dataset, old, new)
        rates = rate_change(session, dataset, old, new)
    except AppError as exc:
        return error_page(request, exc)
    context = {
        "dataset": dataset,
        "diff": diff,
        "rates": rates,
        "old": catalog.snapshot_out(old, dataset),
        "new": catalog.snapshot_out(new, dataset),
        "api_url": f"/api/v1/datasets/{dataset.name}/snapshots/{old_id}/diff/{new_id}",
    }
    return templates_of(request).TemplateResponse(request, "diff.html", context)


@router.get("/datasets/{name}/diff", response_class=RedirectResponse)
def compare_form(name: str, a: str, b: str, request: Request) -> Response:
    """The history's compare form lands here; the diff page has a path of its own."""
    try:
        old_id, new_id = parse_number(SNAPSHOT_ID, "a", a), parse_number(SNAPSHOT_ID, "b", b)
    except AppError as exc:
        return error_page(request, exc)
    return RedirectResponse(f"/datasets/{name}/snapshots/{old_id}/diff/{new_id}", status_code=303)

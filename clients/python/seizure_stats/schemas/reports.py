"""Wire models of the breakdown, snapshot diff and histogram answers.

Kept beside `schemas.py` (whose rules they follow: pydantic and the standard library only), so
the client can use them too.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, Field

from seizure_stats.schemas.questions import (
    MAX_ID,
    CategoryName,
    Counts,
    SampleCounts,
    SnapshotId,
    Strict,
    SubsetFilter,
    Unmatched,
    UnmatchedCounts,
    WarningDetails,
)

GroupBy = Literal["patient", "session", "recording", "category"]
BreakdownSort = Literal[
    "key",
    "total",
    "seizure",
    "partial_seizure",
    "full_seizure",
    "no_seizure",
    "seizure_ratio",
    "share",
    "recordings",
    "missing_windows",
]
SortOrder = Literal["asc", "desc"]
GROUP_BY: tuple[str, ...] = ("patient", "session", "recording", "category")
BREAKDOWN_SORTS: tuple[str, ...] = get_args(BreakdownSort)
DEFAULT_BREAKDOWN_LIMIT = 100
MAX_BREAKDOWN_LIMIT = 100_000
MAX_HISTOGRAM_BINS = 1000
# Where a page of groups starts.
Offset = Annotated[int, Field(ge=0, le=MAX_ID)]


class BreakdownQuery(SubsetFilter):
    snapshot: SnapshotId | None = Field(default=None, description="Snapshot id; default current.")
    by: GroupBy = "patient"
    sort: BreakdownSort = "key"
    order: SortOrder = "asc"
    limit: int | None = Field(
        default=None,
        ge=1,
        le=MAX_BREAKDOWN_LIMIT,
        description=f"Groups per page; default {DEFAULT_BREAKDOWN_LIMIT} (CSV: every group).",
    )
    offset: Offset = 0
    strict: Strict = False


BreakdownFormat = Literal["json", "csv"]


class BreakdownParams(BreakdownQuery):
    """The query string of a GET of a breakdown: the question, and the format of the answer."""

    format: BreakdownFormat = Field(default="json", description="JSON, or every group as CSV.")


class BreakdownGroup(BaseModel):
    key: str = Field(
        description="The group's name: a patient, `patient_session`, a cache file name, or a "
        "category, usable as the value of the filter of the same name; recordings whose name "
        "has no session form one group per patient, keyed by the patient alone."
    )
    patient: str | None = None
    session: str | None = None
    recording: str | None = Field(default=None, description="Cache file name (by=recording).")
    category: CategoryName | None = None
    counts: Counts = Field(description="Windows of the group whose recording is present.")
    seizure_ratio: float
    share: float = Field(description="The group's share of the subset's present windows.")
    samples: SampleCounts
    sample_ratio: float | None
    recordings: int = Field(description="Present recordings with windows in the group.")
    missing_windows: int = Field(description="The group's windows whose recording is missing.")


# The warnings of a breakdown or a histogram.
ReportWarnings = Annotated[
    list[str],
    Field(
        default_factory=list,
        description="`unmatched_filter` warnings, one per such filter, then `fold_sparse_class` "
        "when a fold filter's split has a class with fewer windows than its k.",
    ),
]


class BreakdownResponse(BaseModel):
    dataset: str
    snapshot: int
    content_hash: str
    by: GroupBy
    sort: BreakdownSort
    order: SortOrder
    limit: int | None
    offset: int
    total_groups: int = Field(description="Groups in the whole answer, before paging.")
    totals: Counts = Field(description="The subset's counts: what the groups' counts add up to.")
    missing_windows: int
    groups: list[BreakdownGroup]
    warnings: ReportWarnings
    warning_details: WarningDetails
    unmatched: Unmatched
    unmatched_counts: UnmatchedCounts


class HistogramQuery(SubsetFilter):
    snapshot: SnapshotId | None = Field(default=None, description="Snapshot id; default current.")
    bins: int = Field(default=20, ge=1, le=MAX_HISTOGRAM_BINS)
    strict: Strict = False


class HistogramBin(BaseModel):
    lower: float
    upper: float
    count: int


class HistogramResponse(BaseModel):
    dataset: str
    snapshot: int
    content_hash: str
    zero: int = Field(description="Windows without a single positive sample (fraction 0).")
    bins: list[HistogramBin] = Field(
        description="Windows with a positive fraction n_pos / n_samples, in equal-width bins "
        "[lower, upper); the last bin includes 1.0."
    )
    total: int = Field(description="`zero` plus every bin: the subset's present windows.")
    missing_windows: int
    warnings: ReportWarnings
    warning_details: WarningDetails
    unmatched: Unmatched
    unmatched_counts: UnmatchedCounts


class CategoryChange(BaseModel):
    category: CategoryName
    a: int = Field(description="Windows of this category in snapshot a.")
    b: int = Field(description="Windows of this category in snapshot b.")
    added: int = Field(description="Windows new in b, in this category.")
    removed: int = Field(description="Windows of a that b no longer has, in this category.")
    changed_in: int = Field(description="Windows of another category in a, of this one in b.")
    changed_out: int = Field(description="Windows of this category in a, of another one in b.")


class CategoryMove(BaseModel):
    from_category: CategoryName
    to_category: CategoryName
    windows: int


class RecordingChange(BaseModel):
    recording: str
    windows_a: int
    windows_b: int
    added: int
    removed: int
    changed: int


class SnapshotDiff(BaseModel):
    dataset: str
    a: int
    b: int
    a_content_hash: str
    b_content_hash: str
    added: int = Field(description="Windows (recording, window_idx) in b but not in a.")
    removed: int = Field(description="Windows in a but not in b.")
    changed: int = Field(description="Windows in both whose category differs.")
    unchanged: int
    categories: list[CategoryChange]
    moves: list[CategoryMove] = Field(description="Category changes, by old and new category.")
    recordings: list[RecordingChange] = Field(
        description="Recordings with at least one added, removed or changed window, by name."
    )
    recordings_total: int
    truncated: bool = Field(description="True when `recordings` was cut at the limit.")

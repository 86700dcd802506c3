"""Wire models of the questions about a subset: the filter, stats and balanced answers.

Only pydantic and the standard library: the client imports these.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar, cast, get_args

from pydantic import BaseModel, Field, field_validator

from seizure_stats.schemas.filters import (
    CATEGORY_NAMES,
    FILTER_FIELDS,
    MAX_FILTER_VALUES,
    CategoryChoice,
    CategoryName,
    SubsetFilter,
    Text,
    refuse_unstorable,
    split_values,
)
from seizure_stats.schemas.provenance import Answer

__all__ = [
    "CATEGORY_NAMES",
    "FILTER_FIELDS",
    "MAX_FILTER_VALUES",
    "CategoryChoice",
    "CategoryName",
    "SubsetFilter",
    "Text",
    "refuse_unstorable",
    "split_values",
]

WeightingName = Literal["sqrt", "linear", "effective", "none"]
BasisName = Literal["window", "sample"]
# The weighting schemes and bases, for every surface that lists them (CLI, dashboard).
WEIGHTINGS: tuple[str, ...] = get_args(WeightingName)
BASES: tuple[str, ...] = get_args(BasisName)
# Ids are 32-bit integer columns on every backend; a larger number can name nothing.
MAX_ID = 2**31 - 1
MAX_INT64 = 2**63 - 1


def refuse_boolean(value: object) -> object:
    """JSON true and false are not numbers, though Python would take them for 1 and 0."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    return value


# A snapshot id, anywhere one is read (API, dashboard, CLI): within the database's column.
SnapshotId = Annotated[int, Field(ge=1, le=MAX_ID)]


class ErrorResponse(BaseModel):
    error: str = Field(description="A stable machine-readable code, e.g. `invalid_manifest`.")
    detail: str = Field(description="What went wrong, naming the offending input.")
    unmatched: dict[str, list[str]] | None = Field(
        default=None,
        description="With `unmatched_filter` (a strict question): each filter's values that "
        "match no recording of the snapshot (at most 1,000 a filter).",
    )
    unmatched_counts: dict[str, int] | None = Field(
        default=None, description="With `unmatched_filter`: how many values each filter has."
    )


# A question's own option, not a filter: refuse the answer when a filter value names nothing.
Strict = Annotated[
    bool,
    Field(
        description="Refuse (422 `unmatched_filter`) when a patient, session or recording value "
        "matches no recording of the snapshot, instead of answering with a warning."
    ),
]
# Each name filter's values that match no recording of the snapshot (only filters with some).
Unmatched = Annotated[
    dict[str, list[str]],
    Field(
        default_factory=dict,
        description="Per filter, its values that match no recording of the snapshot (sorted, "
        "the first 1,000; only filters with such values). Each also has an `unmatched_filter` "
        "warning.",
    ),
]
UnmatchedCounts = Annotated[
    dict[str, int],
    Field(
        default_factory=dict,
        description="Per filter in `unmatched`, how many of its values match nothing.",
    ),
]


class WarningDetail(BaseModel):
    """A warning as data: `warning_details` lists the `warnings` in the same order."""

    kind: str = Field(description="The warning's stable code, e.g. `unmatched_filter`.")
    message: str = Field(description="The warning's text, as in `warnings`.")
    parameter: str | None = Field(default=None, description="The filter (unmatched_filter).")
    values: list[str] | None = Field(
        default=None, description="Its values that match nothing (unmatched_filter)."
    )


WarningDetails = Annotated[
    list[WarningDetail],
    Field(default_factory=list, description="The warnings as data, in the same order."),
]


class StatsQuery(SubsetFilter):
    snapshot: SnapshotId | None = Field(default=None, description="Snapshot id; default current.")
    weighting: WeightingName = "sqrt"
    beta: float = Field(default=0.9999, ge=0, lt=1, description="For `effective` weighting.")
    basis: BasisName = "window"
    strict: Strict = False

    _numbers_only = field_validator("snapshot", "beta", mode="before")(refuse_boolean)


class BalancedQuery(SubsetFilter):
    snapshot: SnapshotId | None = Field(default=None, description="Snapshot id; default current.")
    full_ratio: float = Field(default=0.3, ge=0, le=1_000_000)
    background_ratio: float = Field(default=2.5, ge=0, le=1_000_000)
    seed: int = Field(default=42, ge=0, le=2**63 - 1)
    weighting: WeightingName = "sqrt"
    beta: float = Field(default=0.9999, ge=0, lt=1)
    strict: Strict = False

    _numbers_only = field_validator(
        "snapshot", "full_ratio", "background_ratio", "seed", "beta", mode="before"
    )(refuse_boolean)


IndexFormat = Literal["jsonl", "json", "npz"]


class BalancedIndexParams(BalancedQuery):
    """The query string of a GET of the index: the question, and the format of the answer."""

    format: IndexFormat = Field(
        default="jsonl",
        description="JSON lines, one JSON array, or `npz`: numpy arrays `cache_files` (each "
        "name once, sorted), and per entry `recording` (its position there) and `window_idx`.",
    )


Asked = TypeVar("Asked", bound=SubsetFilter)


def question_in(params: SubsetFilter, question: type[Asked]) -> Asked:
    """The question a query string asks, without what only shapes the answer (`format`)."""
    fields = {name: getattr(params, name) for name in question.model_fields}
    # The type checker's pydantic plugin types model_construct by the class that declares it.
    return cast(Asked, question.model_construct(None, **fields))


class Counts(BaseModel):
    no_seizure: int
    partial_seizure: int
    full_seizure: int
    seizure: int
    total: int


class SampleCounts(BaseModel):
    positive: int | None = Field(description="Positive label samples; null when unknown.")
    total: int | None = Field(description="Label samples; null when unknown.")


class StatsResponse(Answer):
    dataset: str
    snapshot: int
    content_hash: str
    counts: Counts
    samples: SampleCounts
    seizure_ratio: float
    sample_ratio: float | None
    weighting: WeightingName
    basis: BasisName
    beta: float
    pos_weight: float
    recordings: int = Field(
        description="Present recordings with at least one window in the subset."
    )
    missing_windows: int = Field(description="Windows of the subset whose recording is missing.")
    missing_recordings: int
    warnings: list[str]
    warning_details: WarningDetails
    unmatched: Unmatched
    unmatched_counts: UnmatchedCounts


class BalancedResponse(Answer):
    dataset: str
    snapshot: int
    content_hash: str
    counts: Counts
    seizure_ratio: float
    weighting: WeightingName
    pos_weight: float
    missing_skipped: int = Field(
        description="Drawn entries left out because their file is missing."
    )
    full_ratio: float
    background_ratio: float
    seed: int
    warnings: list[str]
    warning_details: WarningDetails
    unmatched: Unmatched
    unmatched_counts: UnmatchedCounts


class IndexEntry(BaseModel):
    cache_file: str
    window_idx: int

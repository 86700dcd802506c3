"""Wire models of the questions about a subset: the filter, stats and balanced answers.

Only pydantic and the standard library: the client imports these.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

CategoryName = Literal["partial_seizure", "full_seizure", "no_seizure"]
CategoryChoice = Literal["partial_seizure", "full_seizure", "no_seizure", "seizure"]
WeightingName = Literal["sqrt", "linear", "effective", "none"]
BasisName = Literal["window", "sample"]
CATEGORY_NAMES: tuple[str, ...] = ("partial_seizure", "full_seizure", "no_seizure")
FILTER_FIELDS: tuple[str, ...] = ("patient", "exclude_patient", "session", "recording", "category")
MAX_FILTER_VALUES = 100_000
# Ids are 32-bit integer columns on every backend; a larger number can name nothing.
MAX_ID = 2**31 - 1
MAX_INT64 = 2**63 - 1
# Half of a UTF-16 pair. JSON can write one alone ("\ud800") and Python reads it into a string,
# but it is no character: no driver can encode it for the database.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def refuse_unstorable(value: str) -> str:
    """No name contains a NUL character, and Postgres cannot even compare text holding one;
    nor a lone surrogate, which cannot even be stored."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    if not value.isascii() and LONE_SURROGATE.search(value):
        raise ValueError(
            "must not contain a lone surrogate (half of a UTF-16 pair, not a character)"
        )
    return value


def refuse_boolean(value: object) -> object:
    """JSON true and false are not numbers, though Python would take them for 1 and 0."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    return value


# Text that is stored or compared in the database.
Text = Annotated[str, AfterValidator(refuse_unstorable)]
# A snapshot id, anywhere one is read (API, dashboard, CLI): within the database's column.
SnapshotId = Annotated[int, Field(ge=1, le=MAX_ID)]


class ErrorResponse(BaseModel):
    error: str = Field(description="A stable machine-readable code, e.g. `invalid_manifest`.")
    detail: str = Field(description="What went wrong, naming the offending input.")


class SubsetFilter(BaseModel):
    """Which windows a question is about. Values within a filter are alternatives (OR); different
    filters must all hold (AND). A filter left out (or `[]`) matches everything; an empty value
    is refused (see split_values)."""

    model_config = ConfigDict(extra="forbid")

    patient: list[Text] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)
    exclude_patient: list[Text] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)
    session: list[Text] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)
    recording: list[Text] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)
    category: list[CategoryChoice] = Field(default_factory=list, max_length=4)

    @field_validator("patient", "exclude_patient", "session", "recording", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        return split_values(value)

    @field_validator("category", mode="before")
    @classmethod
    def _split_categories(cls, value: object) -> object:
        return split_values(value)

    def normalized(self) -> SubsetFilter:
        """Sorted, de-duplicated values, `seizure` expanded: equal filters compare equal."""
        categories: set[CategoryChoice] = set()
        for name in self.category:
            categories.update(("partial_seizure", "full_seizure") if name == "seizure" else (name,))
        # Built from values this model already validated: no second validation (a hot path).
        return SubsetFilter.model_construct(
            patient=sorted(set(self.patient)),
            exclude_patient=sorted(set(self.exclude_patient)),
            session=sorted(set(self.session)),
            recording=sorted(set(self.recording)),
            category=sorted(categories),
        )

    def selected_categories(self) -> tuple[str, ...]:
        chosen = set(self.normalized().category)
        return tuple(c for c in CATEGORY_NAMES if not chosen or c in chosen)


def split_values(value: object) -> object:
    """Accept a list, a single string, or comma-separated strings; refuse empty items.

    No filter is no parameter (or `[]`). `patient=` (a job script's `patient=$EMPTY`), `a,,b`
    or a value of spaces asks for a patient named "", which is surely a mistake: read as "no
    filter" it would silently widen the question to the whole dataset.
    """
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        out: list[object] = []
        for item in value:
            if isinstance(item, str):
                parts = [part.strip() for part in item.split(",")]
                if not all(parts):
                    raise PydanticCustomError(
                        "empty_filter_value",
                        "empty value in {item}: leave the parameter out (or send []) for no filter",
                        {"item": repr(item)},
                    )
                out.extend(parts)
            else:
                out.append(item)
        return out
    return value


class StatsQuery(SubsetFilter):
    snapshot: SnapshotId | None = Field(default=None, description="Snapshot id; default current.")
    weighting: WeightingName = "sqrt"
    beta: float = Field(default=0.9999, ge=0, lt=1, description="For `effective` weighting.")
    basis: BasisName = "window"

    _numbers_only = field_validator("snapshot", "beta", mode="before")(refuse_boolean)


class BalancedQuery(SubsetFilter):
    snapshot: SnapshotId | None = None
    full_ratio: float = Field(default=0.3, ge=0, le=1_000_000)
    background_ratio: float = Field(default=2.5, ge=0, le=1_000_000)
    seed: int = Field(default=42, ge=0, le=2**63 - 1)
    weighting: WeightingName = "sqrt"
    beta: float = Field(default=0.9999, ge=0, lt=1)

    _numbers_only = field_validator(
        "snapshot", "full_ratio", "background_ratio", "seed", "beta", mode="before"
    )(refuse_boolean)


class Counts(BaseModel):
    no_seizure: int
    partial_seizure: int
    full_seizure: int
    seizure: int
    total: int


class SampleCounts(BaseModel):
    positive: int | None = Field(description="Positive label samples; null when unknown.")
    total: int | None = Field(description="Label samples; null when unknown.")


class StatsResponse(BaseModel):
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


class BalancedResponse(BaseModel):
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


class IndexEntry(BaseModel):
    cache_file: str
    window_idx: int

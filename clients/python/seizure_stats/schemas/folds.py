"""Wire models of the cross-validation folds answer: each fold's test and training parts.

Only pydantic and the standard library: the client imports these. A part carries the fields of
the stats answer of that subset, and a training part the kept counts of its balanced selection,
so that a training job needs no other question to weight its loss fold by fold.
"""

from __future__ import annotations

from typing import get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from seizure_stats.schemas.fold_values import MAX_FOLD_SEED, MAX_FOLDS, StratifyChoice
from seizure_stats.schemas.provenance import Answer
from seizure_stats.schemas.questions import (
    Counts,
    SampleCounts,
    SnapshotId,
    WeightingName,
    refuse_boolean,
)

StratifyName = StratifyChoice
STRATIFY: tuple[str, ...] = get_args(StratifyName)
DEFAULT_K = 5


class FoldsQuery(BaseModel):
    """The folds asked for, and the options of the numbers given for each of their parts."""

    model_config = ConfigDict(extra="forbid")

    snapshot: SnapshotId | None = Field(default=None, description="Snapshot id; default current.")
    k: int = Field(default=DEFAULT_K, ge=2, le=MAX_FOLDS, description="Number of folds.")
    seed: int = Field(default=0, ge=0, le=MAX_FOLD_SEED, description="Seed of the shuffle.")
    stratify: StratifyName = Field(
        default="category",
        description="Balance the three categories across folds, or seizure against not.",
    )
    weighting: WeightingName = "sqrt"
    beta: float = Field(default=0.9999, ge=0, lt=1, description="For `effective` weighting.")
    full_ratio: float = Field(default=0.3, ge=0, le=1_000_000, description="Balanced selection.")
    background_ratio: float = Field(default=2.5, ge=0, le=1_000_000)
    balanced_seed: int = Field(
        default=42, ge=0, le=2**63 - 1, description="The balanced selection's `seed`."
    )

    _numbers_only = field_validator(
        "snapshot", "k", "seed", "beta", "full_ratio", "background_ratio", "balanced_seed",
        mode="before",
    )(refuse_boolean)  # fmt: skip


class FoldPart(BaseModel):
    """A fold's test or training part: the fields of the stats answer of that subset."""

    counts: Counts
    samples: SampleCounts
    seizure_ratio: float
    sample_ratio: float | None
    pos_weight: float
    recordings: int = Field(description="Present recordings with at least one window.")
    missing_windows: int = Field(description="Windows of the part whose recording is missing.")
    missing_recordings: int
    warnings: list[str]


class BalancedPart(BaseModel):
    """What the balanced selection keeps of a training part, as the balanced answer gives it."""

    counts: Counts
    seizure_ratio: float
    pos_weight: float
    missing_skipped: int = Field(
        description="Drawn entries left out because their file is missing."
    )
    warnings: list[str]


class Fold(BaseModel):
    fold: int = Field(description="Index of the fold, from 0.")
    patients: list[str] = Field(description="The patients of its test part, sorted.")
    test: FoldPart
    train: FoldPart
    balanced_train: BalancedPart | None = Field(
        description="Null when the training part has no partial_seizure window to balance."
    )


class RatioRange(BaseModel):
    min: float
    max: float


class FoldSpread(BaseModel):
    """How far the seizure ratio of the folds' parts differ: the less, the better stratified."""

    test_seizure_ratio: RatioRange
    train_seizure_ratio: RatioRange


class FoldsResponse(Answer):
    dataset: str
    snapshot: int
    content_hash: str
    k: int
    seed: int
    stratify: StratifyName
    weighting: WeightingName
    beta: float
    full_ratio: float
    background_ratio: float
    balanced_seed: int
    patients: int = Field(description="Patients with at least one window, in some test part.")
    folds: list[Fold]
    spread: FoldSpread
    warnings: list[str] = Field(description="What scikit-learn would warn of, and empty parts.")

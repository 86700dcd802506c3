"""Wire models of datasets, snapshots, imports, recordings and presence reports."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from seizure_stats.schemas.questions import Counts, Text, refuse_boolean


class DatasetCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128)
    description: Text = Field(default="", max_length=1000)
    full_threshold: float = Field(default=0.99, gt=0, le=1)

    _numbers_only = field_validator("full_threshold", mode="before")(refuse_boolean)


class SnapshotOut(BaseModel):
    id: int
    dataset: str
    content_hash: str
    created_at: datetime
    source: str
    counts: Counts
    recordings: int
    has_sample_counts: bool
    current: bool


class DatasetOut(BaseModel):
    name: str
    description: str
    full_threshold: float
    created_at: datetime
    snapshots: int
    current_snapshot: SnapshotOut | None


class ImportResponse(SnapshotOut):
    created: bool = Field(description="False when identical content was imported before.")


class RecordingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    cache_file: str
    stem: str
    patient: str
    session: str | None
    token: str | None
    present: bool | None = Field(description="null: never checked (counted as present).")


class PresenceUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    present: list[Text] = Field(default_factory=list, max_length=10_000_000)
    missing: list[Text] = Field(default_factory=list, max_length=10_000_000)


class PresenceResult(BaseModel):
    dataset: str
    updated: int = Field(description="Known recordings whose presence was recorded.")
    unknown: list[str] = Field(description="Names sent that the dataset has no recording for.")

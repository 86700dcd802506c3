"""Settings: the only place that reads environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("data")

# The bounds a setting's kind of number implies, declared once: a size, count or grace period
# cannot be negative, some things need at least one, and a time limit of zero would refuse all.
NonNegative = Annotated[int, Field(ge=0)]
AtLeastOne = Annotated[int, Field(ge=1)]
Duration = Annotated[float, Field(gt=0)]


def default_database_url(data_dir: Path = DEFAULT_DATA_DIR) -> str:
    """The embedded SQLite database used when DATABASE_URL is not set."""
    return f"sqlite:///{data_dir / 'seizure-stats.db'}"


class Settings(BaseSettings):
    """Service settings, from environment variables (see the README's table)."""

    model_config = SettingsConfigDict(
        env_prefix="SEIZURE_STATS_", extra="ignore", populate_by_name=True
    )

    database_url: str = Field(
        default="",
        validation_alias=AliasChoices("DATABASE_URL", "SEIZURE_STATS_DATABASE_URL"),
        description="SQLAlchemy URL; empty means the embedded SQLite file under data_dir.",
    )
    data_dir: Path = Field(
        default=DEFAULT_DATA_DIR, description="Where the embedded database lives."
    )
    max_upload_bytes: int = Field(
        2 * 1024**3, description="Largest manifest body accepted, after gzip decoding (bytes)."
    )
    max_body_bytes: NonNegative = Field(
        64 * 1024**2,
        description="Largest JSON request body accepted (bytes); manifests and scan parts have "
        "max_upload_bytes.",
    )
    answer_cache_entries: int = Field(
        4096, description="Answers kept per process (0 turns the cache off)."
    )
    answer_cache_bytes: NonNegative = Field(
        64 * 1024**2,
        description="Bytes of answers kept per process, bodies plus a fixed cost per entry.",
    )
    request_memo_entries: NonNegative = Field(
        1024,
        description="GET requests per process whose question is remembered, so that the same "
        "request asked again is answered without its parameters being validated again (0 turns "
        "this off).",
    )
    heavy_read_slots: AtLeastOne = Field(
        4,
        description="Reads of large snapshots computed at once (each on a connection of its own).",
    )
    heavy_read_queue: NonNegative = Field(
        32, description="Reads of large snapshots that may wait for a slot."
    )
    heavy_read_wait_seconds: Duration = Field(
        10.0, description="Longest wait for a slot; then, as when the queue is full, 429 busy."
    )
    heavy_read_min_windows: NonNegative = Field(
        100_000, description="From this many windows (a diff: both snapshots') a read is heavy."
    )
    sqlite_busy_timeout_ms: int = Field(
        60_000, description="How long SQLite waits for a lock before giving up."
    )
    require_read_token: bool = Field(
        False, description="Reads need a token too (any scope); writes always need a write token."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Lowest level of log records written to stderr."
    )
    log_format: Literal["auto", "json", "text"] = Field(
        "auto", description="json: one object per line; text: for people; auto: text on a terminal."
    )
    log_queue_records: AtLeastOne = Field(
        10_000,
        description="Log records queued for stderr; when it blocks, more are dropped and counted.",
    )
    metrics_enabled: bool = Field(True, description="Serve Prometheus metrics at /metrics.")
    shutdown_timeout_seconds: NonNegative = Field(
        10, description="On SIGTERM, how long running requests get to finish before they are cut."
    )

    header_timeout_seconds: Duration = Field(
        10, description="A connection whose request head is not complete in this time gets 408."
    )
    body_idle_timeout_seconds: Duration = Field(
        30, description="A request body that stalls this long between two chunks gets 408."
    )
    body_timeout_seconds: Duration = Field(
        900,
        description="Longest wait for a whole request body (time the server works not counted).",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or default_database_url(self.data_dir)

    @property
    def uses_embedded_database(self) -> bool:
        return not self.database_url

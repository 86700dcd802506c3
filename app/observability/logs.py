"""Logs: JSON lines (text on a terminal), each stamped with the request being served.

Headers are never logged, nor query strings: credentials and long filters stay out of the logs.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from app.config import Settings
from app.observability.log_queue import start_log_queue

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# Attributes every LogRecord has; anything else on a record came in through `extra=`
# (uvicorn's `color_message` repeats the message with terminal colours).
STANDARD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "request_tag",
    "taskName",
    "color_message",
}
# Alembic announces its dialect each time a migration context is made, which /readyz does on
# every probe; those two lines tell an operator nothing.
ALEMBIC_CHATTER = ("Context impl ", "Will assume ")


class RequestIdFilter(logging.Filter):
    """Stamps each record with the id of the request being served (or None)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class QuietProbesFilter(logging.Filter):
    """Drops Alembic's per-probe chatter."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.name == "alembic.runtime.migration"
            and str(record.msg).startswith(ALEMBIC_CHATTER)
        )


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id and any extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:  # formatted already, by the log queue
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """For people at a terminal: `12:00:01 INFO  seizure_stats.access [id] message`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-5s %(name)s %(request_tag)s%(message)s")

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None)
        record.request_tag = f"[{request_id}] " if request_id else ""
        return super().format(record)


def use_json(setting: str, stream: Any = None) -> bool:
    if setting != "auto":
        return setting == "json"
    stream = stream if stream is not None else sys.stderr
    return not (hasattr(stream, "isatty") and stream.isatty())


def configure_logging(settings: Settings, *, force: bool = False) -> None:
    """Send every logger (ours, uvicorn's) to stderr in the configured format.

    Records reach stderr through a bounded queue and a writer thread
    (app.observability.log_queue), stopped with `stop_log_queue()` when the application shuts
    down. Without `force`, an existing logging setup (an embedding program's, a test runner's) is
    left alone; the command line forces it, and a freshly spawned worker process has none.
    """
    root = logging.getLogger()
    if root.handlers and not force:
        return
    writer = logging.StreamHandler(sys.stderr)
    writer.setFormatter(JsonFormatter() if use_json(settings.log_format) else TextFormatter())
    handler = start_log_queue(writer, settings.log_queue_records)
    # Filters run in the caller's thread: the request id lives in its context.
    handler.addFilter(RequestIdFilter())
    handler.addFilter(QuietProbesFilter())
    root.handlers = [handler]
    root.setLevel(settings.log_level)
    for name in ("uvicorn", "uvicorn.error"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers = []
        uvicorn_logger.propagate = True
        uvicorn_logger.setLevel(settings.log_level)

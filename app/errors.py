"""Error types of the service. Routers turn them into `{"error": ..., "detail": ...}` answers."""

from __future__ import annotations

import json
from typing import Any


class AppError(Exception):
    """Base of every error the service reports to its callers."""

    status_code = 400
    code = "bad_request"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers
        # Fields of the JSON body beside `error` and `detail`, for errors that carry data.
        self.extra: dict[str, Any] = {}


class NotFoundError(AppError):
    status_code = 404
    code = "not_found"


class ConflictError(AppError):
    status_code = 409
    code = "conflict"


class InvalidRequestError(AppError):
    status_code = 422
    code = "invalid_request"


class UnmatchedFilterError(InvalidRequestError):
    """A strict question names a patient, session or recording the snapshot does not have."""

    code = "unmatched_filter"

    def __init__(
        self, detail: str, unmatched: dict[str, list[str]], counts: dict[str, int]
    ) -> None:
        super().__init__(detail)
        self.unmatched = unmatched
        self.extra = {"unmatched": unmatched, "unmatched_counts": counts}


class ManifestError(AppError):
    """The manifest cannot be imported; the message names the offending entry."""

    status_code = 422
    code = "invalid_manifest"


class UnreadableManifestError(ManifestError):
    """The body is not JSON (or not gzip when it says it is)."""

    status_code = 400
    code = "unreadable_manifest"


class PayloadTooLargeError(AppError):
    status_code = 413
    code = "payload_too_large"


class RequestTimeoutError(AppError):
    """The client sent its request (head or body) too slowly."""

    status_code = 408
    code = "request_timeout"


class DatabaseUnavailableError(AppError):
    """The database cannot be reached (or stays locked): try again shortly."""

    status_code = 503
    code = "database_unavailable"
    retry_after_seconds = 1

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": str(self.retry_after_seconds)})


class BusyError(AppError):
    """Too many heavy reads are running or waiting: try again after `Retry-After` seconds."""

    status_code = 429
    code = "busy"

    def __init__(self, detail: str, *, retry_after_seconds: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_seconds)})


class UnauthorizedError(AppError):
    """No credentials, or wrong ones. `challenge` is the WWW-Authenticate header (RFC 6750)."""

    status_code = 401
    code = "unauthorized"

    def __init__(self, detail: str, *, challenge: str = "Bearer") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": challenge})


class ForbiddenError(AppError):
    """Valid credentials that do not allow this request."""

    status_code = 403
    code = "forbidden"

    def __init__(self, detail: str, *, challenge: str | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": challenge} if challenge else None)


def error_body(code: str, detail: str) -> dict[str, str]:
    return {"error": code, "detail": detail}


def error_json(error: AppError) -> bytes:
    """The error's JSON body, for answers written below the framework (raw ASGI or sockets)."""
    return json.dumps(error_body(error.code, error.detail) | error.extra).encode()

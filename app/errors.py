"""Error types of the service. Routers turn them into `{"error": ..., "detail": ...}` answers."""

from __future__ import annotations

import json
from typing import Any


class AppError(Exception):
    """Base of every error the service reports to its callers.

    Each subclass names its HTTP status and its stable code in its class statement, so the
    classes below read as one table of (name, status, code).
    """

    status_code = 400
    code = "bad_request"

    def __init_subclass__(
        cls, *, status_code: int | None = None, code: str | None = None, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        # Left out, they are inherited: a refinement of an error keeps its parent's status.
        if status_code is not None:
            cls.status_code = status_code
        if code is not None:
            cls.code = code

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers
        # Fields of the JSON body beside `error` and `detail`, for errors that carry data.
        self.extra: dict[str, Any] = {}


class NotFoundError(AppError, status_code=404, code="not_found"):
    """What the request names (a dataset, a snapshot, a scan) does not exist."""


class ConflictError(AppError, status_code=409, code="conflict"):
    """The request contradicts what is stored (a name taken, a record changed meanwhile)."""


class InvalidRequestError(AppError, status_code=422, code="invalid_request"):
    """The request asks for something it cannot have: a value out of range, an unknown parameter,
    an option the snapshot cannot answer."""


class UnmatchedFilterError(InvalidRequestError, code="unmatched_filter"):
    """A strict question names a patient, session or recording the snapshot does not have."""

    def __init__(
        self, detail: str, unmatched: dict[str, list[str]], counts: dict[str, int]
    ) -> None:
        super().__init__(detail)
        self.unmatched = unmatched
        self.extra = {"unmatched": unmatched, "unmatched_counts": counts}


class ManifestError(AppError, status_code=422, code="invalid_manifest"):
    """The manifest cannot be imported; the message names the offending entry."""


class UnreadableManifestError(ManifestError, status_code=400, code="unreadable_manifest"):
    """The body is not JSON (or not gzip when it says it is)."""


class PayloadTooLargeError(AppError, status_code=413, code="payload_too_large"):
    """The body is larger than the service accepts."""


class RequestTimeoutError(AppError, status_code=408, code="request_timeout"):
    """The client sent its request (head or body) too slowly."""


class DatabaseUnavailableError(AppError, status_code=503, code="database_unavailable"):
    """The database cannot be reached (or stays locked): try again shortly."""

    retry_after_seconds = 1

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": str(self.retry_after_seconds)})


class BusyError(AppError, status_code=429, code="busy"):
    """Too many heavy reads are running or waiting: try again after `Retry-After` seconds."""

    def __init__(self, detail: str, *, retry_after_seconds: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_seconds)})


class UnauthorizedError(AppError, status_code=401, code="unauthorized"):
    """No credentials, or wrong ones. `challenge` is the WWW-Authenticate header (RFC 6750)."""

    def __init__(self, detail: str, *, challenge: str = "Bearer") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": challenge})


class ForbiddenError(AppError, status_code=403, code="forbidden"):
    """Valid credentials that do not allow this request."""

    def __init__(self, detail: str, *, challenge: str | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": challenge} if challenge else None)


def error_body(code: str, detail: str) -> dict[str, str]:
    return {"error": code, "detail": detail}


def error_fields(error: AppError) -> dict[str, Any]:
    """The error's JSON body as a dict: its code, its detail and any data it carries."""
    return error_body(error.code, error.detail) | error.extra


def error_json(error: AppError) -> bytes:
    """The error's JSON body, for answers written below the framework (raw ASGI or sockets)."""
    return json.dumps(error_fields(error)).encode()

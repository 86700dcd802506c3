"""What the client raises and warns of, shared by the client and its offline answers."""

from __future__ import annotations

from typing import Any


class SeizureStatsError(Exception):
    """Base of the client's errors."""


class UnmatchedFilterWarning(UserWarning):
    """A non-strict streamed answer (the balanced index) named filter values that match no
    recording of the snapshot; the JSON answers carry the same in `warnings`."""


class APIError(SeizureStatsError):
    """The service refused the request (4xx) or failed (5xx after retries)."""

    def __init__(self, status_code: int, error: str, detail: str) -> None:
        super().__init__(f"{status_code} {error}: {detail}")
        self.status_code = status_code
        self.error = error
        self.detail = detail


class UnmatchedFilterError(APIError):
    """A strict question (the client's default) named a patient, session or recording that the
    snapshot does not have: `unmatched` holds each such filter's values (the first 1,000),
    `unmatched_counts` how many there are."""

    def __init__(self, status_code: int, error: str, detail: str, body: Any) -> None:
        super().__init__(status_code, error, detail)
        unmatched, counts = body.get("unmatched"), body.get("unmatched_counts")
        self.unmatched: dict[str, list[str]] = (
            {str(name): [str(v) for v in values] for name, values in unmatched.items()}
            if isinstance(unmatched, dict)
            else {}
        )
        self.unmatched_counts: dict[str, int] = (
            {str(name): int(count) for name, count in counts.items()}
            if isinstance(counts, dict)
            else {}
        )


class ServiceUnavailableError(SeizureStatsError):
    """The service could not be reached within the retry budget."""


class OfflineError(SeizureStatsError):
    """Offline (`SEIZURE_STATS_OFFLINE=1` or `offline=True`), the client sends nothing: this
    call needed the service."""


class NotCachedError(OfflineError):
    """Offline, a question whose answer the client never received, so its cache lacks it."""

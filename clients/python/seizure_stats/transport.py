"""The client's HTTP: one httpx client, the retries (connection errors, 429 and 5xx, with
exponential backoff that honours Retry-After), and the service's errors as exceptions."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

import httpx

from seizure_stats.errors import (
    APIError,
    OfflineError,
    ServiceUnavailableError,
    UnmatchedFilterError,
)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# No wait between retries is longer, whatever Retry-After asks.
MAX_DELAY = 30.0


class Transport:
    """Sends the client's requests, or, offline, refuses to (`offline_mode` says why)."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        retries: int,
        backoff: float,
        offline_mode: str | None,
    ) -> None:
        self.http = http
        self._retries = retries
        self._backoff = backoff
        self._offline_mode = offline_mode

    def build(self, method: str, path: str, **kwargs: Any) -> httpx.Request:
        return self.http.build_request(method, path, **kwargs)

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """A JSON answer's content. A 2xx that is not JSON comes from something between us and
        the service (a proxy's maintenance page, say): the service did not answer."""
        response = self.send(self.build(method, path, **kwargs))
        try:
            return response.json()
        except ValueError:
            request = response.request
            raise ServiceUnavailableError(
                f"{request.method} {shown_url(request.url)}: {response.status_code} with a body "
                f"that is not JSON ({response.headers.get('content-type', 'no content type')}): "
                f"{response.text[:200]!r}"
            ) from None

    def send(
        self, request: httpx.Request, *, stream: bool = False, retry: bool = True
    ) -> httpx.Response:
        """The response to a request (2xx), after the retries `retry` allows; raises
        ServiceUnavailableError when the service stays unreachable, APIError for an error."""
        if self._offline_mode is not None:
            sent = f"{request.method} {shown_url(request.url)}"
            raise OfflineError(f"{self._offline_mode}: {sent} not sent")
        attempts = self._retries + 1 if retry else 1
        for attempt in range(attempts):
            last_try = attempt == attempts - 1
            try:
                response = self.http.send(request, stream=stream)
            except httpx.TransportError as exc:
                if last_try:
                    raise ServiceUnavailableError(
                        f"{request.method} {shown_url(request.url)} failed after {attempt + 1} "
                        f"attempt(s): {exc!r}"
                    ) from exc
                self._sleep(attempt, None)
                continue
            if response.status_code in RETRY_STATUSES and not last_try:
                retry_after = response.headers.get("Retry-After")
                response.close()
                self._sleep(attempt, retry_after)
                continue
            if response.is_error:
                if stream:
                    response.read()
                raise api_error(response)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = self._backoff * 2**attempt * (0.5 + random.random())
        if retry_after and retry_after.isdigit():
            delay = max(delay, float(retry_after))
        time.sleep(min(delay, MAX_DELAY))


def lines_of(response: httpx.Response) -> Iterator[str]:
    """A streamed answer's lines. A connection lost once they have begun is the service's
    failure like one lost before: it cannot fall back to the cache any more, since the lines
    read so far are in the caller's hands already."""
    try:
        yield from response.iter_lines()
    except httpx.TransportError as exc:
        request = response.request
        raise ServiceUnavailableError(
            f"{request.method} {shown_url(request.url)}: the connection was lost in the middle "
            f"of the answer: {exc!r}"
        ) from exc
    finally:
        response.close()


def api_error(response: httpx.Response) -> APIError:
    try:
        body = response.json()
        error, detail = str(body["error"]), str(body["detail"])
        if error == "unmatched_filter":
            return UnmatchedFilterError(response.status_code, error, detail, body)
        return APIError(response.status_code, error, detail)
    except (ValueError, KeyError, TypeError):
        return APIError(response.status_code, "http_error", response.text[:500])


def shown_url(url: httpx.URL) -> str:
    """A URL as the client writes it into its cache and its messages: without the user name
    and password a base URL may carry (httpx sends them as basic auth; they are no one's to
    read in a cache file or a log)."""
    return str(url.copy_with(userinfo=b""))

"""Request bodies from clients that stall or leave: 408 after a deadline, 499 when they hang up.

uvicorn waits for a body as long as the client likes, so a client trickling bytes (or none)
held a request, its buffers and, for an upload, its spool file for ever. Here the time spent
waiting for the body is bounded between two chunks and in all; time the application spends
on the chunks it has does not count. A client that closes the connection before its body is
complete is logged on one line and counted as 499, as nginx does, instead of an error with a
traceback and a 500.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.middleware.http_only import HttpMiddleware
from app.errors import AppError, RequestTimeoutError, error_json

logger = logging.getLogger("seizure_stats.requests")

CLIENT_CLOSED_REQUEST = 499


class BodyDeadlinePassed(Exception):
    """Raised into the application when the body did not arrive in time."""


@dataclass
class BodyProgress:
    expected: int | None
    received: int = 0
    waited: float = 0.0
    complete: bool = False
    client_left: bool = False
    timed_out: RequestTimeoutError | None = None
    response_started: bool = False


def closing_answer(error: AppError) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """An error's body and headers for a connection that must close after it: the rest of the
    request may still come, so the connection cannot carry another one."""
    body = error_json(error)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    return body, headers


def declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length" and value.isdigit():
            return int(value)
    return None


class RequestBodyMiddleware(HttpMiddleware):
    """Deadlines on receiving the body; the status of requests whose client left mid-body."""

    def __init__(self, app: ASGIApp, idle_seconds: float, total_seconds: float) -> None:
        super().__init__(app)
        self.idle_seconds = idle_seconds
        self.total_seconds = total_seconds

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        progress = BodyProgress(expected=declared_length(scope))

        async def receive_in_time() -> Message:
            if progress.timed_out is not None:
                raise BodyDeadlinePassed
            if progress.complete or progress.client_left:
                # After the body, the application only listens for a disconnect: no deadline.
                return await receive()
            return await self._next_chunk(receive, progress)

        async def send_unless_replaced(message: Message) -> None:
            if progress.timed_out is not None:
                return  # the 408 below answers instead
            if message["type"] == "http.response.start":
                progress.response_started = True
                if progress.client_left:
                    # Nobody reads it; the status says why in the access log and the metrics.
                    message = {**message, "status": CLIENT_CLOSED_REQUEST}
            await send(message)

        try:
            await self.app(scope, receive_in_time, send_unless_replaced)
        except Exception:
            if progress.timed_out is None and not progress.client_left:
                raise
            # What the application raised follows from the missing body; it is no bug.
        if progress.client_left:
            self._log_departure(scope, progress)
            if not progress.response_started:
                await send({"type": "http.response.start", "status": CLIENT_CLOSED_REQUEST})
                await send({"type": "http.response.body", "body": b""})
        elif progress.timed_out is not None and not progress.response_started:
            await self._answer_timeout(send, progress.timed_out)

    async def _next_chunk(self, receive: Receive, progress: BodyProgress) -> Message:
        allowed = min(self.idle_seconds, self.total_seconds - progress.waited)
        started = time.monotonic()
        try:
            async with asyncio.timeout(max(allowed, 0)):
                message = await receive()
        except TimeoutError:
            if allowed < self.idle_seconds:
                detail = f"the request body took longer than {self.total_seconds:g} s to arrive"
            else:
                detail = f"the request body stalled: nothing arrived for {self.idle_seconds:g} s"
            progress.timed_out = RequestTimeoutError(detail)
            raise BodyDeadlinePassed from None
        finally:
            progress.waited += time.monotonic() - started
        if message["type"] == "http.request":
            progress.received += len(message.get("body", b""))
            progress.complete = not message.get("more_body", False)
        elif message["type"] == "http.disconnect":
            progress.client_left = True
        return message

    @staticmethod
    def _log_departure(scope: Scope, progress: BodyProgress) -> None:
        of = f" of {progress.expected}" if progress.expected is not None else ""
        logger.warning(
            "client closed the connection during %s %s after %d%s body bytes",
            scope.get("method", ""),
            scope.get("path", ""),
            progress.received,
            of,
        )

    @staticmethod
    async def _answer_timeout(send: Send, error: RequestTimeoutError) -> None:
        body, headers = closing_answer(error)
        await send({"type": "http.response.start", "status": error.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": body})

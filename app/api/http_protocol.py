"""The HTTP/1.1 protocol `serve` runs: uvicorn's httptools one, with a deadline on request heads.

uvicorn bounds only idle keep-alive connections: a client that opens a connection and sends a
request head slowly, or a part of one and then nothing, held it for ever (slowloris). Here a
connection whose request head is not complete within the deadline is answered 408 and closed
(closed without a word if it sent nothing at all). Bodies have deadlines of their own, in the
application (app.api.middleware.request_body).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.api.middleware.request_body import closing_answer
from app.errors import RequestTimeoutError

logger = logging.getLogger("seizure_stats.requests")
# After a 408 the client may still be sending its head. Closing at once would make the kernel
# answer its next bytes with a reset, which can destroy the 408 before the client has read it.
# So the connection lingers: the write side is shut (the client reads the answer, then the
# end), what still comes is discarded, and the socket closes after this long at most.
LINGER_SECONDS = 2.0


class HeadDeadlineProtocol(HttpToolsProtocol):
    """Each request head must be complete within `head_timeout_seconds` of its first byte (the
    first request of a connection: of the connection's start)."""

    def __init__(self, *args: Any, head_timeout_seconds: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.head_timeout_seconds = head_timeout_seconds
        self.head_deadline: asyncio.TimerHandle | None = None
        self.head_begun = False
        self.lingering = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self.lingering:
            super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.head_begun = True
        if self.head_deadline is None:
            self._arm_head_deadline()

    def on_headers_complete(self) -> None:
        self._cancel_head_deadline()
        self.head_begun = False
        super().on_headers_complete()

    def _arm_head_deadline(self) -> None:
        self.head_deadline = self.loop.call_later(self.head_timeout_seconds, self._head_too_slow)

    def _cancel_head_deadline(self) -> None:
        if self.head_deadline is not None:
            self.head_deadline.cancel()
            self.head_deadline = None

    def _head_too_slow(self) -> None:
        self.head_deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined head stalled behind a running request: close once that one is answered.
            self.cycle.keep_alive = False
            return
        if self.head_begun:
            client = f"{self.client[0]}:{self.client[1]}" if self.client else "unknown"
            logger.warning(
                "request head from %s not complete after %g s: answered 408",
                client,
                self.head_timeout_seconds,
            )
            self.transport.write(self._timeout_answer())
            self._linger()
            return
        self.transport.close()

    def _linger(self) -> None:
        self.lingering = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def _timeout_answer(self) -> bytes:
        error = RequestTimeoutError(
            f"the request head was not complete within {self.head_timeout_seconds:g} s"
        )
        body, headers = closing_answer(error)
        lines = [b"HTTP/1.1 408 Request Timeout"]
        for name, value in [*self.server_state.default_headers, *headers]:
            lines.append(name + b": " + value)
        return b"\r\n".join(lines) + b"\r\n\r\n" + body

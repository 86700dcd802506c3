"""Request tracing: a request id in and out, one access log line and the request metrics.

Headers are never logged, nor query strings: credentials and long filters stay out of the logs.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.middleware.http_only import HttpMiddleware
from app.observability.logs import request_id_var
from app.observability.metrics import Metrics

# An incoming id is kept only if it is short and plain, so it cannot forge or break log lines.
VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Probes hit these every few seconds; their access lines are debug, not info.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
access_logger = logging.getLogger("seizure_stats.access")


def incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1").strip()
            return text if VALID_REQUEST_ID.match(text) else None
    return None


class RequestContextMiddleware(HttpMiddleware):
    """Request id in and out, one access log line, and request metrics, for every HTTP request.

    Pure ASGI, so streamed answers are timed to their last byte.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        super().__init__(app)
        self.metrics = metrics

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = incoming_request_id(scope) or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", ()))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        self.metrics.in_progress.inc()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            self.metrics.in_progress.dec()
            route = scope.get("route")
            template = getattr(route, "path", None)
            method = scope.get("method", "")
            self.metrics.observe_request(method, template, status, seconds)
            path = scope.get("path", "")
            access_logger.log(
                logging.DEBUG if path in QUIET_PATHS and status < 400 else logging.INFO,
                "%s %s %d %.1fms",
                method,
                path,
                status,
                seconds * 1000,
                extra={
                    "request_id": request_id,
                    "method": method,
                    "path": path,
                    "route": template,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                    "client": (scope.get("client") or (None,))[0],
                },
            )
            request_id_var.reset(token)

"""What every middleware here shares: it acts on HTTP requests and passes other scopes by.

Pure ASGI (not BaseHTTPMiddleware), so streamed answers pass through untouched. Lifespan events
(and anything but HTTP) go straight to the application.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class HttpMiddleware:
    """Calls `handle` for each HTTP request; every other scope goes to the application as is."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError

"""HEAD on every GET route: answered as the GET would be, with the same headers and no body.

FastAPI's routes answer only the methods they declare, so HEAD got 405 everywhere but on the
static files. Rewriting the method here covers every route at once and keeps HEAD out of the
OpenAPI document.
"""

from __future__ import annotations

from starlette.types import Message, Receive, Scope, Send

from app.api.middleware.http_only import HttpMiddleware


class HeadAsGetMiddleware(HttpMiddleware):
    """Serves HEAD as GET and drops the body (Content-Length stays that of the GET)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_without_body(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Routed by now. The server reads the method from this same scope while it
                # writes the answer: it must see HEAD again, or it frames the answer as a GET's
                # (a body promised, or chunks) and breaks the connection.
                scope["method"] = "HEAD"
            elif message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        # In place, so the route the router finds is seen by the middleware around this one.
        scope["method"] = "GET"
        try:
            await self.app(scope, receive, send_without_body)
        finally:
            scope["method"] = "HEAD"

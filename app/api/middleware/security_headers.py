"""Security headers on every answer: no MIME sniffing, no framing, a Content-Security-Policy.

Every page loads only the service's own files (the dashboard's and the packaged Swagger UI), so
the policy allows nothing else. An answer that sets its own policy (the API docs, whose inline
start-up script is allowed by its hash) keeps it.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.middleware.http_only import HttpMiddleware

POLICY = (
    "default-src 'self'",
    # Swagger UI's style sheet draws its icons as data: images.
    "img-src 'self' data:",
    "style-src 'self'",
    # Bar widths in the dashboard's tables are style attributes; attributes cannot run script.
    "style-src-attr 'unsafe-inline'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
)
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def content_security_policy(script_hashes: Iterable[str] = ()) -> str:
    """The policy, allowing scripts from the service and the inline ones with these hashes."""
    scripts = " ".join(["'self'", *(f"'sha256-{digest}'" for digest in script_hashes)])
    return "; ".join([*POLICY, f"script-src {scripts}"])


def inline_script_hashes(html: str) -> list[str]:
    """The base64 SHA-256 of each inline `<script>` of a page, as CSP expects them."""
    return [
        base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        for script in INLINE_SCRIPT.findall(html)
    ]


class SecurityHeadersMiddleware(HttpMiddleware):
    """Adds nosniff, `X-Frame-Options: DENY` and the default policy to every HTTP answer."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app)
        self.headers = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"content-security-policy", content_security_policy().encode()),
        ]

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in self.headers if n not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)

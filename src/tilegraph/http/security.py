"""Headers every response carries, so a browser never guesses a type or runs what we did not
mean as a page: `nosniff` everywhere, and HTML under a Content-Security-Policy (the page's
own when it set one, e.g. GraphiQL's; otherwise one that allows nothing)."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_HTML_CSP = (
    b"default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

_HOST = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


def same_host_sockets(request: Request) -> str:
    """The WebSocket sources of the host the page was asked from, for a page's connect-src
    (not every browser counts ws: to the same host as 'self'); nothing for a Host header
    that is not a plain host[:port]."""
    host = request.headers.get("host", "")
    return f" ws://{host} wss://{host}" if _HOST.match(host) else ""


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                added = [(b"x-content-type-options", b"nosniff")]
                content_type = next(
                    (value for name, value in headers if name.lower() == b"content-type"), b""
                )
                if content_type.lower().startswith(b"text/html"):
                    added += [
                        (b"content-security-policy", DEFAULT_HTML_CSP),
                        (b"x-frame-options", b"DENY"),
                        (b"referrer-policy", b"no-referrer"),
                    ]
                headers += [(name, value) for name, value in added if name not in names]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)

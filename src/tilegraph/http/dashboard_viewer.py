"""The dashboard viewer at `/`: a static page of ours (the `viewer/` folder beside this
module: plain ES modules, no build step) that signs in, lists dashboards and shows them,
talking to /graphql over HTTP and WebSocket like any other client.

Card HTML is untrusted and is only ever shown in `<iframe sandbox="allow-scripts"
srcdoc=…>`: an opaque origin that cannot read the page, its storage or its token. A srcdoc
frame inherits the page's Content-Security-Policy, so the policy must also let a chart
draw: its scripts run when they carry the page's nonce, which the viewer stamps on the
card's <script> elements (a card's inline event handlers stay blocked), and styles may be
inline (plotly sizes its charts with them). Everything loads from this origin only."""

from __future__ import annotations

import secrets
from functools import cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from tilegraph.http import pinned
from tilegraph.http.security import same_host_sockets

ASSETS = Path(__file__).with_name("viewer")
ASSETS_PATH = "/viewer"
_NONCE = "__NONCE__"


@cache
def page_template() -> str:
    return pinned.fill((ASSETS / "index.html").read_text(), ASSETS, ASSETS_PATH)


def content_security_policy(request: Request, nonce: str) -> str:
    """Scripts from this origin (and, for card frames, those carrying this response's
    nonce), styles from here or inline, queries to this host over HTTP and WebSocket,
    nothing else. Srcdoc frames are not fetched, so frame-src 'none' does not stop them
    and stops every other frame."""
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self' 'nonce-{nonce}'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data: blob:",
            "font-src 'self' data:",
            f"connect-src 'self'{same_host_sockets(request)}",
            "frame-src 'none'",
            "child-src 'none'",
            "worker-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


async def page(request: Request) -> HTMLResponse:
    nonce = secrets.token_urlsafe(18)
    return HTMLResponse(
        page_template().replace(_NONCE, nonce),
        headers={
            "Content-Security-Policy": content_security_policy(request, nonce),
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
        },
    )


def routes() -> list[Route | Mount]:
    return [
        Route("/", page, methods=["GET", "HEAD"]),
        Mount(ASSETS_PATH, app=StaticFiles(directory=ASSETS)),
    ]

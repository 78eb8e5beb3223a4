"""GraphiQL, served whole by the API: the page, its scripts and styles come from the
`graphiql/` folder beside this module (vendored, see its LICENSES.txt), never from another
host, and the page's Content-Security-Policy allows nothing else."""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

ASSETS = Path(__file__).with_name("graphiql")
# Where the app mounts ASSETS; the page refers to them relative to /graphql.
ASSETS_PATH = "/graphiql"
# Each {{name}} becomes the attributes that load the asset `name`.
PAGE = """<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>Tilegraph GraphiQL</title>
    <link rel="icon" href="data:," />
    <link rel="stylesheet" {{graphiql.min.css}} />
    <link rel="stylesheet" {{plugin-explorer.css}} />
    <link rel="stylesheet" {{page.css}} />
    <script {{react.production.min.js}}></script>
    <script {{react-dom.production.min.js}}></script>
  </head>
  <body>
    <div id="graphiql" class="graphiql-container">Loading…</div>
    <script {{graphiql.min.js}}></script>
    <script {{plugin-explorer.umd.js}}></script>
    <script {{page.js}}></script>
  </body>
</html>
"""
_PLACEHOLDER = re.compile(r"\{\{([A-Za-z0-9_.-]+)\}\}")
_HOST = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


def _reference(name: str) -> str:
    """The attributes that load one asset, pinned to its content (Subresource Integrity;
    the digest in the URL also keeps caches from serving an older copy)."""
    content = (ASSETS / name).read_bytes()
    digest = hashlib.sha384(content).digest()
    attribute = "href" if name.endswith(".css") else "src"
    url = f"{ASSETS_PATH.lstrip('/')}/{name}?v={digest[:6].hex()}"
    return f'{attribute}="{url}" integrity="sha384-{base64.b64encode(digest).decode()}"'


@cache
def page_html() -> str:
    return _PLACEHOLDER.sub(lambda match: _reference(match.group(1)), PAGE)


def content_security_policy(request: Request) -> str:
    """Scripts, styles and fonts from this origin only; queries to it over HTTP and
    WebSocket. (GraphiQL's editor sets inline styles, hence 'unsafe-inline' for styles;
    its fonts and icons are data: URLs inside its stylesheet.)"""
    host = request.headers.get("host", "")
    sockets = f" ws://{host} wss://{host}" if _HOST.match(host) else ""
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            f"connect-src 'self'{sockets}",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def render(request: Request) -> HTMLResponse:
    return HTMLResponse(
        page_html(),
        headers={
            "Content-Security-Policy": content_security_policy(request),
            "Cache-Control": "no-store",
        },
    )


def assets() -> StaticFiles:
    return StaticFiles(directory=ASSETS)

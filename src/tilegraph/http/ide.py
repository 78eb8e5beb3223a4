"""GraphiQL, served whole by the API: the page, its scripts and styles come from the
`graphiql/` folder beside this module (vendored, see its LICENSES.txt), never from another
host, and the page's Content-Security-Policy allows nothing else."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from tilegraph.http import pinned
from tilegraph.http.security import same_host_sockets

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


@cache
def page_html() -> str:
    return pinned.fill(PAGE, ASSETS, ASSETS_PATH)


def content_security_policy(request: Request) -> str:
    """Scripts, styles and fonts from this origin only; queries to it over HTTP and
    WebSocket. (GraphiQL's editor sets inline styles, hence 'unsafe-inline' for styles;
    its fonts and icons are data: URLs inside its stylesheet.)"""
    sockets = same_host_sockets(request)
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

"""plotly.js served by the API, so card charts draw with no internet: one versioned URL
(a new plotly is a new URL), cached by browsers for good, gzipped once in memory."""

from __future__ import annotations

import gzip
from functools import cache

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tilegraph.executor.plotly_asset import asset_path, bundle_path

_FOREVER = "public, max-age=31536000, immutable"
_JS = "text/javascript; charset=utf-8"


@cache
def _bundle() -> tuple[bytes, bytes]:
    raw = bundle_path().read_bytes()
    return raw, gzip.compress(raw, compresslevel=6, mtime=0)


async def plotly_bundle(request: Request) -> Response:
    raw, packed = _bundle()
    headers = {"cache-control": _FOREVER, "vary": "accept-encoding"}
    if request.method == "HEAD":
        return Response(b"", media_type=_JS, headers={**headers, "content-length": str(len(raw))})
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(packed, media_type=_JS, headers={**headers, "content-encoding": "gzip"})
    return Response(raw, media_type=_JS, headers=headers)


def routes() -> list[Route]:
    """Only the installed bundle's URL answers; any other version is a 404."""
    return [Route(asset_path(), plotly_bundle, methods=["GET", "HEAD"])]

"""The baseline for bench_api.py: a plain Starlette JSON endpoint under the same uvicorn."""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def me(request: Request) -> JSONResponse:
    return JSONResponse({"data": {"me": {"id": "usr_x", "email": "bench@example.com"}}})


app = Starlette(routes=[Route("/graphql", me, methods=["POST"])])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)

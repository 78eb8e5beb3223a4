"""Liveness, readiness (DynamoDB, S3 and Redis reachable) and Prometheus metrics (for the
holder of the metrics token only)."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

READY_TIMEOUT = 2.0


async def healthz(request: Request) -> Response:
    """Alive; with the instance id it was started with, if any (see Settings.instance_id)."""
    instance = request.app.state.services.settings.instance_id
    return JSONResponse({"status": "ok", **({"instance": instance} if instance else {})})


async def _check(name: str, probe: Awaitable[object]) -> tuple[str, str]:
    try:
        await asyncio.wait_for(probe, READY_TIMEOUT)
    except Exception as exc:  # any failure means "not ready"; say which and why
        return name, f"unavailable: {type(exc).__name__}"
    return name, "ok"


async def readyz(request: Request) -> Response:
    services = request.app.state.services
    settings = services.settings
    results = dict(
        await asyncio.gather(
            _check(
                "dynamodb",
                services.aws.dynamodb.describe_table(TableName=settings.table_name("users")),
            ),
            _check("s3", services.aws.s3.head_bucket(Bucket=settings.bucket)),
            _check("redis", services.redis.ping()),
        )
    )
    ready = all(v == "ok" for v in results.values())
    return JSONResponse({"ready": ready, "checks": results}, status_code=200 if ready else 503)


async def metrics(request: Request) -> Response:
    """Route names, counts and latencies tell an outsider how the service is used: without a
    configured token there is nothing here (404, like any unknown path); with one, only a
    request bearing it is answered (compared in constant time)."""
    expected = request.app.state.services.settings.metrics_token
    if not expected:
        return PlainTextResponse("Not Found", status_code=404)
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    presented = token.strip() if scheme.lower() == "bearer" else ""
    if not hmac.compare_digest(presented.encode(), expected.encode()):
        return PlainTextResponse(
            "Unauthorized", status_code=401, headers={"WWW-Authenticate": 'Bearer realm="metrics"'}
        )
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

"""Pure ASGI middleware (no BaseHTTPMiddleware: it costs a task per request)."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import orjson
import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tilegraph.http.metrics import HTTP_LATENCY, HTTP_REQUESTS, WEBSOCKETS

log = structlog.get_logger("tilegraph.access")
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")
KNOWN_ROUTES = {"/graphql", "/healthz", "/readyz", "/metrics"}


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class RequestContextMiddleware:
    """Gives every request an id (honouring a well-formed X-Request-ID), binds it to the
    log context, returns it in `X-Request-ID`, and records metrics and an access line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = (
            incoming if incoming and _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        )
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        if scope["type"] == "websocket":
            WEBSOCKETS.inc()
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            path = scope.get("path", "")
            route = path if path in KNOWN_ROUTES else "other"
            HTTP_REQUESTS.labels(scope.get("method", ""), route, str(status)).inc()
            HTTP_LATENCY.labels(route).observe(elapsed)
            if route != "/metrics":
                log.info(
                    "request",
                    method=scope.get("method"),
                    path=path,
                    status=status,
                    ms=round(elapsed * 1000, 2),
                    client=(scope.get("client") or ("",))[0],
                )


class _BodyTooLarge(Exception):
    pass


def graphql_error_body(message: str, code: str, **extensions: Any) -> bytes:
    return orjson.dumps(
        {"errors": [{"message": message, "extensions": {"code": code, **extensions}}]}
    )


class BodyLimitMiddleware:
    """Refuses bodies over the cap with 413 before they are parsed: by Content-Length when
    given, and by counting while streaming otherwise. Multipart uploads get the upload cap."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_body = max_body_bytes
        # The operations and map parts of a multipart request ride along with the file.
        self.max_upload = max_upload_bytes + (1 << 20)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        content_type = _header(scope, b"content-type") or ""
        is_upload = content_type.startswith("multipart/form-data")
        limit = self.max_upload if is_upload else self.max_body
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(send, limit, is_upload)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await self._refuse(send, limit, is_upload)

    @staticmethod
    async def _refuse(send: Send, limit: int, is_upload: bool) -> None:
        if is_upload:
            body = graphql_error_body(
                f"The upload is larger than the limit of {limit - (1 << 20)} bytes",
                "BAD_USER_INPUT",
                field="file",
            )
        else:
            body = graphql_error_body(
                f"The request body is larger than the limit of {limit} bytes", "BAD_USER_INPUT"
            )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

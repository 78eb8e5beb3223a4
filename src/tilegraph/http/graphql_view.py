"""Strawberry's ASGI view, specialised: our Context, orjson, graphql-transport-ws only with
the token checked in connection_init, HTTP-level failures as GraphQL-shaped errors, and a
per-address budget for requests without a valid token, spent before the body is read."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.schema import BaseSchema
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult

from tilegraph.auth.budget import RequestBudget
from tilegraph.context import Context
from tilegraph.http import ide
from tilegraph.http.middleware import graphql_error_body
from tilegraph.http.multipart import MultipartError, place_files
from tilegraph.schema.errors import shape_error
from tilegraph.settings import Settings


class TextWebSocketAdapter(ASGIWebSocketAdapter):
    """graphql-transport-ws clients expect text frames; orjson gives bytes."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        try:
            await self.ws.send_text(orjson.dumps(message).decode())
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc


class GraphQLView(GraphQL[Context, None]):
    websocket_adapter_class = TextWebSocketAdapter

    def __init__(self, schema: BaseSchema, settings: Settings) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphiql else None,
            allow_queries_via_get=True,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            multipart_uploads_enabled=True,
            allowed_origins=settings.cors_origins,
        )
        self.anonymous_budget = RequestBudget(settings.anonymous_requests_per_minute)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        refusal = self._over_budget(request)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        try:
            response = await self.run(request)
        except HTTPException as exc:
            field = {"field": exc.field} if isinstance(exc, MultipartError) else {}
            response = Response(
                graphql_error_body(exc.reason, "BAD_USER_INPUT", **field),
                status_code=exc.status_code,
                media_type="application/json",
            )
        await response(scope, receive, send)

    async def render_graphql_ide(self, request: Request) -> Response:
        """Our own GraphiQL page (assets served by us, under a CSP), not Strawberry's, which
        loads them from a CDN."""
        return ide.render(request)

    async def parse_multipart(self, request: AsyncHTTPRequestAdapter) -> dict[str, Any]:
        """Strawberry's, with the `map` paths checked (tilegraph.http.multipart)."""
        try:
            form_data = await request.get_form_data()
        except ValueError as exc:
            raise HTTPException(400, "Unable to parse the multipart body") from exc
        parts = {}
        for name in ("operations", "map"):
            text = form_data.form.get(name, "{}")
            if not isinstance(text, str | bytes):
                raise MultipartError(f"`{name}` must be a form field, not a file", name)
            try:
                parts[name] = self.parse_json(text)
            except HTTPException as exc:
                raise MultipartError(f"`{name}` is not JSON", name) from exc
        operations, files_map = parts["operations"], parts["map"]
        return place_files(operations, files_map, form_data.files)

    def _over_budget(self, request: Request) -> Response | None:
        """429 for a caller without a valid token whose address spent its budget."""
        if not self.anonymous_budget.enabled:
            return None
        services = request.app.state.services
        if services.auth.carries_valid_token(request.headers.get("authorization")):
            return None
        client = request.scope.get("client") or ("unknown", 0)
        wait = self.anonymous_budget.take(str(client[0]))
        if wait is None:
            return None
        seconds = max(1, math.ceil(wait))
        return Response(
            graphql_error_body(
                f"Too many requests without signing in from this address; try again in {seconds} s",
                "RATE_LIMITED",
                retryAfterSeconds=seconds,
            ),
            status_code=429,
            media_type="application/json",
            headers={"Retry-After": str(seconds)},
        )

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        state = request.scope.get("state", {})
        client = request.scope.get("client") or ("unknown", 0)
        authorization = (
            request.headers.get("authorization") if request.scope["type"] == "http" else None
        )
        return Context(
            request.app.state.services,
            request=request,
            response=response,
            request_id=state.get("request_id", ""),
            client_ip=str(client[0]),
            authorization=authorization,
        )

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        """A safety net: an error that escaped ErrorShaping still leaves with a code."""
        if result.errors and any(not (e.extensions or {}).get("code") for e in result.errors):
            request_id = request.scope.get("state", {}).get("request_id")
            result.errors = [
                e
                if (e.extensions or {}).get("code")
                else shape_error(e, request_id=request_id, suggestions=False)
                for e in result.errors
            ]
        return await super().process_result(request, result)

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

    async def on_ws_connect(self, context: Context) -> None:
        """Accept the connection only with a valid token in the connection_init payload."""
        params = context.connection_params or {}
        authorization = params.get("authorization") or params.get("Authorization")
        if not isinstance(authorization, str) or not authorization.strip():
            raise ConnectionRejectionError()
        context.authorization = authorization
        context.forget_principal()
        if await context.authenticate() is None:
            raise ConnectionRejectionError()

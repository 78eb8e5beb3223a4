"""The Starlette app: routes, lifespan (services opened once per process), middleware, and
how uvicorn serves it."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from tilegraph.http import assets, dashboard_viewer, ide
from tilegraph.http.graphql_view import GraphQLView
from tilegraph.http.health import healthz, metrics, readyz
from tilegraph.http.middleware import BodyLimitMiddleware, RequestContextMiddleware
from tilegraph.http.security import SecurityHeadersMiddleware
from tilegraph.logs import configure_logging
from tilegraph.schema.build import build_schema
from tilegraph.services.registry import Services
from tilegraph.settings import Settings


def create_app(settings: Settings) -> Starlette:
    configure_logging(settings)
    graphql = GraphQLView(build_schema(settings), settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        services = await Services.open(settings)
        await services.bus.start()
        app.state.services = services
        # What start-up built (libraries, the schema, clients) lives as long as the process:
        # kept out of the collector, a full collection no longer walks it while holding the
        # GIL, which stalled the event loop for ~100 ms whenever a request triggered one.
        gc.collect()  # what is garbage now is collected, not kept forever
        gc.freeze()
        try:
            yield
        finally:
            await services.close()

    middleware = [
        Middleware(RequestContextMiddleware),
        Middleware(SecurityHeadersMiddleware),
        Middleware(
            BodyLimitMiddleware,
            max_body_bytes=settings.max_body_bytes,
            max_upload_bytes=settings.upload_max_bytes,
        ),
    ]
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["authorization", "content-type", "x-request-id"],
                expose_headers=["x-request-id"],
                max_age=600,
            )
        )
    routes: list[BaseRoute] = [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        *assets.routes(),
        *dashboard_viewer.routes(),
    ]
    if settings.graphiql:
        routes.append(Mount(ide.ASSETS_PATH, app=ide.assets()))
    return Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
    )


def server_config(settings: Settings, host: str, port: int) -> uvicorn.Config:
    """How uvicorn serves the app; port 0 takes a free one. One place for `tilegraph serve`
    and the tests that serve the app inside their own event loop."""
    return uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        proxy_headers=True,
        forwarded_allow_ips=",".join(settings.trusted_proxies) or None,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        ws_max_size=1 << 20,
        # Events are small JSON; compressing each one for each socket cost more CPU in a
        # 1,000-subscriber fan-out than executing it, and a deflate context per socket.
        ws_per_message_deflate=False,
    )

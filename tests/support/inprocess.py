"""The in-process tier: the API app and arq workers as tasks of the test's own event loop,
against the session's real AWS emulator and redis-server. Nothing to spawn or wait for per
test; the process tier (stack.py) stays for what needs a process: a kill, a crash, the
command line, a log file to read.

They run only while the test awaits: a blocking call in a test (a process start, a sync
client, seconds of CPU) stops them too, heartbeats included, so keep such calls away from
moments when an in-process job is running (or run them with asyncio.to_thread)."""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass, field

import httpx
import uvicorn
from arq.worker import Worker
from starlette.applications import Starlette

from tests.support.stack import LoopbackUrls, Stack
from tilegraph.app import server_config
from tilegraph.jobs.worker import build_worker
from tilegraph.services.registry import Services
from tilegraph.settings import Settings


@dataclass
class InProcessApi(LoopbackUrls):
    """The app served by uvicorn inside this loop on a free loopback port (for WebSocket
    clients and the command line), with `transport` to send HTTP straight into the app."""

    app: Starlette
    server: uvicorn.Server
    ticking: asyncio.Task[None]
    port: int
    transport: httpx.ASGITransport

    @classmethod
    async def start(cls, settings: Settings) -> InProcessApi:
        config = server_config(settings, "127.0.0.1", 0)
        assert isinstance(config.app, Starlette)
        config.load()
        server = uvicorn.Server(config)
        # What Server.serve does, minus taking over SIGINT/SIGTERM from the test runner.
        server.lifespan = config.lifespan_class(config)
        await server.startup()
        port = server.servers[0].sockets[0].getsockname()[1]
        # The app as uvicorn runs it (behind its proxy-headers middleware); errors come back
        # as responses, as from a server, not as exceptions in the test.
        transport = httpx.ASGITransport(config.loaded_app, raise_app_exceptions=False)
        return cls(config.app, server, asyncio.create_task(server.main_loop()), port, transport)

    @property
    def services(self) -> Services:
        """The services the app's lifespan opened."""
        services: Services = self.app.state.services
        return services

    async def stop(self) -> None:
        self.server.should_exit = True
        await self.ticking
        await self.server.shutdown()


@dataclass
class InProcessWorker:
    """A long-running arq worker (crons included: the sweeper and the schedule tick) built
    by the project's build_worker, as a task of this loop."""

    worker: Worker
    running: asyncio.Task[None]

    @classmethod
    async def start(cls, settings: Settings) -> InProcessWorker:
        worker = build_worker(settings, handle_signals=False)
        started = asyncio.Event()
        open_services = worker.on_startup
        assert open_services is not None

        async def on_startup(ctx: dict[str, object]) -> None:
            await open_services(ctx)
            started.set()

        worker.on_startup = on_startup
        running = asyncio.create_task(worker.async_run())
        ready = asyncio.create_task(started.wait())
        await asyncio.wait({running, ready}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            ready.cancel()
            running.result()  # the start-up failure
            raise RuntimeError("the worker stopped before it started")
        return cls(worker, running)

    async def stop(self) -> None:
        """As on SIGTERM: running jobs are cancelled, then the worker closes its services."""
        self.worker.handle_sig(signal.SIGTERM)
        await asyncio.gather(self.running, *self.worker.tasks.values(), return_exceptions=True)
        self.worker.tasks.clear()
        await self.worker.close()


@dataclass
class InProcess:
    """Starts in-process APIs and workers with settings of their own (the session's plus
    overrides), and stops them all at the end of the test that asked for them."""

    stack: Stack
    started: list[InProcessApi | InProcessWorker] = field(default_factory=list)

    async def start_api(self, overrides: dict[str, str] | None = None) -> InProcessApi:
        api = await InProcessApi.start(self.stack.settings(overrides))
        self.started.append(api)
        return api

    async def start_worker(self, overrides: dict[str, str] | None = None) -> InProcessWorker:
        worker = await InProcessWorker.start(self.stack.settings(overrides))
        self.started.append(worker)
        return worker

    async def stop(self) -> None:
        while self.started:
            await self.started.pop().stop()

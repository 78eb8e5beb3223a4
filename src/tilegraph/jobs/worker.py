"""The arq worker: opens the services once, runs jobs and cron ticks."""

from __future__ import annotations

from typing import Any

import structlog
from arq.worker import Worker

from tilegraph.logs import configure_logging
from tilegraph.services.registry import Services, redis_settings
from tilegraph.settings import Settings

log = structlog.get_logger("tilegraph.worker")


async def _startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx["settings"]
    ctx["services"] = await Services.open(settings)
    log.info("worker_started", queue=settings.queue_name)


async def _shutdown(ctx: dict[str, Any]) -> None:
    services: Services | None = ctx.get("services")
    if services is not None:
        await services.close()


async def ping(ctx: dict[str, Any]) -> str:
    """A job that proves the worker is consuming the queue."""
    return "pong"


def build_worker(settings: Settings, *, burst: bool = False) -> Worker:
    configure_logging(settings)
    return Worker(
        functions=[ping],
        redis_settings=redis_settings(settings),
        queue_name=settings.queue_name,
        on_startup=_startup,
        on_shutdown=_shutdown,
        ctx={"settings": settings},
        poll_delay=settings.worker_poll_delay_seconds,
        max_jobs=settings.worker_max_jobs,
        burst=burst,
        handle_signals=True,
        keep_result=60,
        health_check_interval=10,
    )

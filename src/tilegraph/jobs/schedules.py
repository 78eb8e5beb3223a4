"""The scheduler tick, shared by transforms and deliveries: it reads due schedules from
their sparse indexes and advances each with a conditional write, so of two workers ticking
together exactly one queues each due run, under a job id made of the object and the due
time. However many runs were missed while nothing ticked, each schedule is caught up once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from tilegraph.domain.clock import to_iso, utcnow
from tilegraph.domain.transforms import TriggerType, plan_due_run
from tilegraph.jobs.lifecycle import REDIS_DOWN
from tilegraph.services.registry import Services
from tilegraph.store.schedules import ScheduledTable

log = structlog.get_logger("tilegraph.schedules")
TICK_CONCURRENCY = 32


@dataclass(frozen=True)
class Scheduled:
    """One kind of scheduled object: where its schedules are, how its due records read,
    and how a run of one is queued."""

    prefix: str  # of the job ids
    table: ScheduledTable
    due: Callable[[str], Awaitable[list[Any]]]
    queue_run: Callable[..., Awaitable[Any]]


def scheduled_kinds(services: Services) -> list[Scheduled]:
    repos = services.repos
    return [
        Scheduled(
            "tf", repos.transforms.schedules, repos.transforms.due, services.transforms.queue_run
        ),
        Scheduled(
            "dl", repos.deliveries.schedules, repos.deliveries.due, services.deliveries.queue_run
        ),
    ]


async def schedule_tick(services: Services, now: datetime | None = None) -> list[str]:
    """Queue every due scheduled run once; returns the transforms and deliveries this tick
    queued a run of (of two schedulers ticking together, each due run is in exactly one of
    their lists)."""
    moment = now or utcnow()
    limit = asyncio.Semaphore(TICK_CONCURRENCY)

    async def queue_one(kind: Scheduled, record: Any) -> str | None:
        if not record.schedule_cron or record.next_run_at is None:
            return None
        plan = plan_due_run(record.schedule_cron, record.next_run_at, moment)
        if plan is None:
            return None
        due_at, next_at = plan
        async with limit:
            if not await kind.table.advance(record.id, to_iso(due_at), to_iso(next_at)):
                return None  # another scheduler took this due run
            try:
                await kind.queue_run(
                    record,
                    TriggerType.SCHEDULE,
                    user_id=None,
                    due_at=due_at,
                    job_id=f"{kind.prefix}:{record.id}:{to_iso(due_at)}",
                )
            except REDIS_DOWN as exc:
                # The run is recorded QUEUED (DynamoDB first): the sweeper enqueues it once
                # Redis is back, so a tick during an outage (the CLI's, or one Redis left
                # mid-way) still runs each due run once.
                log.warning("schedule_enqueue_deferred", object_id=record.id, error=str(exc))
        return str(record.id)

    kinds = scheduled_kinds(services)
    due_lists = await asyncio.gather(*(kind.due(to_iso(moment)) for kind in kinds))
    queued = [
        found
        for found in await asyncio.gather(
            *(
                queue_one(kind, record)
                for kind, due in zip(kinds, due_lists, strict=True)
                for record in due
            )
        )
        if found is not None
    ]
    if queued:
        log.info("schedule_tick", queued=len(queued))
    return queued

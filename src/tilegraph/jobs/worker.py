"""The arq worker: opens the services once, runs jobs, and sweeps lost executions."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import structlog
from arq import cron
from arq.worker import Worker, func
from botocore.exceptions import BotoCoreError

from tilegraph.domain.executions import ExecutionStatus
from tilegraph.domain.runs import CardRunPlan
from tilegraph.events.channels import transform_run_channels
from tilegraph.executor import CapMode, Sandbox, bwrap_available
from tilegraph.jobs.cards import CardRunner
from tilegraph.jobs.deliveries import DeliveryRunner, release_delivery
from tilegraph.jobs.imports import (
    DatasetImporter,
    plan_source_schema,
    record_import_audit,
    sweep_work_dirs,
)
from tilegraph.jobs.lifecycle import ExecutionFailed, ExecutionRun, Runtime, run_execution
from tilegraph.jobs.schedules import schedule_tick
from tilegraph.jobs.sweeper import SweepTarget, sweep
from tilegraph.jobs.transforms import TransformRunner, release_transform
from tilegraph.jobs.turns import FairWorker
from tilegraph.logs import configure_logging
from tilegraph.services.registry import Services, redis_settings
from tilegraph.settings import Settings
from tilegraph.store.fair_queue import FairTurn
from tilegraph.store.imports import import_from_item

log = structlog.get_logger("tilegraph.worker")


class SandboxUnavailable(SystemExit):
    """The worker will not run user code without its sandbox."""


def open_sandbox(settings: Settings) -> Sandbox:
    """bubblewrap, or refusal to start; plain processes only when asked for explicitly."""
    slots = settings.sandbox_slots or None  # None: one per core (the Sandbox default)
    memory_cap = cast(CapMode, settings.sandbox_memory_cap)  # checked by Settings
    if settings.sandbox == "process":
        log.warning(
            "sandbox_weakened",
            message="TILEGRAPH_SANDBOX=process: user code runs WITHOUT bubblewrap isolation "
            "(no private network, filesystem or PID namespace). Use only where bubblewrap "
            "cannot run.",
        )
        return Sandbox(mode="process", slots=slots, memory_cap=memory_cap)
    if not bwrap_available():
        raise SandboxUnavailable(
            "bubblewrap (bwrap) cannot start a sandbox here, so the worker refuses to run user "
            "code. Install bubblewrap, or set TILEGRAPH_SANDBOX=process to run without it."
        )
    return Sandbox(mode="bwrap", slots=slots, memory_cap=memory_cap)


async def _startup(ctx: dict[str, Any]) -> None:
    settings: Settings = ctx["settings"]
    sandbox = ctx["sandbox"]
    removed = await asyncio.to_thread(sweep_work_dirs, settings.work_dir)
    if removed:
        log.info("work_dirs_swept", removed=removed)
    ctx["services"] = await open_services(settings)
    await warn_unbounded_cache(ctx["services"])
    await sandbox.start()
    ctx["cards"] = CardRunner(ctx["services"], sandbox)
    ctx["transforms"] = TransformRunner(ctx["services"], sandbox)
    ctx["deliveries"] = DeliveryRunner(ctx["services"], ctx["cards"])
    log.info("worker_started", queue=settings.queue_name, sandbox=settings.sandbox)


async def open_services(settings: Settings) -> Services:
    """Waits for DynamoDB and S3 (or their emulator) to answer rather than exit: a worker
    started before them, or beside one restarting, comes up once they do."""
    delay = 0.5
    while True:
        try:
            return await Services.open(settings)
        except (BotoCoreError, OSError) as exc:
            log.warning(
                "store_unavailable", error=f"{type(exc).__name__}: {exc}", retry_in_seconds=delay
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


async def warn_unbounded_cache(services: Services) -> None:
    try:
        problem = await services.card_results.bound_problem(services.redis)
    except Exception:  # Redis not up yet: the problem, if any, is reported next start
        return
    if problem is not None:
        log.warning("card_cache_unbounded", message=problem)


async def _shutdown(ctx: dict[str, Any]) -> None:
    services: Services | None = ctx.get("services")
    await ctx["sandbox"].close()
    if services is not None:
        await services.close()


async def ping(ctx: dict[str, Any]) -> str:
    """A job that proves the worker is consuming the queue."""
    return "pong"


async def import_dataset(ctx: dict[str, Any], import_id: str) -> None:
    services: Services = ctx["services"]
    run = await ExecutionRun.begin(
        Runtime.of(services), services.repos.imports.executions, import_id
    )
    if run is not None:
        importer = DatasetImporter(services)
        await run_execution(run, importer.run, on_finished=importer.cleanup)


async def run_card(
    ctx: dict[str, Any], execution_id: str, plan_item: dict[str, Any] | None = None
) -> None:
    """Executes the plan the job carries (the record's copy when the sweeper re-enqueued
    the job, which the RUNNING transition returns without another read)."""
    services: Services = ctx["services"]
    runner: CardRunner = ctx["cards"]
    run = await ExecutionRun.begin(
        Runtime.of(services), services.repos.cards.executions, execution_id
    )
    if run is None:
        return
    planned = plan_item or run.item.get("plan")

    async def body(run: ExecutionRun) -> dict[str, Any]:
        if not planned:
            raise ExecutionFailed.unavailable("This run has no plan; run the card again")
        return await runner.run(run, CardRunPlan.from_item(planned))

    await run_execution(run, body, on_finished=runner.finished)


async def run_transform(ctx: dict[str, Any], run_id: str) -> None:
    runner: TransformRunner = ctx["transforms"]
    await runner.start(run_id)


async def run_delivery(ctx: dict[str, Any], run_id: str) -> None:
    runner: DeliveryRunner = ctx["deliveries"]
    await runner.start(run_id)


async def tick_schedules(ctx: dict[str, Any]) -> int:
    return len(await schedule_tick(ctx["services"]))


async def plan_reimport(ctx: dict[str, Any], import_item: dict[str, Any]) -> dict[str, Any]:
    return await plan_source_schema(ctx["services"], import_from_item(import_item))


def card_turn(item: dict[str, Any]) -> FairTurn:
    """A re-enqueued card run waits in its user's queue, reserving its planned output cap."""
    limits = (item.get("plan") or {}).get("limits") or {}
    return FairTurn(str(item["owner_id"]), int(limits.get("output_max_bytes", 0)))


def owner_turn(item: dict[str, Any]) -> FairTurn:
    """A transform run waits in its owner's queue."""
    return FairTurn(str(item["owner_id"]))


def sweep_targets(services: Services) -> list[SweepTarget]:
    async def release_card_slot(item: dict[str, Any]) -> None:
        await services.run_allowance.release(item["owner_id"], item["id"])

    async def transform_lost(item: dict[str, Any]) -> None:
        await release_transform(services, item)

    async def delivery_lost(item: dict[str, Any]) -> None:
        await release_delivery(services, item)

    async def published_result(item: dict[str, Any]) -> dict[str, Any] | None:
        """A run announces the version it publishes before the flip, and a version in the
        dataset's list is live: then the run did succeed, whatever became of its worker."""
        publishing = item.get("publishing") or {}
        if not publishing:
            return None
        dataset = await services.repos.datasets.get(str(publishing["dataset_id"]))
        if dataset is None or int(publishing["version"]) not in dataset.published_versions:
            return None
        return dict(publishing["result"])

    async def import_ended(item: dict[str, Any]) -> None:
        if item["status"] == ExecutionStatus.SUCCEEDED.value:
            dataset = await services.repos.datasets.get(import_from_item(item).dataset_id)
            columns = len(dataset.columns) if dataset is not None else 0
            await record_import_audit(services, item, item, columns=columns)

    return [
        SweepTarget(
            services.repos.imports.executions,
            "import_dataset",
            on_lost=import_ended,
            recover=published_result,
        ),
        SweepTarget(
            services.repos.cards.executions,
            "run_card",
            on_lost=release_card_slot,
            job_args=lambda item: (item["id"], item.get("plan")),
            turn=card_turn,
        ),
        SweepTarget(
            services.repos.transforms.runs,
            "run_transform",
            channels=transform_run_channels,
            on_lost=transform_lost,
            recover=published_result,
            turn=owner_turn,
        ),
        SweepTarget(services.repos.deliveries.runs, "run_delivery", on_lost=delivery_lost),
    ]


async def sweep_executions(ctx: dict[str, Any]) -> dict[str, int]:
    services: Services = ctx["services"]
    settings = services.settings
    report = await sweep(
        sweep_targets(services),
        events=services.events,
        queue=services.queue,
        heartbeat_timeout=settings.heartbeat_timeout_seconds,
        requeue_grace=settings.requeue_grace_seconds,
    )
    return {"lost": report.lost, "requeued": report.requeued}


def build_worker(settings: Settings, *, burst: bool = False, handle_signals: bool = True) -> Worker:
    """The worker; `handle_signals=False` leaves SIGINT/SIGTERM to a host event loop that
    runs it as one task among others (the tests' in-process tier)."""
    configure_logging(settings)
    sandbox = open_sandbox(settings)
    every = max(1, min(settings.sweeper_interval_seconds, 60))
    tick = max(1, min(settings.schedule_tick_seconds, 60))
    return FairWorker(
        slots=sandbox.slots,
        output_budget_bytes=settings.max_inflight_output_bytes_per_user,
        functions=[
            ping,
            func(import_dataset, timeout=settings.import_timeout_seconds, max_tries=3),
            func(plan_reimport, timeout=settings.plan_timeout_seconds, max_tries=1),
            func(run_card, timeout=settings.card_timeout_seconds + 60, max_tries=3),
            func(run_transform, timeout=settings.transform_timeout_seconds + 600, max_tries=3),
            func(run_delivery, timeout=settings.delivery_timeout_seconds, max_tries=3),
        ],
        # A burst worker drains the queue and exits. arq queues each cron run up to a second
        # ahead, so with a sweeper every second the queue would never be empty: a burst
        # worker leaves ticking and sweeping to the long-running ones.
        cron_jobs=[]
        if burst
        else [
            cron(
                tick_schedules,
                second=set(range(0, 60, tick)),
                run_at_startup=True,
                unique=True,
                timeout=120,
            ),
            cron(
                sweep_executions,
                second=set(range(0, 60, every)),
                run_at_startup=True,
                unique=True,
                timeout=60,
            ),
        ],
        redis_settings=redis_settings(settings),
        queue_name=settings.queue_name,
        on_startup=_startup,
        on_shutdown=_shutdown,
        ctx={"settings": settings, "sandbox": sandbox},
        poll_delay=settings.worker_poll_delay_seconds,
        max_jobs=settings.worker_max_jobs,
        burst=burst,
        handle_signals=handle_signals,
        # SIGTERM: stop taking jobs, let running ones finish this long, hand the rest back.
        job_completion_wait=settings.worker_stop_grace_seconds,
        allow_abort_jobs=True,
        keep_result=60,
        health_check_interval=10,
        job_timeout=settings.import_timeout_seconds,
    )

"""Finds executions whose worker died (FAILED with WORKER_LOST, or SUCCEEDED when what
they published is live) and queued executions whose job vanished from Redis (enqueued
again), so no accepted request is lost."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog

from tilegraph.domain.clock import from_iso, utcnow
from tilegraph.domain.executions import ExecutionError, ExecutionErrorCode, ExecutionStatus
from tilegraph.events.publisher import ExecutionEvents
from tilegraph.store.executions import ExecutionTable
from tilegraph.store.fair_queue import FairTurn
from tilegraph.store.queue import JobQueue

log = structlog.get_logger("tilegraph.sweeper")

WORKER_LOST = ExecutionError(
    ExecutionErrorCode.WORKER_LOST, "The worker running this stopped responding; try again"
)


@dataclass
class SweepTarget:
    table: ExecutionTable
    job_function: str
    channels: Callable[[dict[str, Any]], list[str]] = lambda item: []
    # Called with the run's final record once the sweeper has ended it (lost or recovered).
    on_lost: Callable[[dict[str, Any]], Awaitable[None]] | None = None
    # The result a dead worker's run had already made live (its published version), if any.
    recover: Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]] | None = None
    # What the job is called with: the execution id, and for card runs the stored plan.
    job_args: Callable[[dict[str, Any]], tuple[Any, ...]] = lambda item: (item["id"],)
    # Whose turn a sandbox run waits for (None: arq's own line, as for imports).
    turn: Callable[[dict[str, Any]], FairTurn] | None = None


@dataclass
class SweepReport:
    lost: int = 0
    requeued: int = 0


async def sweep(
    targets: list[SweepTarget],
    *,
    events: ExecutionEvents,
    queue: JobQueue,
    heartbeat_timeout: float,
    requeue_grace: float,
) -> SweepReport:
    report = SweepReport()
    now = utcnow()
    for target in targets:
        for item in await target.table.active():
            status = ExecutionStatus(item["status"])
            if status is ExecutionStatus.RUNNING:
                beat = item.get("heartbeat_at") or item.get("started_at") or item["queued_at"]
                if now - from_iso(beat) < timedelta(seconds=heartbeat_timeout):
                    continue
                result = await target.recover(item) if target.recover is not None else None
                if result is not None:
                    lost = await target.table.transition(
                        item["id"],
                        allowed_from=[ExecutionStatus.RUNNING],
                        to=ExecutionStatus.SUCCEEDED,
                        values={**result, "progress": 1.0},
                    )
                else:
                    lost = await target.table.transition(
                        item["id"],
                        allowed_from=[ExecutionStatus.RUNNING],
                        to=ExecutionStatus.FAILED,
                        values={"error": WORKER_LOST.to_item()},
                    )
                if lost is None:
                    continue
                report.lost += 1
                log.warning(
                    "execution_worker_lost", execution_id=item["id"], recovered=result is not None
                )
                await events.publish(lost, target.channels(lost))
                if target.on_lost is not None:
                    await target.on_lost(lost)
            elif status is ExecutionStatus.QUEUED:
                if now - from_iso(item["queued_at"]) < timedelta(seconds=requeue_grace):
                    continue
                if item.get("queue", queue.queue_name) != queue.queue_name:
                    continue  # another queue's job: its own workers' sweepers see to it
                job_id = item.get("job_id") or item["id"]
                if await queue.exists(job_id):
                    continue
                turn = target.turn(item) if target.turn is not None else None
                if await queue.enqueue(
                    target.job_function, job_id, *target.job_args(item), turn=turn
                ):
                    report.requeued += 1
                    log.warning("execution_requeued", execution_id=item["id"])
    return report

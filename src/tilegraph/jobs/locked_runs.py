"""Starting a run that holds its object's lock (transform and delivery runs), so two runs of
one object never overlap: a run that finds another holding the lock is recorded as skipped
and gives its place in the run allowance back."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import structlog

from tilegraph.domain.executions import ExecutionError, ExecutionStatus
from tilegraph.jobs.lifecycle import ExecutionRun, Runtime, run_execution
from tilegraph.services.registry import Services
from tilegraph.store.executions import ExecutionTable
from tilegraph.store.schedules import ScheduledTable

log = structlog.get_logger("tilegraph.jobs")


@dataclass(frozen=True)
class LockedRuns:
    """One kind of locked run: its table, the field naming its object, where the lock is,
    why a skipped run did not start, and the channels its changes go to."""

    table: ExecutionTable
    object_field: str
    locks: ScheduledTable
    skipped: Callable[[str], ExecutionError]
    channels: Callable[[dict[str, Any]], Iterable[str]]

    async def start(
        self,
        services: Services,
        run_id: str,
        body: Callable[[ExecutionRun], Awaitable[dict[str, Any] | None]],
        on_finished: Callable[[ExecutionRun], Awaitable[None]],
    ) -> None:
        """The job: lock, run, record; or record the run as skipped."""
        item = await self.table.get(run_id)
        if item is None or ExecutionStatus(item["status"]) is not ExecutionStatus.QUEUED:
            return
        object_id = str(item[self.object_field])
        owner_id = str(item["owner_id"])
        holder = await self.locks.lock(object_id, run_id)
        if holder is not None:
            await services.run_allowance.release(owner_id, run_id)
            skipped = await self.table.transition(
                run_id,
                allowed_from=[ExecutionStatus.QUEUED],
                to=ExecutionStatus.CANCELLED,
                values={"error": self.skipped(holder).to_item()},
            )
            if skipped is not None:
                log.info("run_skipped", run_id=run_id, running=holder)
                await services.events.publish(skipped, self.channels(skipped))
            return
        run = await ExecutionRun.begin(
            Runtime.of(services), self.table, run_id, self.channels(item)
        )
        if run is None:
            await self.locks.unlock(object_id, run_id)
            await services.run_allowance.release(owner_id, run_id)
            return
        await run_execution(run, body, on_finished=on_finished)

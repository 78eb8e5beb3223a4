"""The worker's side of taking runs in turn: an arq Worker that, on each poll, fills its free
sandbox slots from the per-user queues (`tilegraph.store.fair_queue`) before arq polls its
own line (imports, crons, plans).

A taken run is claimed in Redis by the take itself, and is then executed by arq's own
`run_job`, so timeouts, aborts (`cancelExecution`), retries and results work as for any
other job. The worker holds no more runs than it has slots: a run waits in its user's queue,
where any worker's next free slot can take it in turn, never in one worker's memory.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from arq.worker import Worker

from tilegraph.store.fair_queue import FairQueue, TakenRun

log = structlog.get_logger("tilegraph.turns")


class FairWorker(Worker):
    """An arq Worker that also takes sandbox runs in turn, at most `slots` at once."""

    def __init__(self, *args: Any, slots: int, output_budget_bytes: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fair_slots = max(1, slots)
        self.output_budget_bytes = output_budget_bytes
        self._fair_running: set[asyncio.Task[None]] = set()
        self._fair: FairQueue | None = None

    async def _poll_iteration(self) -> None:
        if self.allow_pick_jobs:
            await self._take_runs()
        await super()._poll_iteration()

    async def _take_runs(self) -> None:
        if self._fair is None:
            self._fair = FairQueue(self.pool, self.queue_name)
        while len(self._fair_running) < self.fair_slots:
            taken = await self._fair.take(
                claim_seconds=self.in_progress_timeout_s, budget_bytes=self.output_budget_bytes
            )
            if taken is None:
                return
            task = asyncio.create_task(self._run_taken(self._fair, taken))
            self._fair_running.add(task)
            task.add_done_callback(self._fair_running.discard)
            # Among arq's tasks, so shutdown waits for it and aborts reach it.
            self.tasks[taken.job_id] = task

    async def _run_taken(self, fair: FairQueue, taken: TakenRun) -> None:
        try:
            await self.run_job(taken.job_id, taken.score)
        finally:
            try:
                await asyncio.shield(fair.release(taken))
            except Exception:  # the reservation's deadline frees it anyway
                log.warning("fair_release_failed", job_id=taken.job_id)

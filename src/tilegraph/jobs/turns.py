"""The worker's side of taking runs in turn: an arq Worker that, on each poll, fills its free
sandbox slots from the per-user queues (`tilegraph.store.fair_queue`) before arq polls its
own line (imports, crons, plans).

A taken run is claimed in Redis by the take itself, and is then executed by arq's own
`run_job`, so timeouts, aborts (`cancelExecution`), retries and results work as for any
other job. The worker holds no more runs than it has slots: a run waits in its user's queue,
where any worker's next free slot can take it in turn, never in one worker's memory.

It also outlives its Redis: a poll that fails on a Redis error is retried with backoff (the
client reconnects) instead of ending the worker. And it stops without losing work: on
SIGTERM it takes nothing more, lets running jobs finish for a grace period, then cancels the
rest as a *system stop* (`WorkerStop`): their runs go back to QUEUED and their jobs back to
the queue (a sandbox run to the front of its user's queue) for another worker, without
using up one of the job's tries.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace
from signal import Signals
from typing import Any

import structlog
from arq.connections import create_pool
from arq.constants import retry_key_prefix
from arq.worker import Worker

from tilegraph.jobs.lifecycle import REDIS_DOWN, WorkerStop, worker_stop
from tilegraph.store.fair_queue import FairQueue, TakenRun

log = structlog.get_logger("tilegraph.turns")

BACKOFF_FIRST_SECONDS = 0.1
BACKOFF_MAX_SECONDS = 5.0


class FairWorker(Worker):
    """An arq Worker that also takes sandbox runs in turn, at most `slots` at once."""

    def __init__(self, *args: Any, slots: int, output_budget_bytes: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fair_slots = max(1, slots)
        self.output_budget_bytes = output_budget_bytes
        self._fair_running: set[asyncio.Task[None]] = set()
        self._fair: FairQueue | None = None
        self._fair_taken: dict[str, TakenRun] = {}
        self.stop = WorkerStop()
        self._redis_failures = 0
        self._redis_down_since = 0.0

    async def main(self) -> None:
        worker_stop.set(self.stop)  # inherited by every job task this loop starts
        while self._pool is None and self.redis_settings is not None:
            # Wait for Redis however long it takes to come up (arq would give up after 5 s).
            try:
                self._pool = await create_pool(
                    replace(self.redis_settings, conn_retries=0),
                    job_deserializer=self.job_deserializer,
                    job_serializer=self.job_serializer,
                    default_queue_name=self.queue_name,
                    expires_extra_ms=self.expires_extra_ms,
                )
            except REDIS_DOWN as exc:
                await self._redis_unavailable(exc)
        self._redis_failures = 0
        await super().main()

    async def _poll_iteration(self) -> None:
        try:
            if self.allow_pick_jobs:
                await self._take_runs()
            await super()._poll_iteration()
        except REDIS_DOWN as exc:
            await self._redis_unavailable(exc)
            return
        if self._redis_failures:
            log.warning(
                "redis_reconnected",
                after_seconds=round(time.monotonic() - self._redis_down_since, 2),
            )
            self._redis_failures = 0

    async def _redis_unavailable(self, exc: BaseException) -> None:
        if self._redis_failures == 0:
            self._redis_down_since = time.monotonic()
        self._redis_failures += 1
        delay = min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** (self._redis_failures - 1))
        log.warning(
            "redis_unavailable",
            error=f"{type(exc).__name__}: {exc}",
            attempt=self._redis_failures,
            retry_in_seconds=delay,
        )
        await asyncio.sleep(delay)

    async def _take_runs(self) -> None:
        if self._fair is None:
            self._fair = FairQueue(self.pool, self.queue_name)
        while len(self._fair_running) < self.fair_slots:
            taken = await self._fair.take(
                claim_seconds=self.in_progress_timeout_s, budget_bytes=self.output_budget_bytes
            )
            if taken is None:
                return
            self._fair_taken[taken.job_id] = taken
            task = asyncio.create_task(self._run_taken(self._fair, taken))
            self._fair_running.add(task)
            task.add_done_callback(self._fair_running.discard)
            # Among arq's tasks, so shutdown waits for it and aborts reach it.
            self.tasks[taken.job_id] = task

    async def _run_taken(self, fair: FairQueue, taken: TakenRun) -> None:
        try:
            await self.run_job(taken.job_id, taken.score)
        finally:
            self._fair_taken.pop(taken.job_id, None)
            try:
                await asyncio.shield(fair.release(taken))
            except Exception:  # the reservation's deadline frees it anyway
                log.warning("fair_release_failed", job_id=taken.job_id)

    async def finish_job(
        self,
        job_id: str,
        finish: bool,
        result_data: bytes | None,
        result_timeout_s: float | None,
        keep_result_forever: bool,
        incr_score: int | None,
        keep_in_progress: float | None,
    ) -> None:
        """A job cancelled by this worker's stop goes back to the queue it came from, with
        its try given back (a deploy is not the job's failure)."""
        handing_back = self.stop.requested and not finish
        if handing_back:
            taken = self._fair_taken.get(job_id)
            if taken is not None and self._fair is not None:
                await self._fair.hand_back(taken, retry_key_prefix + job_id)
                log.info("job_handed_back", job_id=job_id, queue="fair")
                return
        await super().finish_job(
            job_id,
            finish,
            result_data,
            result_timeout_s,
            keep_result_forever,
            incr_score,
            keep_in_progress,
        )
        if handing_back:
            await self.pool.delete(retry_key_prefix + job_id)
            log.info("job_handed_back", job_id=job_id, queue="arq")

    def handle_sig(self, signum: Signals) -> None:
        """Stop now: what is running is handed back, not cancelled."""
        self.stop.requested = True
        super().handle_sig(signum)

    async def _wait_for_tasks_to_complete(self, signum: Signals) -> None:
        """arq's graceful stop, with the runs still going at the end of the grace period
        handed back rather than cancelled."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._sleep_until_tasks_complete(), self._job_completion_wait)
        ongoing = [t for t in self.tasks.values() if not t.done()]
        log.info("worker_stopping", signal=signum.name, handing_back=len(ongoing))
        self.stop.requested = True
        for task in ongoing:
            task.cancel()
        if self.main_task is not None:
            self.main_task.cancel()
        if self.on_stop is not None:
            self.on_stop(signum)

"""The arq job queue in Redis as its producers see it: enqueueing work (job id = execution
id), aborting it, and asking whether a job still exists. Services enqueue and the sweeper
re-enqueues; the jobs that consume it live in `tilegraph.jobs`. Sandbox runs name whose turn
they wait for (`FairTurn`) and go through the per-user queues of `fair_queue`."""

from __future__ import annotations

import time
from typing import Any

from arq.connections import ArqRedis
from arq.constants import abort_jobs_ss, in_progress_key_prefix, job_key_prefix
from arq.jobs import Job

from tilegraph.store.fair_queue import FairQueue, FairTurn


class JobQueue:
    def __init__(self, redis: ArqRedis, queue_name: str) -> None:
        self.redis = redis
        self.queue_name = queue_name
        self.fair = FairQueue(redis, queue_name)

    async def enqueue(
        self, function: str, job_id: str, *args: Any, turn: FairTurn | None = None, **kwargs: Any
    ) -> bool:
        """False when a job with this id is already queued, running or recently done. With
        `turn`, the job waits in that user's queue and is taken in turn with other users'."""
        if turn is not None:
            return await self.fair.enqueue(turn, function, job_id, *args)
        job = await self.redis.enqueue_job(
            function, *args, _job_id=job_id, _queue_name=self.queue_name, **kwargs
        )
        return job is not None

    async def run(self, function: str, job_id: str, *args: Any, wait_seconds: float) -> Any:
        """Enqueue and wait for the result (work that must not run on the API's loop)."""
        job = await self.redis.enqueue_job(
            function, *args, _job_id=job_id, _queue_name=self.queue_name
        )
        if job is None:
            job = Job(job_id, self.redis, _queue_name=self.queue_name)
        return await job.result(timeout=wait_seconds, poll_delay=0.05)

    async def abort(self, job_id: str) -> None:
        """Ask the worker to cancel the job (a queued one is then never started)."""
        await self.redis.zadd(abort_jobs_ss, {job_id: int(time.time() * 1000)})

    async def exists(self, job_id: str) -> bool:
        return bool(
            await self.redis.exists(job_key_prefix + job_id, in_progress_key_prefix + job_id)
        )

"""Running one execution in a worker: QUEUED → RUNNING → terminal, with every change
stored and published, a heartbeat while it runs, and cancellation honoured."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tilegraph.domain.clock import to_iso, utcnow
from tilegraph.domain.executions import ExecutionError, ExecutionErrorCode, ExecutionStatus
from tilegraph.events.channels import execution_cancel_key
from tilegraph.events.publisher import ExecutionEvents
from tilegraph.services.registry import Services
from tilegraph.store.executions import ExecutionTable

log = structlog.get_logger("tilegraph.jobs")

PROGRESS_MIN_INTERVAL = 0.25
# Errors of an unreachable Redis.
REDIS_DOWN = (RedisError, OSError, asyncio.TimeoutError)


class ExecutionFailed(Exception):
    """A failure to report to the user with its ExecutionError."""

    def __init__(self, error: ExecutionError) -> None:
        super().__init__(error.message)
        self.error = error

    @classmethod
    def of(cls, code: ExecutionErrorCode, message: str, line: int | None = None) -> ExecutionFailed:
        return cls(ExecutionError(code, message, line))

    @classmethod
    def unavailable(cls, message: str) -> ExecutionFailed:
        """An input the run needs cannot be read."""
        return cls.of(ExecutionErrorCode.INPUT_UNAVAILABLE, message)


class CancelledByUser(Exception):
    """The work noticed a cancel request and stopped."""


@dataclass
class WorkerStop:
    """Set by a worker that is stopping (SIGTERM) before it cancels the runs still going, so
    a cancelled run can tell a system stop (hand the run back) from a user's cancel."""

    requested: bool = False
    handed_back: set[str] = field(default_factory=set)


# Each worker's main task sets its own; the job tasks it starts inherit it.
worker_stop: contextvars.ContextVar[WorkerStop | None] = contextvars.ContextVar(
    "worker_stop", default=None
)


@dataclass
class Runtime:
    """What every run needs from the worker."""

    events: ExecutionEvents
    redis: Redis
    heartbeat_seconds: float

    @classmethod
    def of(cls, services: Services) -> Runtime:
        return cls(services.events, services.redis, services.settings.heartbeat_seconds)


class ExecutionRun:
    def __init__(
        self, runtime: Runtime, table: ExecutionTable, item: dict[str, Any], channels: Iterable[str]
    ) -> None:
        self.runtime = runtime
        self.table = table
        self.item = item
        self.channels = tuple(channels)
        self.cancel_requested = False
        self._last_report = 0.0
        self._heartbeat: asyncio.Task[None] | None = None
        # Runs once the run has ended (audit, unlocks, cleanup), before the end is published,
        # so whoever sees the final state also sees its consequences.
        self.on_terminal: Callable[[ExecutionRun], Awaitable[None]] | None = None
        self._terminal_done = False
        # Published with a successful end but not stored (a card's HTML: subscribers get it
        # in the event, the record keeps only where it lives).
        self.final_event_values: dict[str, Any] = {}

    @property
    def id(self) -> str:
        return str(self.item["id"])

    @classmethod
    async def begin(
        cls,
        runtime: Runtime,
        table: ExecutionTable,
        execution_id: str,
        channels: Iterable[str] = (),
    ) -> ExecutionRun | None:
        """RUNNING, unless it was cancelled, finished, or is already running elsewhere."""
        now = to_iso(utcnow())
        item = await table.transition(
            execution_id,
            allowed_from=[ExecutionStatus.QUEUED],
            to=ExecutionStatus.RUNNING,
            values={"started_at": now, "heartbeat_at": now, "progress": 0.0},
        )
        if item is None:
            log.info("execution_not_started", execution_id=execution_id)
            return None
        run = cls(runtime, table, item, channels)
        await run.publish()
        return run

    async def publish(self) -> None:
        """Best effort: the record in DynamoDB is the truth, and a Redis that is away (or
        restarted) must not end the run; the next change, or a re-read, carries the state."""
        try:
            await self.runtime.events.publish(self.item, self.channels)
        except REDIS_DOWN as exc:
            log.warning("execution_publish_failed", execution_id=self.id, error=str(exc))

    async def report(self, *, force: bool = False, **values: Any) -> None:
        """Progress: published, and stored on the record with the same values (so a query
        shows what a subscriber saw), at most a few times a second."""
        changes = {k: v for k, v in values.items() if v is not None}
        self.item.update(changes)
        now = time.monotonic()
        if force or now - self._last_report >= PROGRESS_MIN_INTERVAL:
            self._last_report = now
            await asyncio.gather(self.table.heartbeat(self.id, changes), self.publish())

    async def announce_publish(self, dataset_id: str, version: int, result: dict[str, Any]) -> None:
        """Store, before the flip, which version this run publishes and the result it will
        report, so the sweeper can tell a run that died after its flip from one that died
        before it (see `published_result`)."""
        await self.report(
            force=True,
            publishing={"dataset_id": dataset_id, "version": version, "result": result},
        )

    async def finish(
        self,
        status: ExecutionStatus,
        *,
        error: ExecutionError | None = None,
        values: dict[str, Any] | None = None,
    ) -> bool:
        """Write the terminal state once; False when another writer (the sweeper, a
        cancel) ended it first, in which case nothing is published."""
        changes = dict(values or {})
        if error is not None:
            changes["error"] = error.to_item()
        if status is ExecutionStatus.SUCCEEDED:
            changes["progress"] = 1.0
        item = await self.table.transition(
            self.id, allowed_from=[ExecutionStatus.RUNNING], to=status, values=changes
        )
        if item is None:
            return False
        self.item = item
        await self.run_terminal_hook()
        extra = self.final_event_values if status is ExecutionStatus.SUCCEEDED else {}
        try:
            await self.runtime.events.publish({**item, **extra}, self.channels)
        except REDIS_DOWN as exc:
            log.warning("execution_publish_failed", execution_id=self.id, error=str(exc))
        return True

    async def run_terminal_hook(self) -> None:
        if self.on_terminal is None or self._terminal_done:
            return
        self._terminal_done = True
        try:
            await self.on_terminal(self)
        except Exception:
            log.exception("execution_terminal_hook_failed", execution_id=self.id)

    async def __aenter__(self) -> ExecutionRun:
        self._heartbeat = asyncio.create_task(self._beat(), name=f"heartbeat-{self.id}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.runtime.heartbeat_seconds)
            with contextlib.suppress(Exception):
                await self.table.heartbeat(self.id)
                if await self.runtime.redis.exists(execution_cancel_key(self.id)):
                    self.cancel_requested = True

    async def hand_back(self) -> bool:
        """RUNNING → QUEUED again, published, with no terminal hook: the worker stopping
        puts the job back in the queue and another worker starts the run afresh."""
        self._terminal_done = True  # the run has not ended: its allowance, lock, staging stay
        item = await self.table.transition(
            self.id,
            allowed_from=[ExecutionStatus.RUNNING],
            to=ExecutionStatus.QUEUED,
            values={"progress": 0.0},
            remove=["started_at", "heartbeat_at"],
        )
        if item is None:
            return False
        self.item = item
        log.info("execution_handed_back", execution_id=self.id)
        await self.publish()
        return True

    async def user_cancelled(self) -> bool:
        if self.cancel_requested:
            return True
        with contextlib.suppress(Exception):
            return bool(await self.runtime.redis.exists(execution_cancel_key(self.id)))
        return False

    async def check_cancel(self) -> None:
        if await self.user_cancelled():
            self.cancel_requested = True
            raise CancelledByUser


CANCELLED = ExecutionError(ExecutionErrorCode.CANCELLED, "Cancelled")


async def run_execution(
    run: ExecutionRun,
    body: Callable[[ExecutionRun], Awaitable[dict[str, Any] | None]],
    *,
    on_finished: Callable[[ExecutionRun], Awaitable[None]] | None = None,
) -> None:
    """Runs `body` and records how it ended; unexpected errors are logged and reported
    without internals. `on_finished` runs exactly once, however the run ended."""
    run.on_terminal = on_finished
    async with run:
        try:
            values = await body(run)
        except (asyncio.CancelledError, CancelledByUser) as exc:
            stop = worker_stop.get()
            system_stop = (
                isinstance(exc, asyncio.CancelledError)
                and stop is not None
                and stop.requested
                and not await asyncio.shield(run.user_cancelled())
            )
            run.cancel_requested = True  # stops work still running in threads
            if system_stop and await asyncio.shield(run.hand_back()):
                assert stop is not None
                stop.handed_back.add(run.id)
            else:
                await asyncio.shield(run.finish(ExecutionStatus.CANCELLED, error=CANCELLED))
            if isinstance(exc, asyncio.CancelledError):
                raise
        except ExecutionFailed as exc:
            await run.finish(ExecutionStatus.FAILED, error=exc.error)
        except Exception:
            log.exception("execution_crashed", execution_id=run.id)
            await run.finish(
                ExecutionStatus.FAILED,
                error=ExecutionError(
                    ExecutionErrorCode.RUNTIME_ERROR,
                    f"Internal error while running {run.id}; see the logs",
                ),
            )
        else:
            await run.finish(ExecutionStatus.SUCCEEDED, values=values)
        finally:
            await asyncio.shield(run.run_terminal_hook())

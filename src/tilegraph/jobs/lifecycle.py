"""Running one execution in a worker: QUEUED → RUNNING → terminal, with every change
stored and published, a heartbeat while it runs, and cancellation honoured."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import structlog
from redis.asyncio import Redis

from tilegraph.domain.clock import to_iso, utcnow
from tilegraph.domain.executions import ExecutionError, ExecutionErrorCode, ExecutionStatus
from tilegraph.events.channels import execution_cancel_key
from tilegraph.events.publisher import ExecutionEvents
from tilegraph.services.registry import Services
from tilegraph.store.executions import ExecutionTable

log = structlog.get_logger("tilegraph.jobs")

PROGRESS_MIN_INTERVAL = 0.25


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
        await self.runtime.events.publish(self.item, self.channels)

    async def report(self, *, force: bool = False, **values: Any) -> None:
        """Progress: stored in Redis and published, at most a few times a second."""
        self.item.update({k: v for k, v in values.items() if v is not None})
        now = time.monotonic()
        if force or now - self._last_report >= PROGRESS_MIN_INTERVAL:
            self._last_report = now
            await self.publish()

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
        await self.runtime.events.publish({**item, **extra}, self.channels)
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

    async def check_cancel(self) -> None:
        if self.cancel_requested or await self.runtime.redis.exists(execution_cancel_key(self.id)):
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
            run.cancel_requested = True  # stops work still running in threads
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

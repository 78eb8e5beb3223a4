"""Cancelling any execution (import, card run, transform run) by its id."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tilegraph.domain.errors import NotFound
from tilegraph.domain.executions import ExecutionError, ExecutionErrorCode, ExecutionStatus
from tilegraph.domain.ids import prefix_of
from tilegraph.domain.users import Principal
from tilegraph.events.channels import execution_cancel_key
from tilegraph.events.publisher import STATE_TTL_SECONDS, ExecutionEvents
from tilegraph.jobs.queue import JobQueue
from tilegraph.store.executions import ExecutionTable

CANCELLED = ExecutionError(ExecutionErrorCode.CANCELLED, "Cancelled")


@dataclass
class CancelTarget:
    table: ExecutionTable
    channels: Callable[[dict[str, Any]], list[str]] = lambda item: []


class ExecutionService:
    def __init__(self, redis: Any, events: ExecutionEvents, queue: JobQueue) -> None:
        self.redis = redis
        self.events = events
        self.queue = queue
        self.targets: dict[str, CancelTarget] = {}

    def register(self, prefix: str, target: CancelTarget) -> None:
        self.targets[prefix] = target

    async def cancel(self, principal: Principal, execution_id: str) -> bool:
        """True when the execution was cancelled or is being cancelled; False when it had
        already finished."""
        target = self.targets.get(prefix_of(execution_id) or "")
        item = await target.table.get(execution_id) if target else None
        # Only whoever started an execution may cancel it.
        if target is None or item is None or item.get("owner_id") != principal.user_id:
            raise NotFound("No such execution", field="id")
        status = ExecutionStatus(item["status"])
        if status.is_terminal:
            return False
        if status is ExecutionStatus.QUEUED:
            cancelled = await target.table.transition(
                execution_id,
                allowed_from=[ExecutionStatus.QUEUED],
                to=ExecutionStatus.CANCELLED,
                values={"error": CANCELLED.to_item()},
            )
            if cancelled is not None:
                await self.queue.abort(execution_id)
                await self.events.publish(cancelled, target.channels(cancelled))
                return True
        # Running (or started meanwhile): the worker stops it and records CANCELLED.
        await self.redis.set(execution_cancel_key(execution_id), b"1", ex=STATE_TTL_SECONDS)
        await self.queue.abort(execution_id)
        return True

"""Executions of every kind (imports, card runs, transform runs): cancelling one by its id,
and reading the current state of one for the subscriptions that follow it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from tilegraph.auth.queue_limit import QueueLimit
from tilegraph.domain.cards import CardExecutionRecord
from tilegraph.domain.deliveries import DeliveryRunRecord
from tilegraph.domain.errors import NotFound
from tilegraph.domain.executions import ExecutionError, ExecutionErrorCode, ExecutionStatus
from tilegraph.domain.ids import prefix_of
from tilegraph.domain.imports import ImportRecord
from tilegraph.domain.transforms import TransformRunRecord
from tilegraph.domain.users import Principal
from tilegraph.events.channels import execution_cancel_key, transform_run_channels
from tilegraph.events.publisher import STATE_TTL_SECONDS, ExecutionEvents
from tilegraph.store.cards import execution_from_item
from tilegraph.store.deliveries import delivery_run_from_item
from tilegraph.store.executions import ExecutionTable
from tilegraph.store.imports import import_from_item
from tilegraph.store.queue import JobQueue
from tilegraph.store.repositories import Repositories
from tilegraph.store.transforms import run_from_item

CANCELLED = ExecutionError(ExecutionErrorCode.CANCELLED, "Cancelled")

R = TypeVar("R")


def _own_channel_only(item: dict[str, Any]) -> list[str]:
    return []


@dataclass(frozen=True)
class StoredExecutions(Generic[R]):
    """Where one kind of execution is kept: its id prefix, its table, how its stored (and
    published) items read as records, and the channels its changes go to besides its own."""

    prefix: str
    table: ExecutionTable
    record: Callable[[dict[str, Any]], R]
    channels: Callable[[dict[str, Any]], list[str]] = _own_channel_only


class ExecutionService:
    def __init__(
        self,
        redis: Redis,
        events: ExecutionEvents,
        queue: JobQueue,
        repos: Repositories,
        allowance: QueueLimit,
    ) -> None:
        self.redis = redis
        self.allowance = allowance
        self.events = events
        self.queue = queue
        self.imports = StoredExecutions[ImportRecord](
            "imp", repos.imports.executions, import_from_item
        )
        self.card_runs = StoredExecutions[CardExecutionRecord](
            "cex", repos.cards.executions, execution_from_item
        )
        self.transform_runs = StoredExecutions[TransformRunRecord](
            "tex", repos.transforms.runs, run_from_item, transform_run_channels
        )
        self.delivery_runs = StoredExecutions[DeliveryRunRecord](
            "dlr", repos.deliveries.runs, delivery_run_from_item
        )
        self._kinds: dict[str, StoredExecutions[Any]] = {
            kind.prefix: kind
            for kind in (self.imports, self.card_runs, self.transform_runs, self.delivery_runs)
        }

    def kind_of(self, execution_id: str) -> StoredExecutions[Any] | None:
        return self._kinds.get(prefix_of(execution_id) or "")

    async def current(
        self, kind: StoredExecutions[Any], execution_id: str
    ) -> dict[str, Any] | None:
        """The latest published state (it runs ahead of the table while running), else the
        stored one (also while Redis is unreachable); None when there is no such execution."""
        try:
            latest = await self.events.latest(execution_id)
        except RedisError:
            latest = None
        if latest is not None:
            return latest
        return await kind.table.get(execution_id)

    async def cancel(self, principal: Principal, execution_id: str) -> bool:
        """True when the execution was cancelled or is being cancelled; False when it had
        already finished."""
        kind = self.kind_of(execution_id)
        item = await kind.table.get(execution_id) if kind else None
        # Only whoever started an execution may cancel it.
        if kind is None or item is None or item.get("owner_id") != principal.user_id:
            raise NotFound("No such execution", field="id")
        status = ExecutionStatus(item["status"])
        if status.is_terminal:
            return False
        if status is ExecutionStatus.QUEUED:
            cancelled = await kind.table.transition(
                execution_id,
                allowed_from=[ExecutionStatus.QUEUED],
                to=ExecutionStatus.CANCELLED,
                values={"error": CANCELLED.to_item()},
            )
            if cancelled is not None:
                await self.queue.abort(execution_id)
                # Never started, so no worker will give its place in the allowance back.
                await self.allowance.release(principal.user_id, execution_id)
                await self.events.publish(cancelled, kind.channels(cancelled))
                return True
        # Running (or started meanwhile): the worker stops it and records CANCELLED.
        await self.redis.set(execution_cancel_key(execution_id), b"1", ex=STATE_TTL_SECONDS)
        await self.queue.abort(execution_id)
        return True

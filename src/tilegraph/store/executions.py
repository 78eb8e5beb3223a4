"""Execution records (imports, card runs, transform runs) share one lifecycle: conditional
status transitions, heartbeats, and a sparse index of unfinished work for the sweeper."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from tilegraph.domain.clock import to_iso, utcnow
from tilegraph.domain.executions import TERMINAL_STATUSES, ExecutionStatus
from tilegraph.store.dynamo import ConditionFailed, Dynamo, KeyCondition

ACTIVE_SHARD = "ACTIVE"

# Finds the table key of an execution id (transform runs are keyed by transform + time).
KeyLocator = Callable[[str], Awaitable[dict[str, str] | None]]
# Located keys remembered per table: an execution's key never changes, and one run is looked
# up at every step of its life (start, heartbeats, finish, cancel, sweeps).
KNOWN_KEYS = 10_000


class ExecutionTable:
    def __init__(self, db: Dynamo, table: str, locate: KeyLocator | None = None) -> None:
        self.db = db
        self.table = table
        self._locate = locate
        self._known: OrderedDict[str, dict[str, str]] = OrderedDict()

    async def key_of(self, execution_id: str) -> dict[str, str] | None:
        if self._locate is None:
            return {"id": execution_id}
        key = self._known.get(execution_id)
        if key is None:
            key = await self._locate(execution_id)
            if key is not None:
                self._remember(execution_id, key)
        return key

    def _remember(self, execution_id: str, key: dict[str, str]) -> None:
        self._known[execution_id] = key
        while len(self._known) > KNOWN_KEYS:
            self._known.popitem(last=False)

    def _remember_item(self, item: dict[str, Any]) -> None:
        if self._locate is not None:
            attributes = self.db.spec(self.table).key_attributes()
            self._remember(str(item["id"]), {a: str(item[a]) for a in attributes})

    def _indexed(self, item: dict[str, Any]) -> dict[str, Any]:
        """Unfinished executions join the sparse index the sweeper reads, with the queue
        their job is in: a sweeper puts back only its own queue's jobs (a deployment
        whose workers serve another queue is left to them)."""
        if ExecutionStatus(item["status"]) in TERMINAL_STATUSES:
            return item
        return {"queue": self.db.settings.queue_name, **item, "active_shard": ACTIVE_SHARD}

    async def create(self, item: dict[str, Any]) -> None:
        item = self._indexed(item)
        await self.db.put(self.table, item)
        self._remember_item(item)

    async def create_many(self, items: list[dict[str, Any]]) -> None:
        """Many new records at once, in one round trip (see Dynamo.batch_write)."""
        if len(items) == 1:
            await self.create(items[0])
            return
        indexed = [self._indexed(i) for i in items]
        await self.db.batch_write(self.table, puts=indexed)
        for item in indexed:
            self._remember_item(item)

    async def get(self, execution_id: str) -> dict[str, Any] | None:
        key = await self.key_of(execution_id)
        return await self.db.get(self.table, key) if key else None

    async def get_many(self, execution_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Items by id in one batched read (keys located first where the table needs it)."""
        keys = await asyncio.gather(*(self.key_of(i) for i in dict.fromkeys(execution_ids)))
        items = await self.db.batch_get(self.table, [key for key in keys if key])
        return {str(item["id"]): item for item in items}

    async def transition(
        self,
        execution_id: str,
        *,
        allowed_from: Iterable[ExecutionStatus],
        to: ExecutionStatus,
        values: dict[str, Any] | None = None,
        remove: Iterable[str] = (),
    ) -> dict[str, Any] | None:
        """Move to `to` only from one of `allowed_from`; None when another writer won."""
        key = await self.key_of(execution_id)
        if key is None:
            return None
        changes: dict[str, Any] = {"status": to.value, **(values or {})}
        remove = list(remove)
        if to in TERMINAL_STATUSES:
            remove.append("active_shard")
            changes.setdefault("finished_at", to_iso(utcnow()))
        allowed = [s.value for s in allowed_from]
        placeholders = {f":from{i}": value for i, value in enumerate(allowed)}
        try:
            return await self.db.update(
                self.table,
                key,
                set_values=changes,
                remove=remove,
                condition=f"#st IN ({', '.join(placeholders)})",
                names={"#st": "status"},
                values=placeholders,
            )
        except ConditionFailed:
            return None

    async def heartbeat(self, execution_id: str, values: dict[str, Any] | None = None) -> bool:
        """Refresh the heartbeat of a RUNNING execution; False once it is no longer running."""
        key = await self.key_of(execution_id)
        if key is None:
            return False
        try:
            await self.db.update(
                self.table,
                key,
                set_values={"heartbeat_at": to_iso(utcnow()), **(values or {})},
                condition="#st = :running",
                names={"#st": "status"},
                values={":running": ExecutionStatus.RUNNING.value},
                bump_version=False,
            )
        except ConditionFailed:
            return False
        return True

    async def active(self) -> list[dict[str, Any]]:
        """Every QUEUED or RUNNING execution, oldest first."""
        items = await self.db.query_all(
            self.table, KeyCondition("active_shard", ACTIVE_SHARD), index="by_active"
        )
        for item in items:
            self._remember_item(item)
        return items

"""What scheduled objects (transforms, deliveries) share in their table: a sparse index of
enabled schedules by next run, the conditional advance that lets exactly one of two ticking
schedulers queue a due run, and the run lock that keeps two runs from overlapping."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any, Protocol

from tilegraph.domain.clock import from_iso, to_iso
from tilegraph.domain.executions import ExecutionError, ExecutionStatus
from tilegraph.domain.transforms import TriggerType
from tilegraph.store.dynamo import ConditionFailed, Dynamo, KeyCondition

SCHEDULE_SHARD = "S"
LOCK = "running_execution_id"


class ScheduledRun(Protocol):
    """What a run of a scheduled object (a transform, a delivery) records of its life."""

    @property
    def id(self) -> str: ...
    @property
    def owner_id(self) -> str: ...
    @property
    def status(self) -> ExecutionStatus: ...
    @property
    def triggered_by(self) -> TriggerType: ...
    @property
    def triggered_by_user(self) -> str | None: ...
    @property
    def queued_at(self) -> datetime: ...
    @property
    def started(self) -> str: ...
    @property
    def due_at(self) -> datetime | None: ...
    @property
    def started_at(self) -> datetime | None: ...
    @property
    def finished_at(self) -> datetime | None: ...
    @property
    def progress(self) -> float | None: ...
    @property
    def error(self) -> ExecutionError | None: ...


def _iso(value: datetime | None) -> str | None:
    return to_iso(value) if value is not None else None


def run_item_fields(record: ScheduledRun) -> dict[str, Any]:
    """The stored fields every scheduled run has; each kind adds its own."""
    return {
        "id": record.id,
        "owner_id": record.owner_id,
        "status": record.status.value,
        "triggered_by": record.triggered_by.value,
        "triggered_by_user": record.triggered_by_user,
        "queued_at": to_iso(record.queued_at),
        "started": record.started,
        "due_at": _iso(record.due_at),
        "started_at": _iso(record.started_at),
        "finished_at": _iso(record.finished_at),
        "progress": record.progress,
        "error": record.error.to_item() if record.error else None,
    }


def run_record_fields(item: dict[str, Any]) -> dict[str, Any]:
    """The record fields every scheduled run has, read back from its stored item."""

    def when(key: str) -> datetime | None:
        return from_iso(item[key]) if item.get(key) else None

    error = item.get("error")
    return {
        "id": item["id"],
        "owner_id": item["owner_id"],
        "status": ExecutionStatus(item["status"]),
        "triggered_by": TriggerType(item["triggered_by"]),
        "triggered_by_user": item.get("triggered_by_user"),
        "queued_at": from_iso(item["queued_at"]),
        "started": item["started"],
        "due_at": when("due_at"),
        "started_at": when("started_at"),
        "finished_at": when("finished_at"),
        "progress": item.get("progress"),
        "error": ExecutionError.from_item(error) if error else None,
    }


def schedule_shard(enabled: bool, next_run_iso: str | None) -> str | None:
    """Only enabled schedules are in the index: the tick never reads anything else."""
    return SCHEDULE_SHARD if enabled and next_run_iso is not None else None


class ScheduledTable:
    def __init__(self, db: Dynamo, table: str) -> None:
        self.db = db
        self.table = table

    async def due(self, now_iso: str) -> list[dict[str, Any]]:
        """Enabled schedules whose next run is at or before now (a Query, never a Scan)."""
        return await self.db.query_all(
            self.table,
            KeyCondition("schedule_shard", SCHEDULE_SHARD, "next_run_at", "<=", (now_iso,)),
            index="by_schedule",
        )

    async def advance(self, object_id: str, due_iso: str, next_iso: str) -> bool:
        """Move the next run forward, only if it is still the due time we saw: of two
        schedulers ticking together, exactly one wins."""
        try:
            await self.db.update(
                self.table,
                {"id": object_id},
                set_values={"next_run_at": next_iso},
                condition="#n = :due AND #e = :yes",
                names={"#n": "next_run_at", "#e": "schedule_enabled"},
                values={":due": due_iso, ":yes": True},
            )
        except ConditionFailed:
            return False
        return True

    async def lock(self, object_id: str, run_id: str) -> str | None:
        """Take the run lock; the id of the run holding it when that is someone else (a
        holder that let go between the refusal and the read is tried again)."""
        for _ in range(3):
            try:
                await self.db.update(
                    self.table,
                    {"id": object_id},
                    set_values={LOCK: run_id},
                    condition="attribute_exists(id) AND (attribute_not_exists(#r) OR #r = :me)",
                    names={"#r": LOCK},
                    values={":me": run_id},
                    bump_version=False,
                )
            except ConditionFailed:
                current = await self.db.get(self.table, {"id": object_id})
                if current is None:
                    return "(deleted)"
                if current.get(LOCK):
                    return str(current[LOCK])
                continue
            return None
        return "(busy)"

    async def unlock(self, object_id: str, run_id: str) -> None:
        with contextlib.suppress(ConditionFailed):  # released already, or never taken
            await self.db.update(
                self.table,
                {"id": object_id},
                remove=[LOCK],
                condition="#r = :me",
                names={"#r": LOCK},
                values={":me": run_id},
                bump_version=False,
            )

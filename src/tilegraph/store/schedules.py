"""What scheduled objects (transforms, deliveries) share in their table: a sparse index of
enabled schedules by next run, the conditional advance that lets exactly one of two ticking
schedulers queue a due run, and the run lock that keeps two runs from overlapping."""

from __future__ import annotations

import contextlib
from typing import Any

from tilegraph.store.dynamo import ConditionFailed, Dynamo, KeyCondition

SCHEDULE_SHARD = "S"
LOCK = "running_execution_id"


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

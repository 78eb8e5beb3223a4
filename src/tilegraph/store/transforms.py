"""Transforms (with a sparse index of enabled schedules and a run lock) and their runs,
keyed by transform and start time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tilegraph.domain.clock import from_iso, to_iso
from tilegraph.domain.transforms import TransformRecord, TransformRunRecord
from tilegraph.store.dynamo import ConditionFailed, Dynamo, Filter, KeyCondition, Stale
from tilegraph.store.executions import ExecutionTable
from tilegraph.store.pagination import Page
from tilegraph.store.schedules import (
    ScheduledTable,
    run_item_fields,
    run_record_fields,
    schedule_shard,
)

TRANSFORMS = "transforms"
RUNS = "transform_executions"


def _iso(value: Any) -> str | None:
    return to_iso(value) if value is not None else None


# What `save` writes: everything but the run lock, the output dataset and the creation time.
_OWNER_EDITED = (
    "name",
    "input_dataset_ids",
    "code",
    "params",
    "schedule_cron",
    "schedule_enabled",
    "next_run_at",
    "schedule_shard",
    "updated_at",
    "workspace_key",
)


def transform_to_item(record: TransformRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "owner_id": record.owner_id,
        "name": record.name,
        "input_dataset_ids": list(record.input_dataset_ids),
        "code": record.code,
        "params": record.params,
        "schedule_cron": record.schedule_cron,
        "schedule_enabled": record.schedule_enabled,
        "next_run_at": _iso(record.next_run_at),
        "schedule_shard": schedule_shard(record.schedule_enabled, _iso(record.next_run_at)),
        "output_dataset_id": record.output_dataset_id,
        "running_execution_id": record.running_execution_id,
        "created_at": to_iso(record.created_at),
        "updated_at": to_iso(record.updated_at),
        "version": record.version,
        "workspace_key": record.workspace_key,
    }


def transform_from_item(item: dict[str, Any]) -> TransformRecord:
    next_run = item.get("next_run_at")
    return TransformRecord(
        id=item["id"],
        owner_id=item["owner_id"],
        name=item["name"],
        input_dataset_ids=tuple(item.get("input_dataset_ids", [])),
        code=item["code"],
        params=item.get("params"),
        schedule_cron=item.get("schedule_cron"),
        schedule_enabled=bool(item.get("schedule_enabled", False)),
        next_run_at=from_iso(next_run) if next_run else None,
        output_dataset_id=item.get("output_dataset_id"),
        running_execution_id=item.get("running_execution_id"),
        created_at=from_iso(item["created_at"]),
        updated_at=from_iso(item["updated_at"]),
        version=int(item.get("version", 1)),
        workspace_key=item.get("workspace_key"),
    )


def run_to_item(record: TransformRunRecord) -> dict[str, Any]:
    return {
        **run_item_fields(record),
        "kind": "transform",
        "transform_id": record.transform_id,
        "duration_ms": record.duration_ms,
        "output_row_count": record.output_row_count,
        "output_dataset_id": record.output_dataset_id,
        "output_version": record.output_version,
    }


def run_from_item(item: dict[str, Any]) -> TransformRunRecord:
    return TransformRunRecord(
        **run_record_fields(item),
        transform_id=item["transform_id"],
        duration_ms=item.get("duration_ms"),
        output_row_count=item.get("output_row_count"),
        output_dataset_id=item.get("output_dataset_id"),
        output_version=item.get("output_version"),
    )


class TransformRepository:
    def __init__(self, db: Dynamo) -> None:
        self.db = db
        self.runs = ExecutionTable(db, RUNS, locate=self._locate_run)
        self.schedules = ScheduledTable(db, TRANSFORMS)

    async def _locate_run(self, run_id: str) -> dict[str, str] | None:
        if not run_id.startswith("tex_"):
            return None
        items = await self.db.query_all(RUNS, KeyCondition("id", run_id), index="by_id", limit=1)
        if not items:
            return None
        return {"transform_id": items[0]["transform_id"], "started": items[0]["started"]}

    # ---------------------------------------------------------------- transforms

    async def create(self, record: TransformRecord, also: Sequence[dict[str, Any]] = ()) -> None:
        """`also`: transaction steps written with it (its first revision)."""
        await self.db.put_new(TRANSFORMS, transform_to_item(record), also=also)

    async def get(self, transform_id: str) -> TransformRecord | None:
        if not transform_id.startswith("tf_"):
            return None
        item = await self.db.get(TRANSFORMS, {"id": transform_id})
        return transform_from_item(item) if item else None

    async def get_many(self, ids: list[str]) -> dict[str, TransformRecord]:
        wanted = [i for i in ids if i.startswith("tf_")]
        items = await self.db.batch_get(TRANSFORMS, [{"id": i} for i in wanted])
        return {item["id"]: transform_from_item(item) for item in items}

    async def list_page(
        self, owner_id: str, first: int, after: str | None
    ) -> Page[TransformRecord]:
        page = await self.db.query_page(
            TRANSFORMS,
            KeyCondition("owner_id", owner_id),
            index="by_owner",
            first=first,
            after=after,
            forward=False,
        )
        return page.map(transform_from_item)

    async def using_dataset(self, owner_id: str, dataset_id: str) -> list[TransformRecord]:
        items = await self.db.query_all(
            TRANSFORMS,
            KeyCondition("owner_id", owner_id),
            index="by_owner",
            flt=Filter("contains(#fi, :fi)", {"#fi": "input_dataset_ids"}, {":fi": dataset_id}),
        )
        return [transform_from_item(i) for i in items]

    async def with_workspace_key(self, owner_id: str, key: str) -> list[TransformRecord]:
        items = await self.db.query_all(
            TRANSFORMS,
            KeyCondition("owner_id", owner_id),
            index="by_owner",
            flt=Filter("#wk = :wk", {"#wk": "workspace_key"}, {":wk": key}),
        )
        return [transform_from_item(i) for i in items]

    async def save(
        self, record: TransformRecord, expected_version: int, also: Sequence[dict[str, Any]] = ()
    ) -> TransformRecord:
        """Write what its owner edits, if nobody changed it meanwhile. The fields the system
        keeps (run lock, output dataset) are not written back from a possibly stale copy;
        the scheduler's advance bumps the version, so a stale `next_run_at` fails here
        instead of bringing a due run back. `also`: steps of the same transaction."""
        item = transform_to_item(record)
        edited = {key: item[key] for key in _OWNER_EDITED}
        try:
            stored = await self.db.update(
                TRANSFORMS,
                {"id": record.id},
                set_values=edited,
                expected_version=expected_version,
                also=also,
            )
        except ConditionFailed as exc:
            raise Stale(record.id) from exc
        return transform_from_item(stored)

    async def delete(self, transform_id: str, also: Sequence[dict[str, Any]] = ()) -> None:
        """Its runs go first; `also`: steps of the transform's own delete."""
        items = await self.db.query_all(RUNS, KeyCondition("transform_id", transform_id))
        await self.db.batch_delete(
            RUNS, [{"transform_id": transform_id, "started": i["started"]} for i in items]
        )
        await self.db.delete(TRANSFORMS, {"id": transform_id}, also=also)

    async def due(self, now_iso: str) -> list[TransformRecord]:
        return [transform_from_item(i) for i in await self.schedules.due(now_iso)]

    async def set_output(self, transform_id: str, dataset_id: str) -> None:
        await self.db.update(
            TRANSFORMS,
            {"id": transform_id},
            set_values={"output_dataset_id": dataset_id},
            bump_version=False,
        )

    # ---------------------------------------------------------------- runs

    async def create_run(self, record: TransformRunRecord, job_id: str) -> None:
        await self.runs.create({**run_to_item(record), "job_id": job_id})

    async def get_run(self, run_id: str) -> TransformRunRecord | None:
        item = await self.runs.get(run_id)
        return run_from_item(item) if item else None

    async def get_runs(self, run_ids: list[str]) -> dict[str, TransformRunRecord]:
        items = await self.runs.get_many([i for i in run_ids if i.startswith("tex_")])
        return {key: run_from_item(item) for key, item in items.items()}

    async def runs_page(
        self, transform_id: str, first: int, after: str | None
    ) -> Page[TransformRunRecord]:
        page = await self.db.query_page(
            RUNS,
            KeyCondition("transform_id", transform_id),
            first=first,
            after=after,
            forward=False,
        )
        return page.map(run_from_item)

"""Deliveries (with the schedule index and run lock transforms have) and their runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tilegraph.domain.clock import from_iso, to_iso
from tilegraph.domain.deliveries import (
    AlertCondition,
    DeliveryChannel,
    DeliveryContent,
    DeliveryRecord,
    DeliveryRunRecord,
)
from tilegraph.store.dynamo import ConditionFailed, Dynamo, KeyCondition, Stale
from tilegraph.store.executions import ExecutionTable
from tilegraph.store.pagination import Page
from tilegraph.store.schedules import (
    ScheduledTable,
    run_item_fields,
    run_record_fields,
    schedule_shard,
)

DELIVERIES = "deliveries"
RUNS = "delivery_executions"

# What `save` writes: everything but the run lock, the secret and the creation time.
_OWNER_EDITED = (
    "name",
    "card_ids",
    "filter_view_id",
    "schedule_cron",
    "schedule_enabled",
    "next_run_at",
    "schedule_shard",
    "recipients",
    "contents",
    "condition",
    "updated_at",
)


def _iso(value: Any) -> str | None:
    return to_iso(value) if value is not None else None


def delivery_to_item(record: DeliveryRecord) -> dict[str, Any]:
    next_run = _iso(record.next_run_at)
    return {
        "id": record.id,
        "owner_id": record.owner_id,
        "dashboard_id": record.dashboard_id,
        "name": record.name,
        "card_ids": list(record.card_ids),
        "filter_view_id": record.filter_view_id,
        "schedule_cron": record.schedule_cron,
        "schedule_enabled": record.enabled,
        "next_run_at": next_run,
        "schedule_shard": schedule_shard(record.enabled, next_run),
        "channel": record.channel.value,
        "recipients": list(record.recipients),
        "contents": [c.value for c in record.contents],
        "condition": record.condition.to_item() if record.condition else None,
        "signing_secret": record.signing_secret,
        "running_execution_id": record.running_execution_id,
        "created_at": to_iso(record.created_at),
        "updated_at": to_iso(record.updated_at),
        "version": record.version,
    }


def delivery_from_item(item: dict[str, Any]) -> DeliveryRecord:
    next_run = item.get("next_run_at")
    condition = item.get("condition")
    return DeliveryRecord(
        id=item["id"],
        owner_id=item["owner_id"],
        dashboard_id=item["dashboard_id"],
        name=item["name"],
        card_ids=tuple(item.get("card_ids") or ()),
        filter_view_id=item.get("filter_view_id"),
        schedule_cron=item["schedule_cron"],
        enabled=bool(item.get("schedule_enabled", False)),
        next_run_at=from_iso(next_run) if next_run else None,
        channel=DeliveryChannel(item["channel"]),
        recipients=tuple(item.get("recipients") or ()),
        contents=tuple(DeliveryContent(c) for c in item.get("contents") or ()),
        condition=AlertCondition.from_item(condition) if condition else None,
        signing_secret=item.get("signing_secret"),
        running_execution_id=item.get("running_execution_id"),
        created_at=from_iso(item["created_at"]),
        updated_at=from_iso(item["updated_at"]),
        version=int(item.get("version", 1)),
    )


def delivery_run_to_item(record: DeliveryRunRecord) -> dict[str, Any]:
    return {
        **run_item_fields(record),
        "kind": "delivery",
        "delivery_id": record.delivery_id,
        "sent": record.sent,
        "condition_value": record.condition_value,
        "attempts": record.attempts,
    }


def delivery_run_from_item(item: dict[str, Any]) -> DeliveryRunRecord:
    value = item.get("condition_value")
    return DeliveryRunRecord(
        **run_record_fields(item),
        delivery_id=item["delivery_id"],
        sent=bool(item.get("sent", False)),
        condition_value=float(value) if value is not None else None,
        attempts=int(item.get("attempts") or 0),
    )


class DeliveryRepository:
    def __init__(self, db: Dynamo) -> None:
        self.db = db
        self.runs = ExecutionTable(db, RUNS)
        self.schedules = ScheduledTable(db, DELIVERIES)

    async def create(self, record: DeliveryRecord) -> None:
        await self.db.put_new(DELIVERIES, delivery_to_item(record))

    async def get(self, delivery_id: str) -> DeliveryRecord | None:
        if not delivery_id.startswith("dl_"):
            return None
        item = await self.db.get(DELIVERIES, {"id": delivery_id})
        return delivery_from_item(item) if item else None

    async def get_many(self, ids: list[str]) -> dict[str, DeliveryRecord]:
        wanted = [i for i in ids if i.startswith("dl_")]
        items = await self.db.batch_get(DELIVERIES, [{"id": i} for i in wanted])
        return {item["id"]: delivery_from_item(item) for item in items}

    async def list_page(self, owner_id: str, first: int, after: str | None) -> Page[DeliveryRecord]:
        page = await self.db.query_page(
            DELIVERIES,
            KeyCondition("owner_id", owner_id),
            index="by_owner",
            first=first,
            after=after,
            forward=False,
        )
        return page.map(delivery_from_item)

    async def of_dashboard(self, dashboard_id: str) -> list[DeliveryRecord]:
        items = await self.db.query_all(
            DELIVERIES, KeyCondition("dashboard_id", dashboard_id), index="by_dashboard"
        )
        return [delivery_from_item(i) for i in items]

    async def save(
        self, record: DeliveryRecord, expected_version: int, also: Sequence[dict[str, Any]] = ()
    ) -> DeliveryRecord:
        """Write what its owner edits, if nobody changed it meanwhile (the scheduler's
        advance bumps the version too, so a stale next run never comes back)."""
        item = delivery_to_item(record)
        try:
            stored = await self.db.update(
                DELIVERIES,
                {"id": record.id},
                set_values={key: item[key] for key in _OWNER_EDITED},
                expected_version=expected_version,
                also=also,
            )
        except ConditionFailed as exc:
            raise Stale(record.id) from exc
        return delivery_from_item(stored)

    async def delete(self, delivery_id: str) -> None:
        """Its runs go first."""
        items = await self.db.query_all(
            RUNS, KeyCondition("delivery_id", delivery_id), index="by_delivery"
        )
        await self.db.batch_delete(RUNS, [{"id": i["id"]} for i in items])
        await self.db.delete(DELIVERIES, {"id": delivery_id})

    async def delete_for_dashboard(self, dashboard_id: str) -> None:
        """A deleted dashboard's deliveries go with it (a restored one comes back without)."""
        for record in await self.of_dashboard(dashboard_id):
            await self.delete(record.id)

    async def due(self, now_iso: str) -> list[DeliveryRecord]:
        return [delivery_from_item(i) for i in await self.schedules.due(now_iso)]

    # ---------------------------------------------------------------- runs

    async def create_run(self, record: DeliveryRunRecord, job_id: str) -> None:
        await self.runs.create({**delivery_run_to_item(record), "job_id": job_id})

    async def get_runs(self, run_ids: list[str]) -> dict[str, DeliveryRunRecord]:
        items = await self.runs.get_many([i for i in run_ids if i.startswith("dlr_")])
        return {key: delivery_run_from_item(item) for key, item in items.items()}

    async def runs_page(
        self, delivery_id: str, first: int, after: str | None
    ) -> Page[DeliveryRunRecord]:
        page = await self.db.query_page(
            RUNS,
            KeyCondition("delivery_id", delivery_id),
            index="by_delivery",
            first=first,
            after=after,
            forward=False,
        )
        return page.map(delivery_run_from_item)

    async def last_run(self, delivery_id: str) -> DeliveryRunRecord | None:
        page = await self.runs_page(delivery_id, 1, None)
        return page.items[0] if page.items else None

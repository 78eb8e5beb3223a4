"""Cards and card execution records."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from tilegraph.domain.cards import CardExecutionRecord, CardRecord, CardResultRecord, CardType
from tilegraph.domain.clock import from_iso, to_iso
from tilegraph.domain.executions import ExecutionError, ExecutionStatus
from tilegraph.domain.runs import CardRunPlan
from tilegraph.store.dynamo import ConditionFailed, Dynamo, Filter, KeyCondition, Stale
from tilegraph.store.executions import ExecutionTable
from tilegraph.store.pagination import Page

CARDS = "cards"
EXECUTIONS = "card_executions"


def card_to_item(card: CardRecord) -> dict[str, Any]:
    return {
        "id": card.id,
        "owner_id": card.owner_id,
        "name": card.name,
        "description": card.description,
        "type": card.type.value,
        "code": card.code,
        "dataset_ids": list(card.dataset_ids),
        "params": card.params,
        "used_columns": list(card.used_columns),
        "filter_applicable": list(card.filter_applicable),
        "learned_from": card.learned_from,
        "unprojected_for": card.unprojected_for,
        "created_at": to_iso(card.created_at),
        "updated_at": to_iso(card.updated_at),
        "version": card.version,
        "workspace_key": card.workspace_key,
    }


def card_from_item(item: dict[str, Any]) -> CardRecord:
    return CardRecord(
        id=item["id"],
        owner_id=item["owner_id"],
        name=item["name"],
        description=item.get("description"),
        type=CardType(item["type"]),
        code=item["code"],
        dataset_ids=tuple(item.get("dataset_ids", [])),
        params=item.get("params"),
        created_at=from_iso(item["created_at"]),
        updated_at=from_iso(item["updated_at"]),
        used_columns=tuple(item.get("used_columns", [])),
        filter_applicable=tuple(item.get("filter_applicable", [])),
        learned_from=item.get("learned_from"),
        unprojected_for=item.get("unprojected_for"),
        version=int(item.get("version", 1)),
        workspace_key=item.get("workspace_key"),
    )


def execution_to_item(record: CardExecutionRecord) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return to_iso(value) if value is not None else None

    return {
        "id": record.id,
        "kind": "card",
        "owner_id": record.owner_id,
        "card_id": record.card_id,
        "dashboard_id": record.dashboard_id,
        "status": record.status.value,
        "queued_at": to_iso(record.queued_at),
        "started_at": iso(record.started_at),
        "finished_at": iso(record.finished_at),
        "progress": record.progress,
        "dataset_ids": list(record.dataset_ids),
        "plan": record.plan.to_item() if record.plan else None,
        "result": record.result.to_item() if record.result else None,
        "error": record.error.to_item() if record.error else None,
    }


def result_event_item(result: CardResultRecord, html_limit: int) -> dict[str, Any]:
    """A result as published: with its HTML when it is at hand and small enough for an
    event, so subscribers need no cache read; larger HTML is read by its key."""
    item = result.to_item()
    if result.html is not None and len(result.html.encode()) <= html_limit:
        item["html"] = result.html
    return item


def execution_event(record: CardExecutionRecord, html_limit: int) -> dict[str, Any]:
    item = execution_to_item(record)
    if record.result is not None:
        item["result"] = result_event_item(record.result, html_limit)
    return item


def execution_from_item(item: dict[str, Any]) -> CardExecutionRecord:
    def when(key: str) -> Any:
        return from_iso(item[key]) if item.get(key) else None

    result = item.get("result")
    error = item.get("error")
    plan = item.get("plan")
    return CardExecutionRecord(
        id=item["id"],
        owner_id=item["owner_id"],
        status=ExecutionStatus(item["status"]),
        queued_at=from_iso(item["queued_at"]),
        dataset_ids=tuple(item.get("dataset_ids", [])),
        card_id=item.get("card_id"),
        dashboard_id=item.get("dashboard_id"),
        plan=CardRunPlan.from_item(plan) if plan else None,
        started_at=when("started_at"),
        finished_at=when("finished_at"),
        progress=item.get("progress"),
        result=CardResultRecord.from_item(result) if result else None,
        error=ExecutionError.from_item(error) if error else None,
    )


class CardRepository:
    def __init__(self, db: Dynamo) -> None:
        self.db = db
        self.executions = ExecutionTable(db, EXECUTIONS)

    async def create(self, card: CardRecord, also: Sequence[dict[str, Any]] = ()) -> None:
        """`also`: transaction steps written with it (its first revision)."""
        await self.db.put_new(CARDS, card_to_item(card), also=also)

    async def get(self, card_id: str) -> CardRecord | None:
        if not card_id.startswith("card_"):
            return None
        item = await self.db.get(CARDS, {"id": card_id})
        return card_from_item(item) if item else None

    async def get_many(self, card_ids: list[str]) -> dict[str, CardRecord]:
        ids = [i for i in card_ids if i.startswith("card_")]
        items = await self.db.batch_get(CARDS, [{"id": i} for i in ids])
        return {item["id"]: card_from_item(item) for item in items}

    async def list_page(self, owner_id: str, first: int, after: str | None) -> Page[CardRecord]:
        page = await self.db.query_page(
            CARDS,
            KeyCondition("owner_id", owner_id),
            index="by_owner",
            first=first,
            after=after,
            forward=False,
        )
        return page.map(card_from_item)

    async def using_dataset(self, owner_id: str, dataset_id: str) -> list[CardRecord]:
        items = await self.db.query_all(
            CARDS,
            KeyCondition("owner_id", owner_id),
            index="by_owner",
            flt=Filter("contains(#fd, :fd)", {"#fd": "dataset_ids"}, {":fd": dataset_id}),
        )
        return [card_from_item(i) for i in items]

    async def with_workspace_key(self, owner_id: str, key: str) -> list[CardRecord]:
        items = await self.db.query_all(
            CARDS,
            KeyCondition("owner_id", owner_id),
            index="by_owner",
            flt=Filter("#wk = :wk", {"#wk": "workspace_key"}, {":wk": key}),
        )
        return [card_from_item(i) for i in items]

    async def update(
        self, card: CardRecord, changes: dict[str, Any], also: Sequence[dict[str, Any]] = ()
    ) -> CardRecord:
        """Conditional on the version read; `also`: steps of the same transaction."""
        try:
            item = await self.db.update(
                CARDS,
                {"id": card.id},
                set_values=changes,
                expected_version=card.version,
                also=also,
            )
        except ConditionFailed as exc:
            raise Stale(card.id) from exc
        return card_from_item(item)

    @staticmethod
    def applied(card: CardRecord, changes: dict[str, Any]) -> CardRecord:
        """The card as `update` with these changes will store it."""
        return card_from_item({**card_to_item(card), **changes, "version": card.version + 1})

    async def learn_columns(
        self,
        card_id: str,
        code: str,
        used: list[str],
        applicable: list[str],
        learned_from: str,
        *,
        reads_undeclared: bool = False,
    ) -> None:
        """Remember what the last successful run used, if the code has not changed since;
        with `reads_undeclared`, that this code must be run with every column."""
        marks = {"unprojected_for": learned_from} if reads_undeclared else {}
        with contextlib.suppress(ConditionFailed):  # the code changed since: learn nothing
            await self.db.update(
                CARDS,
                {"id": card_id},
                set_values={
                    "used_columns": used,
                    "filter_applicable": applicable,
                    "learned_from": learned_from,
                    **marks,
                },
                condition="#code = :code",
                names={"#code": "code"},
                values={":code": code},
                bump_version=False,
            )

    async def delete(self, card_id: str, also: Sequence[dict[str, Any]] = ()) -> None:
        """`also`: steps of the same transaction (ConditionFailed when the card is gone)."""
        await self.db.delete(CARDS, {"id": card_id}, also=also)

    async def create_executions(self, records: list[CardExecutionRecord]) -> None:
        """Every record of one admission in as few writes as DynamoDB allows."""
        await self.executions.create_many([execution_to_item(r) for r in records])

    async def get_execution(self, execution_id: str) -> CardExecutionRecord | None:
        if not execution_id.startswith("cex_"):
            return None
        item = await self.db.get(EXECUTIONS, {"id": execution_id})
        return execution_from_item(item) if item else None

    async def get_executions(self, execution_ids: list[str]) -> dict[str, CardExecutionRecord]:
        items = await self.executions.get_many([i for i in execution_ids if i.startswith("cex_")])
        return {key: execution_from_item(item) for key, item in items.items()}

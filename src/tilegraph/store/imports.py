"""Dataset import records."""

from __future__ import annotations

from typing import Any

from tilegraph.domain.clock import from_iso, to_iso
from tilegraph.domain.executions import ExecutionError, ExecutionStatus
from tilegraph.domain.imports import ImportRecord
from tilegraph.store.dynamo import Dynamo, KeyCondition
from tilegraph.store.executions import ExecutionTable

TABLE = "dataset_imports"


def _iso(value: Any) -> str | None:
    return to_iso(value) if value is not None else None


def import_to_item(record: ImportRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "kind": "import",
        "dataset_id": record.dataset_id,
        "owner_id": record.owner_id,
        "status": record.status.value,
        "queued_at": to_iso(record.queued_at),
        "started_at": _iso(record.started_at),
        "finished_at": _iso(record.finished_at),
        "heartbeat_at": _iso(record.heartbeat_at),
        "progress": record.progress,
        "rows_processed": record.rows_processed,
        "bytes_processed": record.bytes_processed,
        "error": record.error.to_item() if record.error else None,
        "source": record.source,
        "expected_columns": record.expected_columns,
        "options": record.options,
        "result_version": record.result_version,
    }


def import_from_item(item: dict[str, Any]) -> ImportRecord:
    def when(key: str) -> Any:
        return from_iso(item[key]) if item.get(key) else None

    error = item.get("error")
    return ImportRecord(
        id=item["id"],
        dataset_id=item["dataset_id"],
        owner_id=item["owner_id"],
        status=ExecutionStatus(item["status"]),
        queued_at=from_iso(item["queued_at"]),
        source=item.get("source") or {},
        started_at=when("started_at"),
        finished_at=when("finished_at"),
        heartbeat_at=when("heartbeat_at"),
        progress=item.get("progress"),
        rows_processed=item.get("rows_processed"),
        bytes_processed=item.get("bytes_processed"),
        error=ExecutionError.from_item(error) if error else None,
        expected_columns=item.get("expected_columns"),
        options=item.get("options") or {},
        result_version=item.get("result_version"),
    )


class ImportRepository:
    def __init__(self, db: Dynamo) -> None:
        self.db = db
        self.executions = ExecutionTable(db, TABLE)

    async def create(self, record: ImportRecord) -> None:
        await self.executions.create(import_to_item(record))

    async def get(self, import_id: str) -> ImportRecord | None:
        if not import_id.startswith("imp_"):
            return None
        item = await self.db.get(TABLE, {"id": import_id})
        return import_from_item(item) if item else None

    async def get_many(self, import_ids: list[str]) -> dict[str, ImportRecord]:
        ids = [i for i in import_ids if i.startswith("imp_")]
        items = await self.db.batch_get(TABLE, [{"id": i} for i in ids])
        return {item["id"]: import_from_item(item) for item in items}

    async def delete_for_dataset(self, dataset_id: str) -> None:
        items = await self.db.query_all(
            TABLE, KeyCondition("dataset_id", dataset_id), index="by_dataset"
        )
        await self.db.batch_delete(TABLE, [{"id": i["id"]} for i in items])

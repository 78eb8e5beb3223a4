"""The audit log: one item per event, indexed by user, by target and by time."""

from __future__ import annotations

from typing import Any

import orjson

from tilegraph.domain.audit import AuditEventType, AuditQuery, AuditRecord
from tilegraph.domain.clock import from_iso, to_iso
from tilegraph.store.dynamo import Dynamo, Filter, KeyCondition
from tilegraph.store.pagination import Page

TABLE = "audit_logs"
FEED = "ALL"
_MAX_SUFFIX = "~"  # sorts after every id character


def audit_to_item(record: AuditRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "ts": to_iso(record.timestamp),
        "ts_id": f"{to_iso(record.timestamp)}#{record.id}",
        "feed": FEED,
        "event_type": record.event_type.value,
        "user_id": record.user_id,
        "target_type": record.target_type,
        "target_id": record.target_id,
        "details": orjson.dumps(record.details).decode() if record.details is not None else None,
        "request_id": record.request_id,
    }


def audit_from_item(item: dict[str, Any]) -> AuditRecord:
    details = item.get("details")
    return AuditRecord(
        id=item["id"],
        timestamp=from_iso(item["ts"]),
        event_type=AuditEventType(item["event_type"]),
        user_id=item.get("user_id"),
        target_type=item["target_type"],
        target_id=item["target_id"],
        details=orjson.loads(details) if details else None,
        request_id=item.get("request_id"),
    )


class AuditRepository:
    def __init__(self, db: Dynamo) -> None:
        self.db = db

    async def add(self, record: AuditRecord) -> None:
        await self.db.put(TABLE, audit_to_item(record))

    async def get(self, log_id: str) -> AuditRecord | None:
        if not log_id.startswith("log_"):
            return None
        item = await self.db.get(TABLE, {"id": log_id})
        return audit_from_item(item) if item else None

    async def get_many(self, log_ids: list[str]) -> dict[str, AuditRecord]:
        wanted = [i for i in log_ids if i.startswith("log_")]
        items = await self.db.batch_get(TABLE, [{"id": i} for i in wanted])
        return {item["id"]: audit_from_item(item) for item in items}

    async def list_page(
        self, query: AuditQuery, first: int, after: str | None
    ) -> Page[AuditRecord]:
        """Newest first, from the narrowest index: by user, else by target, else by time."""
        if query.user_id is not None:
            index, hash_attr, hash_value = "by_user", "user_id", query.user_id
        elif query.target_id is not None:
            index, hash_attr, hash_value = "by_target", "target_id", query.target_id
        else:
            index, hash_attr, hash_value = "by_time", "feed", FEED
        low = to_iso(query.start) if query.start else "0"
        high = (to_iso(query.end) if query.end else "9999") + _MAX_SUFFIX
        key = KeyCondition(hash_attr, hash_value, "ts_id", "between", (low, high))
        clauses: list[str] = []
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        if query.event_type is not None:
            clauses.append("#fe = :fe")
            names["#fe"] = "event_type"
            values[":fe"] = query.event_type.value
        if query.target_id is not None and index != "by_target":
            clauses.append("#ft = :ft")
            names["#ft"] = "target_id"
            values[":ft"] = query.target_id
        flt = Filter(" AND ".join(clauses), names, values) if clauses else None
        page = await self.db.query_page(
            TABLE, key, index=index, first=first, after=after, forward=False, flt=flt
        )
        return page.map(audit_from_item)
